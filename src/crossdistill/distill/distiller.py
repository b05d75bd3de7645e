"""``Distiller``: student + teacher(s) + loss terms -> a dict of named losses.

``L = sum_i w_i L_i``; each term reads one named output on both sides (``logits``, ``embed``,
``feats.<name>``) or, for losses that need several, a tuple of them (``(logits, embed)``, a dual encoder's
towers). A term reads the run's teacher, one named teacher, or a weighted ensemble of teachers (multi-teacher
distillation). Teacher outputs come from the teacher itself (online) or from a ``TeacherCache``. Teachers are
frozen, except for losses that train the teacher jointly with the student (``c2kd``): the Distiller then trains
its own copy and never caches it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from crossdistill.config import ConfigError, TermSpec
from crossdistill.data.batch import Batch, SplitData
from crossdistill.distill.adapters import make_adapter
from crossdistill.losses import LOSSES, LossDef
from crossdistill.losses.base import NeedsPreparation
from crossdistill.models.outputs import Outputs, Reads
from crossdistill.registry import UnknownNameError

TeacherSource = Callable[[Batch], Outputs]
PRIMARY = "teacher"  # the name a term's teacher goes by when the term names none


@dataclass
class Term:
    name: str
    loss: LossDef
    weight: float
    reads: Reads  # the student's output(s)
    teacher_reads: Reads  # the teacher's output(s)
    kwargs: dict[str, Any] = field(default_factory=dict)
    teachers: dict[str, float] | None = None  # teacher name -> ensemble weight (sum 1); None: the run's teacher
    warmup_epochs: float = 0.0  # the weight ramps linearly from 0 to ``weight`` over these epochs

    def weight_at(self, epoch: float) -> float:
        """The term's weight ``epoch`` epochs into training (fractional)."""
        return self.weight if self.warmup_epochs <= 0 else self.weight * min(1.0, epoch / self.warmup_epochs)

    @property
    def reads_several(self) -> bool:
        return isinstance(self.reads, tuple)


@dataclass
class PrepareContext:
    """What a loss module may look at before training (``Distiller.prepare``)."""

    train: SplitData  # the training split: paired inputs of every modality (labels are not for the student)
    new_student: Callable[[], nn.Module]  # a freshly initialised model of the student's architecture
    seed: int
    # For losses that train models of their own before the student's training (mst's co-training stages):
    student: nn.Module | None = None  # the student about to be trained (a stage may train it first)
    val: SplitData | None = None  # the validation split, for choosing among a stage's epochs
    labeled: Tensor | None = None  # (N_train,) bool: the rows whose label the student's budget allows
    new_teacher_over: Callable[[list[str]], nn.Module] | None = None  # the teacher's architecture, these modalities
    lr: float = 3e-3  # the student's optimiser settings, which such stages reuse
    batch_size: int = 64


def _ensemble_weights(loss: str, teacher: str | dict[str, float] | None) -> dict[str, float] | None:
    if teacher is None or isinstance(teacher, str):
        return None if teacher is None else {teacher: 1.0}
    if not teacher or any(w <= 0 for w in teacher.values()):
        raise ConfigError(f"loss {loss!r}: teacher weights must be a non-empty mapping of positive numbers, "
                          f"got {teacher}")
    total = sum(teacher.values())
    return {name: w / total for name, w in teacher.items()}


def resolve_terms(specs: list[TermSpec], where: str = "distill.terms") -> list[Term]:
    """Config terms -> ``Term``s with unique names (``kd``, ``kd_2``, ...); an error names the term
    (``distill.terms.1``, ``variants.<name>.terms.0``)."""
    terms = []
    for index, spec in enumerate(specs):
        try:
            terms.append(_resolve_term(spec, specs[:index]))
        except (ConfigError, UnknownNameError) as error:
            raise ConfigError(f"{where}.{index} (loss {spec.loss!r}): {error}") from None
    if not terms:
        raise ConfigError(f"{where}: no loss terms: give at least one (e.g. {{loss: ce}})")
    return terms


