"""Losses by name. Importing the family modules registers them."""

from crossdistill.losses import clip, contrastive, crossmodal, feature, logit, regression, relation, task  # noqa: F401  (registration)
from crossdistill.losses.base import LOSSES, LossDef, register_loss

__all__ = ["LOSSES", "LossDef", "register_loss"]
