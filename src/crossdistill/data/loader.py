"""Mini-batching over a ``SplitData``: shuffling, the label mask, per-modality augmentation, and (``workers``) the
batches made in ``torch.utils.data.DataLoader`` worker processes.

The order of an epoch is drawn in the training process from the loader's seeded generator, so it is the same
whatever the workers, and a resumed run continues it. Every epoch of a training loader has the same number of
steps, whatever the label budget, so that a baseline restricted to its labelled share gets as many updates as a
distilled student. Workers pay off when a batch costs time to make: rows read from the decoded store and
transformed (log-mel, normalisation) a batch at a time; for tensors already in memory a batch is a slice.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from crossdistill.config import SpecAugment
from crossdistill.data.batch import Batch, SplitData
from crossdistill.data.row_decoding import available_cores
from crossdistill.data.rows import TransformedRows


def warp(x: Tensor, freq: float, time: float, generator: torch.Generator) -> Tensor:
    """Scale the frequency axis (anchored at 0 Hz) by 1 ± ``freq`` and the time axis (about the centre) by
    1 ± ``time``, per sample, with bilinear resampling. x: (B, C, F, T)."""
    batch = x.shape[0]
    draw = lambda amount: 1.0 + (torch.rand(batch, generator=generator) * 2 - 1) * amount  # noqa: E731
    f_scale, t_scale = draw(freq), draw(time)
    theta = torch.zeros(batch, 2, 3)
    theta[:, 0, 0] = t_scale  # x (time): centred
    theta[:, 1, 1], theta[:, 1, 2] = f_scale, f_scale - 1.0  # y (frequency): row 0 stays row 0
    grid = F.affine_grid(theta, list(x.shape), align_corners=True)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)


def spec_augment(x: Tensor, aug: SpecAugment, generator: torch.Generator) -> Tensor:
    """Random circular time shift and SpecAugment masks on (B, C, F, T) maps; masked cells are set to 0,
    the per-clip mean after standardisation."""
    batch, _, freqs, frames = x.shape
    if aug.freq_warp or aug.time_stretch:
        x = warp(x, aug.freq_warp, aug.time_stretch, generator)
    if aug.time_shift:
        shifts = torch.randint(-aug.time_shift, aug.time_shift + 1, (batch,), generator=generator)
        idx = (torch.arange(frames)[None, :] - shifts[:, None]) % frames  # (B, T)
        x = torch.gather(x, 3, idx[:, None, None, :].expand_as(x))
    keep = torch.ones(batch, 1, freqs, frames)
    for count, width, size, axis in ((aug.freq_masks, aug.freq_width, freqs, 2),
                                     (aug.time_masks, aug.time_width, frames, 3)):
        for _ in range(count if width else 0):
            w = torch.randint(0, width + 1, (batch,), generator=generator)
            start = (torch.rand(batch, generator=generator) * (size - w + 1)).long()
            pos = torch.arange(size)[None, :]
            masked = (pos >= start[:, None]) & (pos < (start + w)[:, None])  # (B, size)
            shape = (batch, 1, size, 1) if axis == 2 else (batch, 1, 1, size)
            keep = keep * (~masked).float().view(shape)
    return x * keep


def loader_workers(setting: int | str, data: SplitData) -> int:
    """``data.loader_workers`` -> a count: ``auto`` is 2 (at most the cores) when any input of ``data`` is read a
    batch at a time, else 0 (a batch of tensors in memory is a slice: workers would only add overhead)."""
    if setting != "auto":
        return int(setting)
    streamed = any(isinstance(inputs, TransformedRows) for inputs in data.inputs.values())
    return min(2, available_cores()) if streamed else 0


def _as_is(batch: Batch) -> Batch:
    return batch


class _Batches(Dataset):
    """Batch ``b`` of an epoch's order, made (rows gathered, augmented) wherever the DataLoader asks for it."""

    def __init__(self, loader: BatchLoader, batches: list[Tensor], seeds: list[int] | None) -> None:
        self.loader, self.batches, self.seeds = loader, batches, seeds

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, b: int) -> Batch:
        generator = None if self.seeds is None else torch.Generator().manual_seed(self.seeds[b])
        return self.loader.make(self.batches[b], generator)


