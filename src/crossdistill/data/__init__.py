"""Data sets by name; each builds folds of ``SplitData`` with a ``DataInfo``."""

from __future__ import annotations

from crossdistill.data.av_digits import AudioVisualDigits, AVDigits, AVMnist
from crossdistill.data.batch import Batch, DataInfo, FoldData, ModalitySpec, SplitData
from crossdistill.data.sources import data_root
from crossdistill.registry import Registry

DATASETS: Registry[type[AudioVisualDigits]] = Registry("dataset")
DATASETS.register("av-digits")(AVDigits)
DATASETS.register("av-mnist")(AVMnist)


def open_dataset(name: str, root: str | None, options: dict, seed: int) -> AudioVisualDigits:
    """The named data set under the data root (``--data-root`` > ``$CROSSDISTILL_DATA`` > ~/.cache)."""
    return DATASETS.get(name)(data_root(root), options, seed)


__all__ = ["DATASETS", "Batch", "DataInfo", "FoldData", "ModalitySpec", "SplitData", "open_dataset"]
