"""Data sets by name; each builds folds of ``SplitData`` with a ``DataInfo``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import ValidationError

from crossdistill.config import ConfigError, key_path
from crossdistill.data.av_digits import AudioVisualDigits, AVDigits, AVMnist
from crossdistill.data.batch import Batch, DataInfo, FoldData, ModalitySpec, SplitData
from crossdistill.data.builtin_tables import EmojiSentiment, FsddTranscripts, SklearnTable
from crossdistill.data.hf_dataset import HuggingFaceDataset
from crossdistill.data.manifest import Manifest
from crossdistill.data.mfeat import MultipleFeatures
from crossdistill.data.sources import data_root
from crossdistill.data.synthetic_lupi import SyntheticLUPI
from crossdistill.data.synthetic_mfh import SyntheticMFH
from crossdistill.registry import Registry

if TYPE_CHECKING:
    from crossdistill.tasks import Task

# (hf and the built-in tables are Manifests)
Dataset = AudioVisualDigits | Manifest | MultipleFeatures | SyntheticMFH | SyntheticLUPI
DATASETS: Registry[type[Dataset]] = Registry("dataset")
DATASETS.register("av-digits")(AVDigits)
DATASETS.register("av-mnist")(AVMnist)
DATASETS.register("manifest")(Manifest)
DATASETS.register("hf")(HuggingFaceDataset)
DATASETS.register("mfeat")(MultipleFeatures)
DATASETS.register("synthetic-mfh")(SyntheticMFH)
DATASETS.register("synthetic-lupi")(SyntheticLUPI)
DATASETS.register("sklearn")(SklearnTable)
DATASETS.register("emoji-sentiment")(EmojiSentiment)
DATASETS.register("fsdd-transcripts")(FsddTranscripts)


def _validated_options(name: str, options: dict):  # noqa: ANN202  (the data set's own Options model)
    dataset = DATASETS.get(name)
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
    dataset = DATASETS.get(name)
    if dataset.targets != "given by the task" and dataset.targets not in task.target_kinds:
        raise ConfigError(f"task {task.name!r} cannot use data set {name!r}, whose label is {dataset.targets} "
                          f"(task {task.name} reads: {', '.join(task.target_kinds)})")
    parallel = ({"workers": workers, "in_memory": in_memory, "full_check": full_check}
                if getattr(dataset, "decodes_files", False) else {})
    return dataset(data_root(root), options, seed, task, **parallel)


__all__ = ["DATASETS", "Batch", "DataInfo", "FoldData", "ModalitySpec", "SplitData", "open_dataset"]
