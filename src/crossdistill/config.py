"""One experiment as validated pydantic models; ``load(yaml, overrides)`` is the only way in.

Defaults live here (as in nanoGPT); a YAML file overrides only what it changes, and ``--set a.b=c`` overrides
the file (``_set_path`` states its one rule). Unknown keys are rejected with the list of valid ones, before anything
is trained; ``check`` validates everything ``run`` does.
"""

from __future__ import annotations

from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from crossdistill.errors import CrossdistillError
from crossdistill.specs import (  # (re-exported: the sections of an experiment)
    DataConfig,
    EncoderSpec,
    ExternalSpec,
    ModelSpec,
    SpecAugment,
    Strict,
    TermSpec,
    TrainConfig,
    TuneSpec,
)

__all__ = ["ConfigError", "DataConfig", "DistillConfig", "EncoderSpec", "EvalConfig", "Experiment", "ExternalSpec",
           "ModelSpec", "SpecAugment", "Strict", "TaskSpec", "TermSpec", "TrainConfig", "TuneSpec", "VariantSpec",
           "dump", "key_path", "load", "parse_overrides"]


class ConfigError(CrossdistillError, ValueError):
    """A configuration that cannot run; the message names the key and the alternatives."""


class DistillConfig(Strict):
    terms: list[TermSpec] = Field(
        default_factory=lambda: [TermSpec(loss="ce"), TermSpec(loss="kd", kwargs={"temperature": 4.0})]
    )
    cache: bool = Field(True, description="precompute teacher outputs once (memory-mapped, fingerprinted)")


class VariantSpec(Strict):
    """A further named student run: any field left out is the experiment's."""

    student_labels: float | None = Field(None, ge=0, le=1)
    terms: list[TermSpec] | None = None
    teacher: str | None = Field(None, description="name of a teacher in extra_teachers, or 'teacher'")
    seeds: list[int] | None = None
    full_only: bool = Field(False, description="run only under --full (keeps the quick run short)")
    train: dict[str, Any] = Field(default_factory=dict)
    init_from: str | None = Field(None, description="start from the weights an earlier student run ('distilled' or "
                                  "a variant above) selected on the same fold and seed, e.g. to fine-tune on a few "
                                  "labels after distilling without any")


class TaskSpec(BaseModel):
    """What the models are for: a registered task by name (``crossdistill list tasks``); every other key is one of
    its options (e.g. retrieval's ``positives``), checked by the task. ``task: regression`` is short for
    ``task: {name: regression}``."""

    model_config = ConfigDict(extra="allow")
    name: str

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.kwargs}


# Keys of earlier versions, refused with what replaces them (CHANGELOG.md).
MOVED_KEYS = {
    ("retrieval",): "`retrieval: {positives: P}` is now `task: {name: retrieval, positives: P}`",
    ("data", "options", "task"): "`data.options.task: regression` is now the top-level `task: regression`",
}


class EvalConfig(Strict):
    latency_repeats: int = Field(30, ge=1)
    modality_ablation: bool = True


