"""A task registered only in this file -- multi-label classification -- trains, evaluates, reports and exports
through the whole pipeline with no edit to the package: the proof that drivers call the task and never branch
on its name.

Data: the real UCI mfeat digits (Fourier and Karhunen-Loeve views) as a tiny JSONL manifest; each digit
carries the tags true of it (even, prime, >= 5, has a closed loop, narrow): 1 to 3 labels a row. The teacher reads
both views, the student the Karhunen-Loeve view only, with 20% of the tags.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score
from torch import Tensor
from typer.testing import CliRunner

from crossdistill.cli import app
from crossdistill.data.batch import Batch, DataInfo, has_label
from crossdistill.losses import LOSSES, register_loss
from crossdistill.losses.base import HEAD
from crossdistill.tasks import TASKS, Task, register_task
from crossdistill.tasks.base import PERCENT

TAGS = {"even": {0, 2, 4, 6, 8}, "prime": {2, 3, 5, 7}, "large": {5, 6, 7, 8, 9}, "loop": {0, 4, 6, 8, 9},
        "narrow": {1, 7}}


def multilabel_bce(student: Tensor, teacher: Tensor | None, batch: Batch) -> Tensor:
    """Binary cross-entropy over every tag, on the rows of the label budget (multi-label task loss).

    student: (B, K) logits; batch.target: (B, K) in {0, 1}, NaN rows unlabelled.
    """
    rows = has_label(batch.target) & (batch.labeled if batch.labeled is not None else True)
    if not bool(rows.any()):
        return student.sum() * 0.0
    return F.binary_cross_entropy_with_logits(student[rows], batch.target[rows])


class MultiLabel(Task):
    """Several classes per row: one sigmoid per tag, binary cross-entropy, micro-F1."""

    name = "multilabel"
    loss = "multilabel_bce"
    provides = frozenset({"head"})
    metric_names = ("micro_f1", "subset_accuracy")
    metric_style = {"micro_f1": PERCENT, "subset_accuracy": PERCENT}
    metrics_text = "micro-F1 over tags and exact-set accuracy, in %"
    target_kinds = ()
    probes_distribution = False

    def parse_labels(self, cells: list[Any], bins: list[float] | None = None) -> tuple[list[str], np.ndarray]:
        sets = [set(str(c).split("|")) for c in cells]
        names = sorted(set().union(*sets))
        return names, np.asarray([[name in s for name in names] for s in sets], dtype=np.float32)  # (N, K)

    def unlabelled(self, count: int) -> np.ndarray:
        return np.full((count, 1), np.nan, dtype=np.float32)

    def strata(self, targets: np.ndarray) -> np.ndarray:
        known = ~np.isnan(targets).any(axis=1)
        return np.where(known, (targets * 2 ** np.arange(targets.shape[1])).sum(axis=1), -1).astype(np.int64)

    def predictions(self, outputs: Tensor) -> Tensor:
        return (outputs > 0).float()  # (N, K)

    def validation_score(self, outputs: Tensor, targets: Tensor) -> float:
        return float(f1_score(targets.numpy(), self.predictions(outputs).numpy(), average="micro"))

    def score(self, outputs: Tensor, target: Tensor, info: DataInfo) -> dict:
        predicted = self.predictions(outputs)
        return {"metrics": {"micro_f1": self.validation_score(outputs, target),
                            "subset_accuracy": float((predicted == target).all(dim=1).float().mean())},
                "confusion": None}

    def probe_targets(self, target: Tensor, info: DataInfo) -> Tensor:
        return target.float()

    def teacher_probe_targets(self, logits: Tensor) -> Tensor:
        return logits.sigmoid()

    def teacher_agreement(self, logits: Tensor, target: Tensor) -> float | None:
        return None


@pytest.fixture
def multilabel_task():
    register_loss("multilabel_bce", needs_teacher=False, needs=HEAD)(multilabel_bce)
    register_task(MultiLabel)
    yield MultiLabel
    TASKS.unregister("multilabel")
    LOSSES.unregister("multilabel_bce")


@pytest.fixture(scope="module")
def mfeat_tags(data_root, tmp_path_factory):
    """A JSONL manifest of every 4th mfeat digit (500 rows): two feature views and the digit's tags."""
    views = {v: np.loadtxt(data_root / "mfeat" / f"mfeat-{v}.csv", delimiter=",", skiprows=1) for v in ("fou", "kar")}
    digits = views["kar"][:, -1].astype(int)
    path = tmp_path_factory.mktemp("tags") / "digits.jsonl"
    with path.open("w") as out:
        for row in range(0, 2000, 4):
            tags = "|".join(t for t, members in TAGS.items() if digits[row] in members)
            out.write(json.dumps({"fou": views["fou"][row, :-1].round(5).tolist(),
                                  "kar": views["kar"][row, :-1].round(5).tolist(), "tags": tags}) + "\n")
    return path