class BatchLoader:
    """Yields ``Batch``es of a split. ``labeled`` marks rows whose label the model may use. Under several
    processes each takes a disjoint share of every (global) batch, all from the same seeded order: the
    DistributedSampler contract, kept batch by batch, so that N processes see the batches one process would.

    ``workers`` > 0 makes the batches in that many DataLoader worker processes: the same rows, labels and masks
    in the same order; augmentation then draws from a generator per batch seeded from the loader's (the same
    distribution, other draws than in one process, reproducible for a seed)."""

    def __init__(self, data: SplitData, batch_size: int, *, shuffle: bool = False, seed: int = 0,
                 labeled: Tensor | None = None, augment: dict[str, SpecAugment] | None = None,
                 only_labeled: bool = False, shard: tuple[int, int] = (0, 1), workers: int = 0) -> None:
        self.data, self.batch_size, self.shuffle = data, batch_size, shuffle
        self.shard = shard  # (rank, world size): this process takes rows rank, rank + N, ... of every batch
        self.labeled = labeled if labeled is not None else torch.ones(len(data), dtype=torch.bool)
        self.augment = augment or {}
        self.generator = torch.Generator().manual_seed(seed)
        self.workers = workers
        self.epoch_start = self.generator.get_state()  # the generator when the current epoch's order was drawn
        self._resume: tuple[int, Tensor] | None = None  # (batches to skip, generator state) for the next epoch
        self.rows = torch.nonzero(self.labeled).flatten() if only_labeled else torch.arange(len(data))
        if only_labeled and self.rows.numel() == 0:
            raise ValueError("no labelled sample to train on: the label budget is 0")

    def __len__(self) -> int:
        if not self.shuffle:
            return -(-len(self.rows) // self.batch_size)
        return max(1, len(self.data) // self.batch_size)  # training: same step count whatever the budget

    def _order(self) -> Tensor:
        if not self.shuffle:
            return self.rows
        needed = len(self) * self.batch_size
        draws = [self.rows[torch.randperm(len(self.rows), generator=self.generator)]
                 for _ in range(-(-needed // len(self.rows)))]
        return torch.cat(draws)[:needed]  # a small labelled share is cycled, reshuffled each pass

    def make(self, rows: Tensor, generator: torch.Generator | None = None) -> Batch:
        """The batch of ``rows``, augmented with ``generator`` (default: the loader's own)."""
        batch = self.data.batch(rows, self.labeled[rows])
        for modality, aug in self.augment.items():
            if modality in batch.inputs:
                batch.inputs[modality] = spec_augment(batch.inputs[modality], aug, generator or self.generator)
        return batch

    def position(self, step: int) -> dict[str, Any]:
        """Where an epoch stands after ``step`` batches (saved in a mid-epoch checkpoint): the generator when its
        order was drawn, and now."""
        return {"epoch_start": self.epoch_start, "step": step, "generator": self.generator.get_state()}

    def resume_at(self, position: dict[str, Any]) -> None:
        """Make the next epoch the one of ``position``, from its next batch: the same order (drawn again from the
        same generator state), the batches already trained on skipped, augmentation continuing its draws."""
        self.generator.set_state(position["epoch_start"])
        self._resume = (int(position["step"]), position["generator"])

    def __iter__(self) -> Iterator[Batch]:
        self.epoch_start = self.generator.get_state()
        order = self._order()
        batches = [order[start : start + self.batch_size][self.shard[0] :: self.shard[1]]
                   for start in range(0, len(order), self.batch_size)]
        seeds = None
        if self.workers and self.augment:
            seeds = torch.randint(0, 2**62, (len(batches),), generator=self.generator).tolist()
        skip = 0
        if self._resume is not None:
            (skip, state), self._resume = self._resume, None
            self.generator.set_state(state)
        if self.workers == 0:
            for rows in batches[skip:]:
                yield self.make(rows)
            return
        made = _Batches(self, batches[skip:], seeds[skip:] if seeds is not None else None)
        # (its own generator: the workers' base seed is not drawn from the global RNG, which dropout reads)
        yield from DataLoader(made, batch_size=None, num_workers=self.workers, collate_fn=_as_is,
                              multiprocessing_context="fork", generator=torch.Generator().manual_seed(0))
