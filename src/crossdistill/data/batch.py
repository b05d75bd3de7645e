"""The data contracts: ``Batch`` (named modality tensors + label + index + label mask) and ``DataInfo``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from crossdistill.data.rows import Inputs

if TYPE_CHECKING:  # (the tasks build on the data layer, not the other way round)
    from crossdistill.tasks import Task


def has_label(target: Tensor) -> Tensor:
    """(N,) bool: rows that carry a label. Unlabelled rows hold class -1 (class ids) or NaN (real values; for a
    (N, K) target, any NaN in the row)."""
    if not target.is_floating_point():
        return target >= 0 if target.dim() == 1 else (target >= 0).all(dim=1)
    known = ~torch.isnan(target)
    return known if known.dim() == 1 else known.all(dim=1)


@dataclass
class Batch:
    """One mini-batch. ``labeled[i]`` says whether the student may use ``target[i]`` (its label budget)."""

    inputs: dict[str, Tensor]  # modality -> (B, ...)
    target: Tensor | None  # (B,) class ids (int64), (B,) standardised values (float32), or what the task parses
    index: Tensor  # (B,) global sample ids, the teacher cache's key
    labeled: Tensor | None = None  # (B,) bool

    def to(self, device: torch.device | str) -> Batch:
        move = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
        return Batch({k: v.to(device, non_blocking=True) for k, v in self.inputs.items()},
                     move(self.target), move(self.index), move(self.labeled))

    def __len__(self) -> int:
        return int(self.index.shape[0])

    @classmethod
    def collate(cls, samples: list[Mapping[str, Any]]) -> Batch:
        """A ``DataLoader``'s ``collate_fn`` for your own dataset: each sample a mapping of modality -> tensor,
        plus ``label`` (a class id or a value), ``index`` (the sample's id: the teacher cache's key) and
        optionally ``labeled`` (whether the student may use this label; default yes)."""
        reserved = {"label", "index", "labeled"}
        missing = reserved - {"labeled"} - set(samples[0])
        if missing:
            raise KeyError(f"Batch.collate: each sample needs {', '.join(sorted(missing))} beside its modalities")
        inputs = {k: torch.stack([torch.as_tensor(s[k]) for s in samples]) for k in samples[0] if k not in reserved}
        labeled = (torch.tensor([bool(s["labeled"]) for s in samples]) if "labeled" in samples[0]
                   else torch.ones(len(samples), dtype=torch.bool))
        return cls(inputs, torch.stack([torch.as_tensor(s["label"]) for s in samples]),
                   torch.tensor([int(s["index"]) for s in samples]), labeled)


@dataclass(frozen=True)
class ModalitySpec:
    shape: tuple[int, ...]  # per-sample shape, without the batch dimension
    dtype: str = "float32"
    # What an encoder must know beyond the shape: text {vocab_size, tokenizer}, tabular {numeric, categories}.
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    def example(self, batch: int, generator: torch.Generator | None = None) -> Tensor:
        """A random input of this modality, valid for its encoders (token ids below the vocabulary size,
        category ids below their level counts): for FLOP counts, latency and export."""
        if self.dtype == "int64":
            return torch.randint(1, int(self.meta.get("vocab_size", 2)), (batch, *self.shape), generator=generator)
        x = torch.randn(batch, *self.shape, generator=generator)
        for j, levels in enumerate(self.meta.get("categories", [])):
            x[:, self.meta["numeric"] + j] = torch.randint(0, levels, (batch,), generator=generator).float()
        return x


@dataclass
class DataInfo:
    """What every builder is handed: sizes, classes, modalities, task. No driver special-cases a method."""

    num_samples: dict[str, int]  # split -> count
    num_classes: int  # 0 for regression
    modalities: dict[str, ModalitySpec]
    task: Task  # what the models are for (crossdistill.tasks): it decides heads, losses, metrics
    class_names: list[str] = field(default_factory=list)
    target_scale: tuple[float, float] = (0.0, 1.0)  # regression: (mean, std) of the raw training targets


@dataclass
class SplitData:
    """One split: ``inputs[m]`` is (N, ...), ``target`` and ``index`` are (N,) (in memory)."""

    inputs: dict[str, Inputs]  # modality -> (N, ...) tensor, or a view read a batch at a time (data.rows)
    target: Tensor
    index: Tensor
    groups: list[str] = field(default_factory=list)  # e.g. the speaker of each sample

    def __len__(self) -> int:
        return int(self.index.shape[0])

    def batch(self, rows: Tensor, labeled: Tensor | None = None) -> Batch:
        return Batch({k: v[rows] for k, v in self.inputs.items()}, self.target[rows], self.index[rows], labeled)


@dataclass
class FoldData:
    """One fold of a data set: train / val / test splits plus what describes them."""

    fold: int
    splits: dict[str, SplitData]
    info: DataInfo
    description: str
    fingerprint: str  # data + preprocessing + split membership; part of the teacher cache key

    def __getitem__(self, split: str) -> SplitData:
        return self.splits[split]
