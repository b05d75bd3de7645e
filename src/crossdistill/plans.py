"""The student runs of an experiment: the baseline, the distilled student and any named variants."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crossdistill.config import ConfigError, Experiment, TermSpec
from crossdistill.distill.distiller import Term, resolve_terms
from crossdistill.losses import LOSSES
from crossdistill.tasks import Task, build_task


@dataclass
class StudentPlan:
    name: str
    labels: float  # share of training labels the student may use
    terms: list[Term]
    teacher: str | None  # None: trained alone
    seeds: list[int]
    train: dict[str, Any] = field(default_factory=dict)
    select_on: str = "labels"  # model selection: validation labels, or agreement with the teacher
    init_from: str | None = None  # an earlier plan whose selected weights (same fold, seed) this one starts from

    @property
    def needs_teacher(self) -> bool:
        return any(t.loss.needs_teacher for t in self.terms)

    @property
    def teacher_names(self) -> list[str]:
        """Every teacher the terms read: the run's own, and those that terms name (multi-teacher runs)."""
        if self.teacher is None:
            return []
        named = {n for t in self.terms if t.loss.needs_teacher and t.teachers for n in t.teachers}
        uses_own = any(t.loss.needs_teacher and not t.teachers for t in self.terms)
        return sorted(named | ({self.teacher} if uses_own else set()))


def experiment_task(exp: Experiment) -> Task:
    """The experiment's ``task`` (default: classification, what every built-in data set's label is)."""
    return build_task(exp.task.as_dict() if exp.task is not None else "classification")


def task_term(exp: Experiment) -> TermSpec:
    """The task loss a model trains with alone (the teacher, the baseline student)."""
    return experiment_task(exp).task_term()


def student_plans(exp: Experiment, full: bool = False) -> list[StudentPlan]:
    """Baseline (the task's loss only, same label budget), distilled, then the variants in config order.
    ``full`` runs every run over the experiment's ``full_seeds`` (default: its seeds), ignoring a variant's shorter
    list, and the variants marked ``full_only``. Every term's loss must suit the data set's task (a KL over classes
    means nothing for a value)."""
    task = experiment_task(exp)
    baseline = resolve_terms([task_term(exp)])
    seeds = exp.seeds_for(full)
    plans = [StudentPlan("baseline", exp.student_labels, baseline, None, seeds),
             StudentPlan("distilled", exp.student_labels, resolve_terms(exp.distill.terms), "teacher", seeds)]
    for name, variant in exp.variants.items():
        if variant.full_only and not full:
            continue
        terms = resolve_terms(variant.terms, f"variants.{name}.terms") if variant.terms is not None else plans[1].terms
        plan = StudentPlan(
            name=name,
            labels=exp.student_labels if variant.student_labels is None else variant.student_labels,
            terms=terms, teacher=variant.teacher or "teacher",
            seeds=seeds if (full or variant.seeds is None) else variant.seeds,
            train=variant.train, init_from=variant.init_from,
        )
        check_init_from(plan, plans)
        plans.append(plan)
    if exp.student_labels == 0:
        plans = [p for p in plans if p.name != "baseline"]  # no labels: nothing to train alone
    for plan in plans:
        plan.select_on = exp.train_for(plan.train).select_on
        if not plan.needs_teacher:
            plan.teacher = None
        for name in plan.teacher_names:
            try:
                exp.teacher_spec(name)  # unknown teacher name -> ConfigError now, naming the run
            except ConfigError as error:
                where = "distill" if plan.name in ("baseline", "distilled") else f"variants.{plan.name}"
                raise ConfigError(f"{where}: {error}") from None
        check_task(plan, task)
        task.check_student_run(plan.name, plan.select_on)
        uses_labels = any(t.loss is LOSSES.get(task.loss) for t in plan.terms)
        if plan.labels == 0 and uses_labels and not plan.needs_teacher:
            raise ConfigError(f"student run {plan.name!r} has no labels (student_labels: 0) and no teacher "
                              "term: it has nothing to learn from")
    return plans


def losses_made_for(task: Task) -> list[str]:
    """The losses that need what this task's models provide (not those every model takes, such as feature
    losses), distillation terms first, then the task loss."""
    names = [n for n in LOSSES.names() if LOSSES.get(n).needs and LOSSES.get(n).needs <= task.provides]
    return sorted(names, key=lambda n: not LOSSES.get(n).needs_teacher)


def check_task(plan: StudentPlan, task: Task) -> None:
    """A clear error, before training, for a term whose loss does not suit the experiment's task."""
    for term in plan.terms:
        missing = sorted(term.loss.needs - task.provides)
        if missing:
            raise ConfigError(f"student run {plan.name!r}: loss {term.name!r} needs a model giving "
                              f"{', '.join(missing)}, but task {task.name} provides {', '.join(sorted(task.provides))}"
                              f"; losses made for {task.name}: {', '.join(losses_made_for(task))} "
                              "(`crossdistill list losses` says what each loss needs)")


def check_init_from(plan: StudentPlan, earlier: list[StudentPlan]) -> None:
    """``init_from`` must name a run trained before this one, on every seed this one runs."""
    if plan.init_from is None:
        return
    source = next((p for p in earlier if p.name == plan.init_from), None)
    if source is None:
        raise ConfigError(f"variant {plan.name!r}: init_from {plan.init_from!r} is not a student run listed before "
                          f"it (runs before it: {', '.join(p.name for p in earlier)})")
    missing = sorted(set(plan.seeds) - set(source.seeds))
    if missing:
        raise ConfigError(f"variant {plan.name!r}: init_from {plan.init_from!r} runs seeds {source.seeds}, not "
                          f"{missing}: give both the same seeds")
