"""The checks behind a run's warnings (crossdistill.evaluate.health) and the selection rule that prevents the
flat-teacher trap (ties in the validation score broken by the validation loss)."""

import math

import pytest
import torch
from torch import nn

from crossdistill.evaluate.health import FLAT_ENTROPY, soft_label_information, still_rising
from crossdistill.models.outputs import Outputs
from crossdistill.train import FitProgress, _better


class FixedLogits(nn.Module):
    """A stand-in teacher whose logits put ``margin`` on the true class of every row (its index mod 10)."""

    def __init__(self, margin: float):
        super().__init__()
        self.margin = margin
        self.anchor = nn.Parameter(torch.zeros(1))

    def forward(self, batch):
        logits = torch.zeros(len(batch.index), 10) + self.anchor
        logits[torch.arange(len(batch.index)), batch.target.clamp_min(0)] = self.margin
        return Outputs(logits=logits, embed=logits, feats={})


def test_a_flat_teacher_is_flagged_and_a_confident_one_is_not(av_fold):
    flat = soft_label_information(FixedLogits(0.9), av_fold["train"], av_fold.info)
    # logit 0.9 on the right class of 10: top probability e^0.9 / (e^0.9 + 9) = 0.215, the trap's 0.21
    assert flat["mean_top_probability"] == pytest.approx(math.exp(0.9) / (math.exp(0.9) + 9), abs=1e-4)
    assert flat["normalised_entropy"] > FLAT_ENTROPY and flat["flat"]
    sharp = soft_label_information(FixedLogits(6.0), av_fold["train"], av_fold.info)
    assert sharp["mean_top_probability"] > 0.97 and not sharp["flat"]
    assert flat["rows"] == min(2000, len(av_fold["train"]))


def test_ties_in_the_score_go_to_the_lower_validation_loss():
    progress = FitProgress(best_score=1.0, best_loss=2.1, best_epoch=0)
    assert _better({"val_score": 1.0, "val_loss": 0.3}, progress)  # same score, more confident: taken
    assert not _better({"val_score": 1.0, "val_loss": 2.5}, progress)
    assert not _better({"val_score": 0.99, "val_loss": 0.01}, progress)  # the score comes first
    assert _better({"val_score": 0.5}, FitProgress())  # the first epoch is always taken
    assert not _better({"val_score": 1.0}, progress)  # no loss (retrieval): the earlier epoch stays


def test_still_rising():
    assert still_rising([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95])
    assert not still_rising([0.1, 0.5, 0.8, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.905])  # flat at the end
    assert not still_rising([0.1, 0.5, 0.9, 0.8, 0.85])  # best earlier
    assert not still_rising([0.1, 0.2, 0.3])  # too short to say
