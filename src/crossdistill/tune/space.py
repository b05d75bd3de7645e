"""The search space of ``crossdistill tune``: a trial's recipe (at most one distillation term beside the task's
loss, its weight, temperature and options, a warm-up and the learning rate), drawn from the config's ``tune:``
section, which is checked against the task and the losses before anything trains."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from crossdistill.config import ConfigError, Experiment, TermSpec, TrainConfig, dump
from crossdistill.losses import LOSSES
from crossdistill.plans import experiment_task, losses_made_for, task_term
from crossdistill.registry import UnknownNameError
from crossdistill.rundir import stamp

NONE = "none"  # the candidate "no distillation term": the student alone
DEFAULT_TERMS = ("kd", "dist", "dkd", "ls_kd", "mlld")


@dataclass(frozen=True)
class Recipe:
    """One trial's choice: at most one distillation term beside the task's loss, the learning rate and any other
    trainer option searched."""

    term: str  # a registered loss, or NONE
    weight: float = 1.0
    kwargs: dict[str, float] = field(default_factory=dict)
    warmup_epochs: float = 0.0
    lr: float = 3e-3
    train: dict[str, float] = field(default_factory=dict)  # other trainer options (weight_decay, ...)

    @property
    def train_overrides(self) -> dict[str, float]:
        """The recipe's ``train:`` keys for a run."""
        return {"lr": self.lr, **self.train}

    def term_specs(self, exp: Experiment) -> list[TermSpec]:
        """The student's terms: the task's loss where it has labels, then this recipe's term."""
        own = [task_term(exp)] if exp.student_labels > 0 else []
        if self.term == NONE:
            return own
        return [*own, TermSpec(loss=self.term, weight=self.weight, kwargs=dict(self.kwargs),
                               warmup_epochs=self.warmup_epochs)]

    def config(self, exp: Experiment) -> str:
        """The recipe as YAML to paste into a config."""
        terms = [t.model_dump(exclude_defaults=True) | {"loss": t.loss} for t in self.term_specs(exp)]
        return yaml.safe_dump({"distill": {"terms": terms}, "train": self.train_overrides}, sort_keys=False)


