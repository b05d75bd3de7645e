"""What a model is for: the ``Task`` protocol and the ``TASKS`` registry.

A task owns every decision that depends on what is predicted: how a label column is parsed and what an
unlabelled row holds, how label budgets are stratified, the model it needs, its task loss, how outputs become
predictions, the validation score that selects an epoch, its test metrics and how they are printed, what an
export must record and what ``diagnose`` probes. Drivers (pipeline, training loop, evaluation, report, export)
call the task held by ``DataInfo.task``; none of them branches on a task's name, so a new task is one file.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, ValidationError
from torch import Tensor, nn

from crossdistill.config import ConfigError, ModelSpec, TermSpec, key_path
from crossdistill.data.batch import DataInfo, has_label
from crossdistill.data.splits import strata
from crossdistill.data.targets import binned_labels, class_labels
from crossdistill.models.fusion import MultiModalModel
from crossdistill.models.signatures import LogitsOnly
from crossdistill.registry import Registry
from crossdistill.stats import Statistic, mean_of


class NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


# metric -> (scale, decimals, unit) for printing: a share in % (x100, one decimal) or a number as it is
PERCENT, NUMBER = (100.0, 1, "%"), (1.0, 3, "")


class Task:
    """Base of every task. Subclasses set the class attributes and override what differs; the defaults are those
    of a model with a head over fused encoders (``MultiModalModel``) whose outputs are ``logits``."""

    name: ClassVar[str] = ""
    loss: ClassVar[str]  # the task loss a model trains with alone (teacher, baseline student)
    provides: ClassVar[frozenset[str]]  # what its models output, matched with each loss's ``needs``
    metric_names: ClassVar[tuple[str, ...]]  # test metrics in report order; the first (higher is better) headlines
    metric_style: ClassVar[dict[str, tuple[float, int, str]]]
    metrics_text: ClassVar[str]  # the metrics in words, for the report
    selection_text: ClassVar[str] = "Model selection on the validation split (labels)"
    target_kinds: ClassVar[tuple[str, ...]] = ("classes",)  # the built-in data sets' targets it can use
    Options: ClassVar[type[BaseModel]] = NoOptions
    modality_ablation: ClassVar[bool] = True  # the test of each modality removed in turn makes sense
    diagnosable: ClassVar[bool] = True  # ``crossdistill diagnose`` has probes for it

    def __init__(self, **options: Any) -> None:
        try:
            self.options = self.Options.model_validate(options)
        except ValidationError as error:
            problems = "; ".join(f"{key_path(e['loc'])}: {e['msg']}" for e in error.errors())
            raise ConfigError(f"task {self.name}: {problems} (its options: "
                              f"{', '.join(self.Options.model_fields) or 'none'})") from None

    def spec(self) -> dict[str, Any]:
        """``{"name": ..., **options}``: what ``build_task`` rebuilds this task from (data_info.json, exports)."""
        return {"name": self.name, **self.options.model_dump()}

    # ---- targets ----------------------------------------------------------------------------------------------
    def parse_labels(self, cells: list[Any], bins: list[float] | None = None) -> tuple[list[str], np.ndarray]:
        """A label column -> (class names, targets); the default reads class names or numbers. An empty, NaN,
        NA or None cell is no label (class -1: an unlabelled row), never a class of its own."""
        return binned_labels(cells, bins) if bins else class_labels(cells)

    def check_label_options(self, bins: list[float] | None) -> None:
        """A clear error, before any file is read, for label options this task cannot use."""

    def label_is_number(self, bins: list[float] | None) -> bool:
        """Whether each label cell must be a number (checked row by row before anything trains)."""
        return bool(bins)

    def unlabelled(self, count: int) -> np.ndarray:
        """Targets of rows without a label (class -1)."""
        return np.full(count, -1, dtype=np.int64)

    def fit_targets(self, targets: np.ndarray, train: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
        """Targets as the model sees them, fitted on the training rows only; (0, 1) means unchanged."""
        return targets, (0.0, 1.0)

    def strata(self, targets: np.ndarray) -> np.ndarray:
        """(N,) stratum of each row for splits and label budgets; -1 for rows without a label."""
        return strata(targets)

    def num_classes(self, class_names: list[str]) -> int:
        return len(class_names)

    # ---- model and loss ---------------------------------------------------------------------------------------
    def output_dim(self, info: DataInfo) -> int:
        return info.num_classes

    def build_model(self, encoders: dict[str, nn.Module], spec: ModelSpec, info: DataInfo, role: str) -> nn.Module:
        return MultiModalModel(encoders, self.output_dim(info), spec.fusion, spec.embed_dim, spec.dropout)

    def task_term(self) -> TermSpec:
        return TermSpec(loss=self.loss)

    def check_student_run(self, run: str, select_on: str) -> None:
        """A clear error, before training, for a student run this task cannot select or train."""

    # ---- selection and evaluation -----------------------------------------------------------------------------
    outputs: ClassVar[tuple[str, ...]] = ("logits",)  # the model outputs predictions and scores read

    def collect(self, values: dict[str, Tensor]) -> Any:
        """Those outputs over a whole split, {name: (N, ...)}, as ``predictions``/``score`` take them."""
        return values["logits"]

    def selection_targets(self, target: Tensor) -> Tensor:
        """What the validation score compares with, from the validation split's targets."""
        return target

    def predictions(self, outputs: Tensor) -> Tensor:
        """(N, K) outputs -> (N, ...) predictions comparable with targets (selection by agreement)."""
        return outputs.argmax(dim=1)

    def validation_score(self, outputs: Tensor, targets: Tensor) -> float:
        """The score that selects an epoch (higher is better)."""
        return float((self.predictions(outputs) == targets).float().mean())

    def score(self, outputs: Tensor, target: Tensor, info: DataInfo) -> dict:
        """Test metrics ``{"metrics": {name: value}, "confusion": matrix or None, ...}``."""
        raise NotImplementedError

    def test_rows(self, outputs: Any, target: Tensor, info: DataInfo) -> dict[str, np.ndarray]:
        """Per-test-row arrays, all (N,), kept in the run directory (``test_rows.npz``) for the paired bootstrap
        (``crossdistill.stats``); the default: target, predicted class and whether it is right."""
        target_np, predicted = target.numpy(), self.predictions(outputs).numpy()
        correct = (target_np == predicted).reshape(len(target_np), -1).all(axis=1)
        return {"target": target_np, "predicted": predicted, "correct": correct.astype(np.float64)}

    # the headline metric (``metric_names[0]``) on resamples of those rows: (rows, (B, n) indices) -> (B,)
    headline_statistic: ClassVar[Statistic] = staticmethod(mean_of("correct"))

    def validation_loss(self, outputs: Any, targets: Tensor) -> float | None:
        """Breaks ties in the validation score (lower is better): cross-entropy against the class ids (labels, or
        the teacher's predictions); None where the task has none."""
        if outputs.dim() != 2 or targets.dim() != 1 or targets.is_floating_point():
            return None  # (not one class id per row: a task of its own defines its loss)
        labelled = targets >= 0
        if not bool(labelled.any()):
            return None
        return float(F.cross_entropy(outputs[labelled].float(), targets[labelled].long()))

    def export_reading(self, net: nn.Module, info: DataInfo) -> dict:
        """What a deployment needs to read the exported model's output."""
        return {"class_names": info.class_names}

    def export_modules(self, net: nn.Module) -> dict[str, tuple[nn.Module, list[str], str]]:
        """ONNX graphs to write: file suffix -> (module of positional inputs, its input modalities, output name)."""
        return {"": (LogitsOnly(net), list(net.modalities), "logits")}

    # ---- diagnose ---------------------------------------------------------------------------------------------
    probes_distribution: ClassVar[bool] = True  # probe a class distribution (soft-label probe), else values (ridge)

    def probe_targets(self, target: Tensor, info: DataInfo) -> Tensor:
        """Labels as the probes' (N, K) targets."""
        return F.one_hot(target, info.num_classes).float()

    def teacher_probe_targets(self, logits: Tensor) -> Tensor:
        """A teacher's outputs as the probes' targets."""
        return logits.softmax(dim=1)

    def teacher_agreement(self, logits: Tensor, target: Tensor) -> float | None:
        """The teacher's score on labelled rows, for the diagnosis (None when not meaningful)."""
        return float((logits.argmax(1) == target).float().mean())

    def has_label(self, target: Tensor) -> Tensor:
        return has_label(target)


TASKS: Registry[type[Task]] = Registry("task")


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: register a ``Task`` subclass under its ``name``."""
    return TASKS.register(cls.name)(cls)


def build_task(spec: str | dict[str, Any]) -> Task:
    """A task from its name or ``{"name": ..., **options}`` (the config's ``task:``, a run's data_info.json)."""
    if isinstance(spec, str):
        spec = {"name": spec}
    options = {k: v for k, v in spec.items() if k != "name"}
    return TASKS.get(spec["name"])(**options)

