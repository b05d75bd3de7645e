"""Regression: predict a real number (a rating, a price, an age)."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import Tensor, nn

from crossdistill.config import ConfigError
from crossdistill.data.batch import DataInfo
from crossdistill.data.targets import regression_values, standardised
from crossdistill.evaluate.metrics import regression_report
from crossdistill.stats import r_squared
from crossdistill.tasks.base import NUMBER, Task, register_task


@register_task
class Regression(Task):
    """One real value per row: the target standardised on the training rows (z-scores, so heads and losses work
    at unit scale whatever its units; ``DataInfo.target_scale`` maps back), a head of one output, squared error,
    selection on validation R²; test R², MAE and RMSE in the target's own units. Splits and label budgets are
    stratified by decile."""

    name = "regression"
    loss = "mse"
    provides = frozenset({"head", "values"})
    metric_names = ("r2", "mae", "rmse")
    metric_style = {"r2": NUMBER, "mae": NUMBER, "rmse": NUMBER}
    metrics_text = "R² (unit-free), MAE and RMSE (in the target's units)"
    target_kinds = ("values",)
    probes_distribution = False

    def parse_labels(self, cells: list[Any], bins: list[float] | None = None) -> tuple[list[str], np.ndarray]:
        if bins:
            raise ConfigError("label_bins cuts the label into classes, task regression predicts its value: "
                             "choose one")
        return [], regression_values(cells)

    def label_is_number(self, bins: list[float] | None) -> bool:
        return True

    def unlabelled(self, count: int) -> np.ndarray:
        return np.full(count, np.nan)

    def fit_targets(self, targets: np.ndarray, train: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
        return standardised(targets, train)

    def num_classes(self, class_names: list[str]) -> int:
        return 0

    def output_dim(self, info: DataInfo) -> int:
        return 1

    def predictions(self, outputs: Tensor) -> Tensor:
        return outputs[:, 0].float()  # (N,) in standardised units

    def validation_score(self, outputs: Tensor, targets: Tensor) -> float:
        """R² (unit-free, so standardised units give the same value)."""
        residual = (self.predictions(outputs) - targets).pow(2).sum()
        total = (targets - targets.mean()).pow(2).sum().clamp_min(1e-12)
        return float(1.0 - residual / total)

    def score(self, outputs: Tensor, target: Tensor, info: DataInfo) -> dict:
        mean, std = info.target_scale
        return regression_report(target.numpy().astype(np.float64) * std + mean,
                                 self.predictions(outputs).numpy().astype(np.float64) * std + mean)

    def test_rows(self, outputs: Tensor, target: Tensor, info: DataInfo) -> dict[str, np.ndarray]:
        mean, std = info.target_scale
        return {"target": target.numpy().astype(np.float64) * std + mean,
                "predicted": self.predictions(outputs).numpy().astype(np.float64) * std + mean}

    headline_statistic = staticmethod(r_squared)

    def validation_loss(self, outputs: Tensor, targets: Tensor) -> float | None:
        return float((self.predictions(outputs) - targets).pow(2).mean())

    def export_reading(self, net: nn.Module, info: DataInfo) -> dict:
        return {"target_mean": info.target_scale[0], "target_std": info.target_scale[1],
                "value": "logits[:, 0] * target_std + target_mean"}

    def probe_targets(self, target: Tensor, info: DataInfo) -> Tensor:
        return target.float()

    def teacher_probe_targets(self, logits: Tensor) -> Tensor:
        return logits[:, 0]

    def teacher_agreement(self, logits: Tensor, target: Tensor) -> float | None:
        return None
