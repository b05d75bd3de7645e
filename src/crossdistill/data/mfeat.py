"""``mfeat``: UCI Multiple Features, 2000 handwritten digits (200 per class) each described by six views that
are pre-extracted feature vectors: Fourier coefficients (fou, 76), profile correlations (fac, 216),
Karhunen-Loeve coefficients (kar, 64), pixel averages (pix, 240), Zernike moments (zer, 47), morphological
features (mor, 6). Read from ``<data root>/mfeat/mfeat-<view>.csv`` (header row; last column the label)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from crossdistill.data.batch import DataInfo, FoldData, ModalitySpec, SplitData
from crossdistill.data.sources import MFEAT
from crossdistill.data.splits import stratified_fractions

if TYPE_CHECKING:
    from crossdistill.tasks import Task

VIEWS = {"fou": 76, "fac": 216, "kar": 64, "pix": 240, "zer": 47, "mor": 6}
SPLITS = ("train", "val", "test")


class MfeatOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ratios: tuple[float, float, float] = Field((0.6, 0.2, 0.2), description="train / val / test, stratified")


class MultipleFeatures:
    name = "mfeat"
    licence = MFEAT.licence
    Options = MfeatOptions
    num_folds = 1
    targets = "classes"  # what its label is (a task must accept it)

    def __init__(self, root: Path, options: dict, seed: int, task: Task) -> None:
        self.task = task
        self.options, self.seed = MfeatOptions.model_validate(options), seed
        folder = MFEAT.locate(root)  # names `crossdistill fetch mfeat` when it is not there
        self.views, labels = {}, None
        for view, width in VIEWS.items():
            path = folder / f"mfeat-{view}.csv"
            if not path.is_file():
                raise FileNotFoundError(f"{path}: missing view {view!r} of mfeat; `crossdistill fetch mfeat` "
                                        "installs all six")
            table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64)
            if table.shape != (2000, width + 1):
                raise ValueError(f"{path}: expected 2000 rows of {width} features + label, got {table.shape}")
            if labels is not None and not np.array_equal(labels, table[:, -1]):
                raise ValueError(f"{path}: rows are not in the same order as the other views (labels differ)")
            self.views[view], labels = table[:, :-1], table[:, -1]
        self.labels = labels.astype(np.int64)

    def fold(self, fold: int) -> FoldData:
        if fold != 0:
            raise ValueError(f"mfeat: fold {fold} out of range 0..0 (one stratified split)")
        parts = self.split_parts()
        train = parts[0]
        inputs, specs = {}, {}
        for view, values in self.views.items():  # standardised with the training split's statistics
            mean, std = values[train].mean(axis=0), values[train].std(axis=0) + 1e-6
            inputs[view] = torch.from_numpy(((values - mean) / std).astype(np.float32))
            recipe = {"kind": "features", "normalise": {"mean": mean.tolist(), "std": std.tolist()}}
            specs[view] = ModalitySpec((VIEWS[view],), meta={"serving": recipe})  # a raw row of the view's CSV
        digest = hashlib.sha256(f"mfeat:{self.options.model_dump_json()}:{self.seed}".encode())
        splits = {}
        for split, rows in zip(SPLITS, parts, strict=True):
            splits[split] = SplitData({v: t[rows] for v, t in inputs.items()}, torch.from_numpy(self.labels[rows]),
                                      torch.from_numpy(rows))
            digest.update(rows.tobytes())
        info = DataInfo({s: len(d) for s, d in splits.items()}, 10, specs, self.task,
                        class_names=[str(d) for d in range(10)])
        return FoldData(0, splits, info, "stratified split of the 2000 digits", digest.hexdigest()[:20])

    def split_parts(self) -> list[np.ndarray]:
        """Row numbers of the train, validation and test splits."""
        return stratified_fractions(self.labels, list(self.options.ratios), self.seed)

    def describe(self) -> dict:
        sizes = {s: len(p) for s, p in zip(SPLITS, stratified_fractions(self.labels, list(self.options.ratios),
                                                                        self.seed), strict=True)}
        return {"name": self.name, "modalities": {v: [w] for v, w in VIEWS.items()}, "sizes (fold 0)": sizes,
                "folds": 1, "licence": self.licence}
