"""Classification: one logit per class, cross-entropy, accuracy and macro-F1."""

from __future__ import annotations

from torch import Tensor

from crossdistill.data.batch import DataInfo
from crossdistill.evaluate.metrics import classification_report
from crossdistill.tasks.base import PERCENT, Task, register_task


@register_task
class Classification(Task):
    """One class per row: a head of one logit per class, cross-entropy on the labelled rows, selection on
    validation accuracy; test accuracy and macro-F1 (%) and the confusion matrix."""

    name = "classification"
    loss = "ce"
    provides = frozenset({"head", "classes"})
    metric_names = ("accuracy", "macro_f1")
    metric_style = {"accuracy": PERCENT, "macro_f1": PERCENT}
    metrics_text = "accuracy and macro-F1 in %"

    def score(self, outputs: Tensor, target: Tensor, info: DataInfo) -> dict:
        return classification_report(target.numpy(), self.predictions(outputs).numpy(), info.num_classes)