RUN = """
task: multilabel
data:
  dataset: manifest
  options:
    path: {path}
    label: tags
    modalities: {{fou: {{kind: features, column: fou}}, kar: {{kind: features, column: kar}}}}
student_labels: 0.2
seeds: [0]
teacher: {{encoders: {{fou: {{name: mlp}}, kar: {{name: mlp}}}}, embed_dim: 32, train: {{epochs: 8}}}}
student: {{encoders: {{kar: {{name: mlp, hidden: [16]}}}}, embed_dim: 8}}
distill: {{terms: [{{loss: multilabel_bce}}, {{loss: pred_mse}}]}}
train: {{epochs: 8, batch_size: 64, progress: false}}
evaluate: {{latency_repeats: 1}}
"""


def test_a_task_registered_outside_the_package_runs_end_to_end(multilabel_task, mfeat_tags, tmp_path):
    config = tmp_path / "tags.yaml"
    config.write_text(RUN.format(path=mfeat_tags))
    out = tmp_path / "runs"
    listed = CliRunner().invoke(app, ["list", "tasks"], terminal_width=200)
    assert listed.exit_code == 0 and "multilabel" in listed.output and "micro_f1" in listed.output
    ran = CliRunner().invoke(app, ["run", str(config), "--out", str(out), "--export"])
    assert ran.exit_code == 0, ran.output
    run_dir = out / "tags"
    results = json.loads((run_dir / "results.json").read_text())
    assert results["task"] == "multilabel" and results["metric_names"] == ["micro_f1", "subset_accuracy"]
    teacher = results["models"]["teacher"]["metrics"]["micro_f1"]["mean"]
    assert teacher > 0.8  # tagging every row with every tag scores 0.59: the teacher learned the tags
    for model in ("baseline", "distilled"):
        assert 0.0 < results["models"][model]["metrics"]["micro_f1"]["mean"] <= 1.0
    info = json.loads((run_dir / "data_info.json").read_text())
    assert info["task"] == {"name": "multilabel"} and info["class_names"] == sorted(TAGS)
    report = (run_dir / "report" / "report.md").read_text()
    assert "micro-F1 over tags" in report and "micro_f1" in report
    exported = json.loads((run_dir / "export" / "distilled.json").read_text())
    assert exported["task"] == {"name": "multilabel"} and exported["class_names"] == sorted(TAGS)
    assert exported["onnx_max_abs_diff"] < 1e-4
    import onnxruntime

    session = onnxruntime.InferenceSession(exported["onnx"], providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"kar": torch.randn(3, 64).numpy()})
    assert logits.shape == (3, len(TAGS))  # one logit per tag


def test_the_plugin_task_is_gone_after_its_test(multilabel_task):
    assert "multilabel" in TASKS
    TASKS.unregister("multilabel")
    assert "multilabel" not in TASKS
    TASKS.register("multilabel")(MultiLabel)  # (for the fixture's own cleanup)
