"""Batches made in DataLoader worker processes: with augmentation off, the rows, labels, masks and inputs of every
batch are those made in the training process (in memory or read from the decoded store, one process or a rank's
share); with augmentation on, reproducible for a seed and drawn from the same augmentation."""

import pytest
import torch
from test_manifest import emoji_options, write_csv

from crossdistill.config import SpecAugment
from crossdistill.data import open_dataset
from crossdistill.data.loader import BatchLoader, loader_workers
from crossdistill.data.splits import label_budget_mask
from crossdistill.tasks import build_task

CLASSIFICATION = build_task("classification")


def same_batches(a: list, b: list) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x.index, y.index) and torch.equal(x.target, y.target)
        assert torch.equal(x.labeled, y.labeled)
        assert x.inputs.keys() == y.inputs.keys()
        for name in x.inputs:
            assert torch.equal(x.inputs[name], y.inputs[name]), name


@pytest.mark.parametrize("in_memory", [True, False])
def test_workers_make_the_batches_one_process_makes(emoji_rows, tmp_path, monkeypatch, in_memory):
    monkeypatch.setenv("CROSSDISTILL_CACHE", str(tmp_path / "cache"))
    options = emoji_options(write_csv(tmp_path / "e.csv", emoji_rows[:150]), ratios=[0.6, 0.2, 0.2])
    train = open_dataset("manifest", None, options, 0, CLASSIFICATION, in_memory=in_memory).fold(0)["train"]
    labeled = torch.from_numpy(label_budget_mask(train.target.numpy(), 0.3, seed=0))
    for shard in ((0, 1), (1, 2)):
        loaders = [BatchLoader(train, 16, shuffle=True, seed=5, labeled=labeled, shard=shard, workers=w)
                   for w in (0, 2)]
        for _ in range(2):  # two epochs: the order goes on from the same generator
            same_batches(list(loaders[0]), list(loaders[1]))
    assert loader_workers("auto", train) == (0 if in_memory else 2)
    assert loader_workers(3, train) == 3


def test_augmentation_in_workers_is_reproducible_and_the_same_augmentation(av_fold):
    train = av_fold["train"]
    augment = {"audio": SpecAugment(time_shift=4, freq_masks=1, freq_width=3)}
    make = lambda workers: list(BatchLoader(train, 64, shuffle=True, seed=1, augment=augment,  # noqa: E731
                                            workers=workers))
    first, again, here = make(2), make(2), make(0)
    same_batches(first, again)  # a seed gives the same draws
    plain = list(BatchLoader(train, 64, shuffle=True, seed=1))
    for x, y, z in zip(first, here, plain, strict=True):
        assert torch.equal(x.index, y.index) and torch.equal(x.index, z.index)  # the same rows, in the same order
        assert not torch.equal(x.inputs["audio"], z.inputs["audio"])  # augmented
        assert torch.equal(x.inputs["image"], y.inputs["image"])  # (image not augmented)
    masked = lambda batches: torch.stack([(b.inputs["audio"] == 0).float().mean() for b in batches])  # noqa: E731
    # the share of masked cells (SpecAugment's zeros) is drawn from the same distribution in workers and here
    assert abs(masked(first).mean() - masked(here).mean()) < 0.02