def _resolve_term(spec: TermSpec, before: list[TermSpec]) -> Term:
    """One config term -> a ``Term`` (``before``: the terms listed before it, for its unique name)."""
    loss = LOSSES.get(spec.loss)
    count = 1 + sum(s.loss == spec.loss for s in before)
    name = spec.loss if count == 1 else f"{spec.loss}_{count}"
    unknown = sorted(set(spec.kwargs) - set(loss.options))
    if unknown:
        raise ConfigError(f"loss {spec.loss!r} has no option {', '.join(unknown)}; "
                          f"its options: {', '.join(loss.options) or 'none'}")
    reads = tuple(spec.reads) if isinstance(spec.reads, list) else spec.reads or loss.reads
    if isinstance(reads, tuple) != isinstance(loss.reads, tuple):
        kind = "a list of outputs" if isinstance(loss.reads, tuple) else "one output"
        raise ConfigError(f"loss {spec.loss!r} reads {kind} (default {loss.reads!r}), got reads: {spec.reads!r}")
    if reads == "feats":  # the loss reads a feature map, which only the config can name
        raise ConfigError(f"loss {spec.loss!r} reads an intermediate feature map: set reads: "
                          "feats.<modality>.stage<i> (and teacher_reads when the teacher's differs)")
    teachers = _ensemble_weights(spec.loss, spec.teacher)
    if teachers is not None and not loss.needs_teacher:
        raise ConfigError(f"loss {spec.loss!r} uses no teacher, but the term names teacher {spec.teacher}")
    if teachers is not None and len(teachers) > 1 and (isinstance(reads, tuple) or loss.single_teacher):
        raise ConfigError(f"loss {spec.loss!r} reads one whole teacher; it cannot take an ensemble")
    # A loss's own teacher output holds unless the config moves the student's single read (mgkd's embedding); a
    # loss reading several student outputs (ofa) keeps its teacher read whatever they are.
    own = loss.teacher_reads if not spec.reads or isinstance(reads, tuple) else None
    teacher_reads = spec.teacher_reads or own or reads
    return Term(name, loss, spec.weight, reads, teacher_reads, dict(spec.kwargs), teachers,
                spec.warmup_epochs)