class SearchSpace:
    """The config's ``tune:`` section, checked against the task and the losses before anything trains."""

    def __init__(self, exp: Experiment) -> None:
        spec, task = exp.tune, experiment_task(exp)
        self.spec = spec
        fits = [n for n in DEFAULT_TERMS if LOSSES.get(n).needs <= task.provides]
        if spec.terms is None and not fits:
            raise ConfigError(f"tune.terms: the default terms are for classes; task {task.name} needs them listed "
                              f"(losses made for it: {', '.join(losses_made_for(task))})")
        terms = list(spec.terms) if spec.terms is not None else ([NONE] if exp.student_labels > 0 else []) + fits
        if not terms:
            raise ConfigError("tune.terms: no candidate term (list at least one, e.g. [none, kd])")
        for name in terms:
            if name == NONE:
                if exp.student_labels == 0:
                    raise ConfigError("tune.terms: 'none' (the student alone) has nothing to learn from with "
                                      "student_labels: 0; the reference is then KD alone")
                continue
            try:
                loss = LOSSES.get(name)
            except UnknownNameError as error:  # names it, with a suggestion
                raise ConfigError(f"tune.terms: {error}") from None
            if not loss.needs_teacher:
                raise ConfigError(f"tune.terms: {name!r} is not a distillation term (it reads no teacher)")
            missing = sorted(loss.needs - task.provides)
            if missing:
                raise ConfigError(f"tune.terms: {name!r} needs {', '.join(missing)}, which task {task.name} "
                                  "does not provide")
            if loss.reads == "feats":
                raise ConfigError(f"tune.terms: {name!r} reads a feature map the search cannot choose; "
                                  "tune it with a variant")
        for name, ranges in spec.options.items():
            if name not in terms or name == NONE:
                raise ConfigError(f"tune.options.{name}: not one of tune.terms ({', '.join(terms)})")
            unknown = sorted(set(ranges) - set(LOSSES.get(name).options))
            if unknown:
                raise ConfigError(f"tune.options.{name}: {name!r} has no option {', '.join(unknown)}; its options: "
                                  f"{', '.join(LOSSES.get(name).options) or 'none'}")
            for option, (low, high) in ranges.items():
                if not 0 < low <= high:
                    raise ConfigError(f"tune.options.{name}.{option}: a log-uniform range needs 0 < low <= high, "
                                      f"got [{low}, {high}]")
        if spec.weight[0] <= 0 or spec.temperature[0] <= 0:
            raise ConfigError("tune.weight and tune.temperature are log-uniform: their low end must be > 0")
        searchable = {k for k, f in TrainConfig.model_fields.items() if "float" in str(f.annotation)} - {"lr"}
        for key, (low, high) in spec.train.items():
            if key not in searchable:
                raise ConfigError(f"tune.train.{key}: not a trainer option the search can draw; it can draw "
                                  f"{', '.join(sorted(searchable))} (the learning rate is tune.lr)")
            if not 0 < low <= high:
                raise ConfigError(f"tune.train.{key}: a log-uniform range needs 0 < low <= high, got [{low}, {high}]")
        self.terms = terms
        self.lr = spec.lr or (exp.train.lr / 3, exp.train.lr * 3)
        if self.lr[0] <= 0:
            raise ConfigError("tune.lr is log-uniform: its low end must be > 0")

    def key(self, exp: Experiment) -> str:
        """What a study was made for: the experiment as run saves it, and this space. A study of another key is
        refused (its trials answered another question)."""
        return stamp(dump(exp) + self.spec.model_dump_json()).config_hash

    @staticmethod
    def _draw(trial: Any, name: str, low: float, high: float, log: bool = True) -> float:
        return low if low == high else trial.suggest_float(name, low, high, log=log)

    def suggest(self, trial: Any) -> Recipe:
        term = trial.suggest_categorical("term", self.terms)
        lr = self._draw(trial, "lr", *self.lr)
        train = {key: self._draw(trial, f"train.{key}", low, high) for key, (low, high) in self.spec.train.items()}
        if term == NONE:
            return Recipe(NONE, lr=lr, train=train)
        kwargs = {}
        if "temperature" in LOSSES.get(term).options:
            kwargs["temperature"] = self._draw(trial, "temperature", *self.spec.temperature)
        for option, (low, high) in self.spec.options.get(term, {}).items():
            kwargs[option] = self._draw(trial, f"{term}.{option}", low, high)
        return Recipe(term, self._draw(trial, "weight", *self.spec.weight), kwargs,
                      self._draw(trial, "warmup_epochs", *self.spec.warmup_epochs, log=False), lr, train)

    def recipe(self, params: dict[str, Any]) -> Recipe:
        """A finished trial's recipe from its parameters (fixed ranges were not drawn: their value), each number to
        4 significant digits: the recipe the final runs train is the YAML the report shows."""
        params = {k: float(f"{v:.4g}") if isinstance(v, float) else v for k, v in params.items()}
        term = params["term"]
        lr = params.get("lr", self.lr[0])
        train = {key: params.get(f"train.{key}", low) for key, (low, _) in self.spec.train.items()}
        if term == NONE:
            return Recipe(NONE, lr=lr, train=train)
        kwargs = {}
        if "temperature" in LOSSES.get(term).options:
            kwargs["temperature"] = params.get("temperature", self.spec.temperature[0])
        for option, (low, _) in self.spec.options.get(term, {}).items():
            kwargs[option] = params.get(f"{term}.{option}", low)
        return Recipe(term, params.get("weight", self.spec.weight[0]), kwargs,
                      params.get("warmup_epochs", self.spec.warmup_epochs[0]), lr, train)


