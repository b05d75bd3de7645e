"""Data sets by name; each builds folds of ``SplitData`` with a ``DataInfo``.

The data sets' modules (and PyTorch with them) are imported when a data set is opened or a name below is first
read, not with this package: a decoded store's build workers import ``crossdistill.data`` modules and decode with
numpy, Pillow and scipy alone, which starts each worker in a fraction of the seconds a PyTorch import takes.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from crossdistill.config import ConfigError, key_path
from crossdistill.data.sources import data_root
from crossdistill.registry import Registry

if TYPE_CHECKING:
    from crossdistill.data.av_digits import AudioVisualDigits
    from crossdistill.data.batch import Batch, DataInfo, FoldData, ModalitySpec, SplitData
    from crossdistill.data.manifest import Manifest
    from crossdistill.data.mfeat import MultipleFeatures
    from crossdistill.data.synthetic_lupi import SyntheticLUPI
    from crossdistill.data.synthetic_mfh import SyntheticMFH
    from crossdistill.tasks import Task

    # (hf and the built-in tables are Manifests)
    Dataset = AudioVisualDigits | Manifest | MultipleFeatures | SyntheticMFH | SyntheticLUPI

# name -> (module, class)
_DATASET_CLASSES = {
    "av-digits": ("av_digits", "AVDigits"),
    "av-mnist": ("av_digits", "AVMnist"),
    "manifest": ("manifest", "Manifest"),
    "hf": ("hf_dataset", "HuggingFaceDataset"),
    "mfeat": ("mfeat", "MultipleFeatures"),
    "synthetic-mfh": ("synthetic_mfh", "SyntheticMFH"),
    "synthetic-lupi": ("synthetic_lupi", "SyntheticLUPI"),
    "sklearn": ("builtin_tables", "SklearnTable"),
    "emoji-sentiment": ("builtin_tables", "EmojiSentiment"),
    "fsdd-transcripts": ("builtin_tables", "FsddTranscripts"),
}
_BATCH_NAMES = ("Batch", "DataInfo", "FoldData", "ModalitySpec", "SplitData")


@cache
def datasets() -> Registry[type[Dataset]]:
    """Every data set by name (their modules imported on this first call)."""
    registry: Registry[type[Dataset]] = Registry("dataset")
    for name, (module, cls) in _DATASET_CLASSES.items():
        registry.register(name)(getattr(importlib.import_module(f"crossdistill.data.{module}"), cls))
    return registry


def __getattr__(name: str) -> Any:  # (PEP 562: the names below, imported on first use)
    if name == "DATASETS":
        return datasets()
    if name in _BATCH_NAMES:
        return getattr(importlib.import_module("crossdistill.data.batch"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _validated_options(name: str, options: dict):  # noqa: ANN202  (the data set's own Options model)
    dataset = datasets().get(name)
    try:
        return dataset.Options.model_validate(options)
    except ValidationError as error:
        problems = "; ".join(f"{key_path(e['loc'])}: {e['msg']}" for e in error.errors())
        raise ConfigError(f"data.options of {name}: {problems} (valid options: "
                          f"{', '.join(dataset.Options.model_fields)})") from None


def open_dataset(name: str, root: str | None, options: dict, seed: int, task: Task, *,
                 workers: int | str = 0, in_memory: bool | str = "auto", full_check: bool = False) -> Dataset:
    """The named data set under the data root (``--data-root`` > ``$CROSSDISTILL_DATA`` > ~/.cache), its targets
    read as ``task`` says. Where it decodes files: ``workers`` processes decode them (``data.workers``), into a
    decoded store read into memory or a batch at a time (``data.in_memory``), checked in full on ``full_check``."""
    _validated_options(name, options)
    dataset = datasets().get(name)
    if dataset.targets != "given by the task" and dataset.targets not in task.target_kinds:
        raise ConfigError(f"task {task.name!r} cannot use data set {name!r}, whose label is {dataset.targets} "
                          f"(task {task.name} reads: {', '.join(task.target_kinds)})")
    parallel = ({"workers": workers, "in_memory": in_memory, "full_check": full_check}
                if getattr(dataset, "decodes_files", False) else {})
    return dataset(data_root(root), options, seed, task, **parallel)


__all__ = ["DATASETS", "Batch", "DataInfo", "FoldData", "ModalitySpec", "SplitData", "open_dataset"]
