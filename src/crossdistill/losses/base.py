"""What a registered loss is: a function of tensors (or a module, when the loss owns parameters or state) plus
what it reads and needs."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from torch import Tensor, nn

from crossdistill.models.outputs import Reads
from crossdistill.registry import Registry, summary

# What a loss needs the task's models to output (each task ``provides`` a set of these; crossdistill.tasks):
ANY: frozenset[str] = frozenset()  # outputs every model has (embed, feats)
CLASSES = frozenset({"classes"})  # a distribution over classes (softmax of one logit per class)
VALUES = frozenset({"values"})  # predicted real values
TOWERS = frozenset({"towers"})  # a dual encoder's query and gallery towers
HEAD = frozenset({"head"})  # a head's outputs, whatever they mean (a dual encoder has no head)
LossFn = Callable[..., Tensor]  # (student, teacher, batch=None, *, **options) -> scalar


@runtime_checkable
class NeedsPreparation(Protocol):
    """A loss module that must see the teacher and the training data once before training (``mgkd``'s saliency
    test); ``Distiller.prepare`` calls it."""

    def prepare(self, teacher: nn.Module, context: Any) -> None: ...


@dataclass(frozen=True)
class LossDef:
    """A loss by name. Stateless losses are functions ``fn(student, teacher, batch=None, *, **options)``: tensors
    first, the batch only for losses that read labels, options keyword-only (usable outside the pipeline, e.g.
    ``kd(student_logits, teacher_logits, temperature=4.0)``). Losses with parameters or state (projection heads, a
    negative queue, proxy classifiers) are ``nn.Module`` classes built once per run as
    ``module(student_probe, teacher_probe, *, **options)`` from one probe batch, then called as
    ``module(student, teacher, batch)``; their parameters train with the student."""

    fn: LossFn | None = None
    reads: Reads = "logits"  # default output(s) read on both sides: a name, or a tuple of names
    needs_teacher: bool = True
    adapter: bool = False  # the student side goes through a learned adapter sized to the teacher's
    summary: str = ""
    module: type[nn.Module] | None = None
    trains_teacher: bool = False  # the teacher is trained jointly with the student (no frozen teacher, no cache)
    teacher_reads: str | None = None  # the teacher's output when it differs from ``reads`` by default
    single_teacher: bool = False  # needs one whole teacher model (not an ensemble's mean output)
    needs: frozenset[str] = ANY  # what the task's models must provide (class distributions need classes)

    @property
    def options(self) -> list[str]:
        """The keyword options a config may set (``kwargs:``): the keyword-only parameters."""
        target = self.module.__init__ if self.module is not None else self.fn
        return [name for name, p in inspect.signature(target).parameters.items() if p.kind is p.KEYWORD_ONLY]

    @property
    def headline(self) -> str:
        """What the loss is, in a few words: its docstring up to the first colon, parenthesis or full stop."""
        cut = min((i for i in (self.summary.find(m) for m in (": ", " (", ". ")) if i > 0), default=len(self.summary))
        text = self.summary[:cut]
        return text if len(text) <= 90 else text[:89] + "…"

    @property
    def paper(self) -> str:
        """The first citation of the docstring, up to its year ("Zhao et al., ..., CVPR 2022")."""
        match = re.search(r"\(([^()]*?\b(?:19|20)\d\d)\b", self.summary)
        return match.group(1) if match else ""

    def build(self, student_probe: Any, teacher_probe: Any, options: dict[str, Any]) -> nn.Module | None:
        return None if self.module is None else self.module(student_probe, teacher_probe, **options)


LOSSES: Registry[LossDef] = Registry("loss")


def register_loss(name: str, *, reads: Reads = "logits", needs_teacher: bool = True, adapter: bool = False,
                  needs: frozenset[str] = ANY) -> Callable[[LossFn], LossFn]:
    def add(fn: LossFn) -> LossFn:
        LOSSES.register(name)(LossDef(fn=fn, reads=reads, needs_teacher=needs_teacher, adapter=adapter,
                                      summary=summary(fn), needs=needs))
        return fn

    return add


def register_loss_module(name: str, *, reads: Reads = "embed", teacher_reads: str | None = None,
                         trains_teacher: bool = False, single_teacher: bool = False,
                         needs: frozenset[str] = ANY) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Register an ``nn.Module`` loss (see ``LossDef``)."""

    def add(cls: type[nn.Module]) -> type[nn.Module]:
        LOSSES.register(name)(LossDef(reads=reads, summary=summary(cls), module=cls, trains_teacher=trains_teacher,
                                      teacher_reads=teacher_reads, single_teacher=single_teacher or trains_teacher,
                                      needs=needs))
        return cls

    return add
