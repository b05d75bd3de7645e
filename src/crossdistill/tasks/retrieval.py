"""Cross-modal retrieval: dual encoders ranking the items of one modality for a query of another."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from crossdistill.config import ConfigError, ModelSpec, TermSpec
from crossdistill.data.batch import DataInfo
from crossdistill.evaluate.metrics import retrieval_scores
from crossdistill.evaluate.retrieval import blocked_ranks, groups_for, mean_of_directions, recall_report
from crossdistill.models.dual import TOWER_OUTPUTS, DualEncoder
from crossdistill.models.signatures import TowerOnly
from crossdistill.stats import mean_of
from crossdistill.tasks.base import PERCENT, Task, register_task


class RetrievalOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    positives: Literal["instance", "class"] = Field(
        "instance", description="what a query must find: its own paired row, or any row of its class (for data "
        "paired by label, such as av-digits); used by the training loss and for selection")


@register_task
class Retrieval(Task):
    """Every model is a dual encoder whose first encoder is the query tower and second the gallery tower (a
    teacher's towers may read other modalities of the same rows); CLIP's contrastive loss; selection on the
    validation split's mean R@1; test recall@1/5/10 and median rank, both directions, instance and class level.
    Option ``positives``: instance or class."""

    name = "retrieval"
    loss = "clip"
    provides = frozenset({"towers"})
    metric_names = ("r1", "r5", "r10", "median_rank", "instance_r1", "class_r1")
    metric_style = {"r1": PERCENT, "r5": PERCENT, "r10": PERCENT, "median_rank": (1.0, 1, ""),
                    "instance_r1": PERCENT, "class_r1": PERCENT}
    metrics_text = ("recall@1/5/10 in % and median rank at the run's level of positives (mean of both directions), "
                    "then R@1 with one positive per query (instance_r1) and with class-level positives (class_r1)")
    selection_text = "Model selection on the validation split's mean R@1 (its own pairs)"
    target_kinds = ("classes", "values")
    Options = RetrievalOptions
    modality_ablation = False  # a dual encoder without one of its two towers retrieves nothing
    diagnosable = False

    @property
    def positives(self) -> str:
        return self.options.positives

    def build_model(self, encoders: dict[str, nn.Module], spec: ModelSpec, info: DataInfo, role: str) -> nn.Module:
        if len(encoders) != 2:
            raise ConfigError(f"{role}: a retrieval model is a dual encoder over two modalities (query tower first, "
                              f"gallery tower second), got {', '.join(encoders) or 'none'}")
        return DualEncoder(encoders, spec.embed_dim)

    def task_term(self) -> TermSpec:
        return TermSpec(loss=self.loss, kwargs={"positives": self.positives})

    def check_student_run(self, run: str, select_on: str) -> None:
        if select_on == "teacher":
            raise ConfigError(f"student run {run!r}: retrieval selects on the validation pairs themselves "
                              "(select_on: labels or last), not on agreement with a teacher")

    outputs = TOWER_OUTPUTS

    def collect(self, values: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        return tuple(values[name] for name in TOWER_OUTPUTS)  # (z_query, z_gallery, log s)

    def selection_targets(self, target: Tensor) -> Tensor:
        return groups_for(target, self.positives)

    def predictions(self, outputs: Tensor) -> Tensor:
        raise ValueError("a retrieval model predicts no label: select on the validation split's own pairs")

    def validation_score(self, outputs: tuple[Tensor, Tensor, Tensor], targets: Tensor) -> float:
        query, gallery, _ = outputs
        return mean_of_directions(recall_report(query, gallery, targets))["r1"]

    def score(self, outputs: tuple[Tensor, Tensor, Tensor], target: Tensor, info: DataInfo) -> dict:
        query, gallery, _ = outputs
        return retrieval_scores(query, gallery, target, self.positives)

    def test_rows(self, outputs: tuple[Tensor, Tensor, Tensor], target: Tensor, info: DataInfo
                  ) -> dict[str, np.ndarray]:
        """Per query: found at rank 1 (at the run's positives), in each direction; R@1 is their mean."""
        query, gallery, _ = outputs
        groups = groups_for(target, self.positives)
        forward, backward = blocked_ranks(query, gallery, groups), blocked_ranks(gallery, query, groups)
        return {"hit1": ((forward == 1).double() + (backward == 1).double()).numpy() / 2}

    headline_statistic = staticmethod(mean_of("hit1"))

    def validation_loss(self, outputs: tuple[Tensor, Tensor, Tensor], targets: Tensor) -> float | None:
        return None

    def export_reading(self, net: nn.Module, info: DataInfo) -> dict:
        return {"query": net.modalities[0], "gallery": net.modalities[1],
                "value": "each tower's L2-normalised embedding; rank by dot product"}

    def export_modules(self, net: nn.Module) -> dict[str, tuple[nn.Module, list[str], str]]:
        """Each tower on its own: queries and gallery are embedded apart."""
        return {f".{m}": (TowerOnly(net, m), [m], "normalised_embedding") for m in net.modalities}