class Experiment(Strict):
    name: str
    data: DataConfig = Field(default_factory=DataConfig)
    teacher: ModelSpec
    extra_teachers: dict[str, ModelSpec] = Field(default_factory=dict)
    student: ModelSpec
    student_labels: float = Field(1.0, ge=0, le=1, description="share of training labels the student may use")
    distill: DistillConfig = Field(default_factory=DistillConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    full_seeds: list[int] | None = Field(None, min_length=1, description="the seeds of `run --full` (default: "
                                         "seeds): a quick run on few seeds, the full one on more")
    variants: dict[str, VariantSpec] = Field(default_factory=dict)
    evaluate: EvalConfig = Field(default_factory=EvalConfig)
    task: TaskSpec | None = Field(None, description="what the models are for: classification, regression, "
                                  "retrieval, ... (`crossdistill list tasks`); default: the data set's own")
    tune: TuneSpec = Field(default_factory=TuneSpec, description="`crossdistill tune`'s search space (not part "
                           "of the run: a run's directory does not change with it)")

    @field_validator("variants")
    @classmethod
    def _variant_names_free(cls, variants: dict[str, VariantSpec]) -> dict[str, VariantSpec]:
        taken = {"teacher", "baseline", "distilled"}
        for name in variants:
            if name in taken:
                raise ValueError(f"variant name {name!r} is reserved ({', '.join(sorted(taken))})")
        return variants

    def teacher_spec(self, name: str) -> ModelSpec:
        if name == "teacher":
            return self.teacher
        if name not in self.extra_teachers:
            known = ", ".join(["teacher", *self.extra_teachers])
            raise ConfigError(f"unknown teacher {name!r}; available: {known}")
        return self.extra_teachers[name]

    def seeds_for(self, full: bool) -> list[int]:
        return (self.full_seeds or self.seeds) if full else self.seeds

    def train_for(self, overrides: dict[str, Any], where: str = "train") -> TrainConfig:
        """The experiment's ``train`` with a model's or variant's own ``train:`` keys on top."""
        return _validate(TrainConfig, {**self.train.model_dump(), **overrides}, where)

    def check_train_overrides(self) -> None:
        """Every ``train:`` of a teacher or variant validated now (``check`` and ``run`` alike), its key named."""
        for name in ["teacher", *self.extra_teachers]:
            where = "teacher.train" if name == "teacher" else f"extra_teachers.{name}.train"
            self.train_for(self.teacher_spec(name).train, where)
        self.train_for(self.student.train, "student.train")
        for name, variant in self.variants.items():
            self.train_for(variant.train, f"variants.{name}.train")


def _set_path(tree: dict[str, Any], dotted: str, value: Any) -> None:
    """``--set a.b.c=VALUE``, one rule: the dotted path walks mappings by key and lists by index
    (``distill.terms.1.kwargs.temperature=2``); a mapping VALUE is merged into the mapping already there (keys it
    does not name keep their values), any other VALUE replaces what is there, and ``null`` removes the key (a
    setting then takes its default; ``student.encoders.image=null`` drops that encoder)."""
    *parents, leaf = dotted.split(".")
    node: Any = tree
    for depth, key in enumerate(parents):
        where = ".".join(parents[: depth + 1])
        node = node[_index(node, key, dotted, where)] if isinstance(node, list) else node.setdefault(key, {})
        if not isinstance(node, dict | list):
            raise ConfigError(f"--set {dotted}: {where} is a value ({node!r}), not a section or a list")
    if isinstance(node, list):
        position = _index(node, leaf, dotted, dotted)
        node[position] = _merged(node[position], value)
    elif value is None:
        node.pop(leaf, None)
    else:
        node[leaf] = _merged(node.get(leaf), value)


def _index(items: list, key: str, dotted: str, where: str) -> int:
    if not key.lstrip("-").isdigit() or not -len(items) <= int(key) < len(items):
        raise ConfigError(f"--set {dotted}: {where} indexes a list of {len(items)} item(s) (0..{len(items) - 1})")
    return int(key)


def _merged(old: Any, new: Any) -> Any:
    """``new`` merged into ``old`` when both are mappings (recursively), else ``new``."""
    if isinstance(old, dict) and isinstance(new, dict):
        return {**old, **{k: _merged(old.get(k), v) for k, v in new.items()}}
    return new


def _yaml(text: str, where: str) -> Any:
    """Parsed YAML, or a one-line error naming where and the line."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"{where}: not valid YAML{at}: {problem}") from None


def parse_overrides(overrides: list[str]) -> list[tuple[str, Any]]:
    """``["train.lr=3e-4", "seeds=[0,1]"]`` -> ``[("train.lr", 0.0003), ("seeds", [0, 1])]`` (values are YAML)."""
    parsed = []
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        key, raw = item.split("=", 1)
        parsed.append((key.strip(), _yaml(raw, f"--set {item}")))
    return parsed


def _model_at(model: type[BaseModel], path: tuple) -> type[BaseModel] | None:
    """The pydantic model that holds the key at ``path`` (descending through sub-models and dict values)."""
    current: Any = model
    for key in path:
        if isinstance(current, type) and issubclass(current, BaseModel) and key in current.model_fields:
            current = current.model_fields[key].annotation
        elif isinstance(key, str | int) and get_origin(current) in (dict, list):
            current = get_args(current)[-1]
        else:
            return None
        while get_origin(current) in (Union, UnionType):  # Optional[X] -> X
            current = next(a for a in get_args(current) if a is not type(None))
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def key_path(loc: tuple) -> str:
    """A config location as one line: ``train.lr``; a key with spaces, line breaks or nothing in it is quoted
    (``data.options.'\\n'``), so that an error message stays one readable line."""
    return ".".join(str(p) if str(p).isprintable() and str(p).strip() == str(p) and str(p) else repr(p)
                    for p in loc)


def _format_error(error: ValidationError, model: type[BaseModel]) -> str:
    lines = []
    for item in error.errors():
        path = key_path(item["loc"])
        if item["type"] == "extra_forbidden":
            owner = _model_at(model, item["loc"][:-1])
            valid = f" (valid keys here: {', '.join(owner.model_fields)})" if owner else ""
            lines.append(f"unknown config key {path!r}{valid}")
        else:
            lines.append(f"{path}: {item['msg']}")
    return "; ".join(lines)


def _validate(model: type[BaseModel], raw: dict[str, Any], where: str = "") -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        message = _format_error(error, model)
        raise ConfigError(f"{where}: {message}" if where else message) from None


def _refuse_moved_keys(raw: dict[str, Any], where: str) -> None:
    for path, instead in MOVED_KEYS.items():
        node: Any = raw
        for key in path:
            node = node.get(key, None) if isinstance(node, dict) else None
        if node is not None:
            raise ConfigError(f"{where}: config key {'.'.join(path)!r} was replaced: {instead} (see CHANGELOG.md)")


def load(path: str | Path, overrides: list[str] | None = None) -> Experiment:
    """Read a YAML experiment, apply ``--set`` overrides, validate everything."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    raw = _yaml(path.read_text(), str(path)) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    raw.setdefault("name", path.stem)
    for key, value in parse_overrides(overrides or []):
        _set_path(raw, key, value)
    _refuse_moved_keys(raw, str(path))
    experiment = _validate(Experiment, raw)
    experiment.check_train_overrides()
    return experiment


def dump(experiment: Experiment) -> str:
    """The experiment as ``run`` saves it (config.yaml, whose text keys the run directory): ``tune`` is left out,
    as it changes no model a run trains."""
    # (train.log appears only when set: a config without trackers keeps the identity it had before they existed)
    exclude: dict[str, Any] = {"tune": True, **({} if experiment.train.log else {"train": {"log"}})}
    return yaml.safe_dump(experiment.model_dump(mode="json", exclude=exclude), sort_keys=False)