class Distiller(nn.Module):
    """Owns the student, the adapters, the losses' own modules and the teachers. ``distiller(batch)`` returns
    ``{"loss": total, "<term>": value, ...}``.

    ``teacher`` is one model (the run's teacher) or a mapping name -> model for terms that name teachers;
    ``primary`` is the name of the run's teacher in that mapping.
    """

    def __init__(self, student: nn.Module, teacher: nn.Module | Mapping[str, nn.Module] | None,
                 terms: list[Term], probe: Batch | None = None, primary: str = PRIMARY) -> None:
        super().__init__()
        self.student, self.terms, self.primary = student, terms, primary
        self.epoch = float("inf")  # training progress in epochs, for terms that warm up; set by fit()
        given = {} if teacher is None else dict(teacher) if isinstance(teacher, Mapping) else {primary: teacher}
        needed = self._teachers_needed()
        missing = sorted(needed - set(given))
        if missing:
            needing = ", ".join(t.name for t in terms if t.loss.needs_teacher)
            raise ConfigError(f"loss terms {needing} need a teacher ({', '.join(missing)}), but "
                              f"{'none was' if not given else ', '.join(sorted(given)) + ' were'} given")
        joint = {name for t in terms if t.loss.trains_teacher for name in self._teacher_names(t)}
        self.teachers = nn.ModuleDict({
            # A jointly trained teacher is this run's own copy: the shared teacher stays as it was.
            name: copy.deepcopy(model).requires_grad_(True) if name in joint
            else model.eval().requires_grad_(False)
            for name, model in given.items() if name in needed})
        self.joint = joint
        self.teacher_sources: dict[str, TeacherSource] = {name: self._online(name) for name in self.teachers}
        self.adapters = nn.ModuleDict()
        self.loss_modules = nn.ModuleDict()
        if any(t.loss.adapter or t.loss.module is not None for t in terms):
            if probe is None:
                raise ValueError("terms with adapters or loss modules need a probe batch to size them")
            self._build_from_probe(probe)

    @property
    def teacher(self) -> nn.Module | None:
        """The run's (primary) teacher, if any."""
        return dict(self.teachers.items()).get(self.primary)  # ModuleDict has no get()

    def _teacher_names(self, term: Term) -> dict[str, float]:
        return term.teachers or {self.primary: 1.0}

    def _teachers_needed(self) -> set[str]:
        return {name for t in self.terms if t.loss.needs_teacher for name in self._teacher_names(t)}

    def _online(self, name: str) -> TeacherSource:
        def run(batch: Batch) -> Outputs:
            with torch.set_grad_enabled(name in self.joint and torch.is_grad_enabled()):
                return self.teachers[name](batch)
        return run

    @torch.no_grad()
    def _build_from_probe(self, probe: Batch) -> None:
        was_training = self.student.training
        s_out = self.student.eval()(probe)
        t_outs = {name: self.teachers[name].eval()(probe) for name in self.teachers}
        self.train(was_training)
        for term in self.terms:
            student_value = s_out.read(term.reads)
            teacher_value = self._teacher_value(term, t_outs)
            if term.loss.adapter:
                self.adapters[term.name] = make_adapter(student_value, teacher_value)
                student_value = self.adapters[term.name](student_value)
            module = term.loss.build(student_value, teacher_value, term.kwargs)
            if module is not None:
                self.loss_modules[term.name] = module

    def _teacher_value(self, term: Term, t_outs: dict[str, Outputs]) -> Any:
        if not term.loss.needs_teacher or not t_outs:
            return None
        names = self._teacher_names(term)
        if term.reads_several:  # (one teacher: ensembles are refused for these)
            return t_outs[next(iter(names))].read(term.teacher_reads)
        # An ensemble reads the weighted mean of its teachers' outputs (for logits: averaged before the softmax).
        return sum(w * t_outs[name].read(term.teacher_reads) for name, w in names.items())

    def prepare(self, context: PrepareContext) -> None:
        """Let loss modules that need the teacher and the training data before training (``mgkd``'s saliency
        test) see them."""
        for term in self.terms:
            if term.name in self.loss_modules and isinstance(self.loss_modules[term.name], NeedsPreparation):
                teacher = self.teachers[next(iter(self._teacher_names(term)))]
                self.loss_modules[term.name].prepare(teacher, context)

    def use_teacher_source(self, source: TeacherSource, name: str | None = None) -> None:
        """Take teacher ``name``'s outputs from ``source`` (e.g. a ``TeacherCache``) instead of running it."""
        name = name or self.primary
        if name in self.joint:
            raise ValueError(f"teacher {name!r} is trained jointly with the student; its outputs cannot be cached")
        self.teacher_sources[name] = source

    def train(self, mode: bool = True) -> Distiller:
        super().train(mode)
        for name, teacher in self.teachers.items():
            if name not in self.joint:
                teacher.eval()  # frozen: BatchNorm statistics and dropout stay in inference mode
        return self

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        yield from self.student.parameters()
        yield from self.adapters.parameters()
        yield from self.loss_modules.parameters()
        for name in sorted(self.joint):
            yield from self.teachers[name].parameters()

    def training_state(self) -> nn.ModuleDict:
        """Everything besides the student that training changes (checkpointed with it for resuming)."""
        return nn.ModuleDict({"adapters": self.adapters, "losses": self.loss_modules,
                              "teachers": nn.ModuleDict({n: self.teachers[n] for n in sorted(self.joint)})})

    def trained_side(self) -> nn.Module:
        """A module whose forward is this distiller's and whose submodules are only what training changes (student,
        adapters, loss modules, jointly trained teachers): what DistributedDataParallel wraps, so that frozen
        teachers are neither broadcast nor tracked, and every parameter it holds gets a gradient each step."""
        return _TrainedSide(self)

    def forward(self, batch: Batch) -> dict[str, Tensor]:
        s_out = self.student(batch)
        t_outs = {name: source(batch) for name, source in self.teacher_sources.items()}
        losses: dict[str, Tensor] = {}
        total = s_out.embed.new_zeros(())
        for term in self.terms:
            student_value = s_out.read(term.reads)
            if term.name in self.adapters:
                student_value = self.adapters[term.name](student_value)
            teacher_value = self._teacher_value(term, t_outs)
            if term.name in self.loss_modules:
                module = self.loss_modules[term.name]
                if hasattr(module, "epoch"):  # a loss whose own weights follow a schedule (mst)
                    module.epoch = self.epoch
                value = module(student_value, teacher_value, batch)
            else:
                value = term.loss.fn(student_value, teacher_value, batch, **term.kwargs)
            losses[term.name] = value
            total = total + term.weight_at(self.epoch) * value
        losses["loss"] = total
        return losses

    def teacher_reads(self, name: str | None = None) -> list[str]:
        """The outputs of teacher ``name`` the terms need (the cache stores these)."""
        name = name or self.primary
        needed = [t.teacher_reads for t in self.terms if t.loss.needs_teacher and name in self._teacher_names(t)]
        return sorted({n for reads in needed for n in ((reads,) if isinstance(reads, str) else reads)})


class _TrainedSide(nn.Module):
    def __init__(self, distiller: Distiller) -> None:
        super().__init__()
        self.student, self.adapters, self.loss_modules = distiller.student, distiller.adapters, distiller.loss_modules
        self.joint_teachers = nn.ModuleDict({n: distiller.teachers[n] for n in sorted(distiller.joint)})
        self._distiller = [distiller]  # (a list: not a submodule, so its frozen teachers stay outside)

    def forward(self, batch: Batch) -> dict[str, Tensor]:
        return self._distiller[0](batch)
