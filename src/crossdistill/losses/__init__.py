"""Losses by name. Importing the family modules registers them.

Every registered loss is also reachable as a plain callable under its registry name, usable in your own training
loop: ``crossdistill.losses.kd(student_logits, teacher_logits, temperature=4.0)`` (tensors first, the batch only
for losses that read labels, options keyword-only); a loss with parameters (``crd``, ``c2kd``, ...) is its
``nn.Module`` class, built as ``crossdistill.losses.crd(student_probe, teacher_probe, feat_dim=128)``.
"""

from typing import Any

from crossdistill.losses import clip, contrastive, crossmodal, feature, logit, mst, ofa, regression, relation, task  # noqa: F401  (registration)
from crossdistill.losses.base import LOSSES, LossDef, NeedsPreparation, register_loss, register_loss_module

__all__ = ["LOSSES", "LossDef", "NeedsPreparation", "register_loss", "register_loss_module"]


def __getattr__(name: str) -> Any:
    """``crossdistill.losses.<registered name>``: the loss function, or its module class."""
    if name in LOSSES:
        loss = LOSSES.get(name)
        return loss.fn if loss.fn is not None else loss.module
    raise AttributeError(f"module 'crossdistill.losses' has no attribute {name!r} "
                         f"(losses: {', '.join(LOSSES.names())})")
