"""``Distiller``: student + frozen teacher + loss terms -> a dict of named losses.

``L = sum_i w_i L_i``; each term reads one named output on both sides (``logits``, ``embed``,
``feats.<name>``). Teacher outputs come from the teacher itself (online) or from a ``TeacherCache``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from crossdistill.config import ConfigError, TermSpec
from crossdistill.data.batch import Batch
from crossdistill.distill.adapters import make_adapter
from crossdistill.losses import LOSSES, LossDef
from crossdistill.models.outputs import Outputs

TeacherSource = Callable[[Batch], Outputs]


@dataclass
class Term:
    name: str
    loss: LossDef
    weight: float
    reads: str  # the student's output
    teacher_reads: str  # the teacher's output
    kwargs: dict[str, Any] = field(default_factory=dict)


def resolve_terms(specs: list[TermSpec]) -> list[Term]:
    """Config terms -> ``Term``s with unique names (``kd``, ``kd_2``, ...)."""
    terms, seen = [], {}
    for spec in specs:
        loss = LOSSES.get(spec.loss)
        seen[spec.loss] = seen.get(spec.loss, 0) + 1
        name = spec.loss if seen[spec.loss] == 1 else f"{spec.loss}_{seen[spec.loss]}"
        allowed = list(inspect.signature(loss.fn).parameters)[3:]
        unknown = sorted(set(spec.kwargs) - set(allowed))
        if unknown:
            raise ConfigError(f"loss {spec.loss!r} has no option {', '.join(unknown)}; "
                              f"its options: {', '.join(allowed) or 'none'}")
        reads = spec.reads or loss.reads
        if reads == "feats":  # the loss reads a feature map, which only the config can name
            raise ConfigError(f"loss {spec.loss!r} reads an intermediate feature map: set reads: "
                              "feats.<modality>.stage<i> (and teacher_reads when the teacher's differs)")
        terms.append(Term(name, loss, spec.weight, reads, spec.teacher_reads or reads, dict(spec.kwargs)))
    if not terms:
        raise ConfigError("no loss terms: give at least one (e.g. {loss: ce})")
    return terms


class Distiller(nn.Module):
    """Owns the student, the adapters and (frozen, eval mode) the teacher. ``distiller(batch)`` returns
    ``{"loss": total, "<term>": value, ...}``."""

    def __init__(self, student: nn.Module, teacher: nn.Module | None, terms: list[Term],
                 probe: Batch | None = None) -> None:
        super().__init__()
        self.student, self.terms = student, terms
        self.teacher = teacher.eval().requires_grad_(False) if teacher is not None else None
        self.teacher_source: TeacherSource | None = self._online if teacher is not None else None
        if any(t.loss.needs_teacher for t in terms) and teacher is None:
            needing = ", ".join(t.name for t in terms if t.loss.needs_teacher)
            raise ConfigError(f"loss terms {needing} need a teacher, but none was given")
        self.adapters = nn.ModuleDict()
        if any(t.loss.adapter for t in terms):
            if probe is None:
                raise ValueError("terms with adapters need a probe batch to size them")
            self._build_adapters(probe)

    @torch.no_grad()
    def _online(self, batch: Batch) -> Outputs:
        return self.teacher(batch)

    @torch.no_grad()
    def _build_adapters(self, probe: Batch) -> None:
        was_training = self.student.training
        s_out, t_out = self.student.eval()(probe), self.teacher(probe)
        self.student.train(was_training)
        for term in self.terms:
            if term.loss.adapter:
                self.adapters[term.name] = make_adapter(s_out.read(term.reads), t_out.read(term.teacher_reads))

    def use_teacher_source(self, source: TeacherSource) -> None:
        """Take teacher outputs from ``source`` (e.g. a ``TeacherCache``) instead of running the teacher."""
        self.teacher_source = source

    def train(self, mode: bool = True) -> Distiller:
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()  # frozen: BatchNorm statistics and dropout stay in inference mode
        return self

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        yield from self.student.parameters()
        yield from self.adapters.parameters()

    def forward(self, batch: Batch) -> dict[str, Tensor]:
        s_out = self.student(batch)
        t_out = self.teacher_source(batch) if self.teacher_source is not None else None
        losses: dict[str, Tensor] = {}
        total = s_out.logits.new_zeros(())
        for term in self.terms:
            student_value = s_out.read(term.reads)
            if term.name in self.adapters:
                student_value = self.adapters[term.name](student_value)
            needs = t_out is not None and term.loss.needs_teacher
            teacher_value = t_out.read(term.teacher_reads) if needs else None
            value = term.loss.fn(student_value, teacher_value, batch, **term.kwargs)
            losses[term.name] = value
            total = total + term.weight * value
        losses["loss"] = total
        return losses

    def teacher_reads(self) -> list[str]:
        """The teacher outputs the terms need (the cache stores these, plus logits)."""
        return sorted({"logits"} | {t.teacher_reads for t in self.terms if t.loss.needs_teacher})
