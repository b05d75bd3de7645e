"""Hugging Face ``datasets`` as a table source: a ``save_to_disk`` folder (or a hub name, when online) read as rows
that the manifest's column kinds decode exactly like a CSV's (same checks, same ``--skip-bad-rows``).

Image and audio columns are read undecoded (``{"bytes", "path"}``; ``datasets``' own decoding needs
torchvision/torchcodec) and decoded by our decoders; list columns feed ``features``. A ``DatasetDict`` with
train / validation / test splits gives the split of every row (column ``_split``), unless the config names one.
Needs the optional extra: ``pip install 'crossdistill[hf]'``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crossdistill.config import ConfigError
from crossdistill.data.sources import file_stamp

SPLIT_COLUMN = "_split"
SPLIT_NAMES = {"train": "train", "validation": "val", "valid": "val", "val": "val", "dev": "val", "test": "test"}


def _undecoded(dataset: Any) -> Any:
    """Image and Audio columns as their stored bytes and path (no decoding by ``datasets``)."""
    from datasets import Audio, Image

    for name, feature in dataset.features.items():
        if isinstance(feature, Image | Audio):
            dataset = dataset.cast_column(name, type(feature)(decode=False))
    return dataset


def _load(path: Path, name: str) -> Any:
    try:
        import datasets
    except ImportError:
        raise ConfigError("dataset hf needs the datasets package: pip install 'crossdistill[hf]'") from None
    if path.is_dir():
        try:
            return datasets.load_from_disk(str(path))
        except (FileNotFoundError, ValueError) as error:
            raise ConfigError(f"{path}: not a Hugging Face dataset saved with save_to_disk ({error})") from None
    try:
        return datasets.load_dataset(name)
    except Exception as error:  # no network, unknown name: the hub's own error, named  # noqa: BLE001
        raise ConfigError(f"hf dataset {name!r}: not a local save_to_disk folder ({path} does not exist) and not "
                          f"loadable from the hub: {str(error).splitlines()[0]}") from None


def read_hf_rows(path: Path, name: str) -> tuple[list[dict[str, Any]], bool]:
    """Rows of a dataset (every split of a DatasetDict, in order, each row tagged with ``_split``); whether it had
    splits."""
    loaded = _load(path, name)
    if hasattr(loaded, "features"):  # one Dataset
        return list(_undecoded(loaded)), False
    unknown = sorted(set(loaded) - set(SPLIT_NAMES))
    if unknown:
        raise ConfigError(f"{path}: splits {', '.join(unknown)} are not train / validation / test; save the splits "
                          "you want under those names, or one dataset and give ratios")
    rows = []
    for split, part in loaded.items():
        rows += [row | {SPLIT_COLUMN: SPLIT_NAMES[split]} for row in _undecoded(part)]
    return rows, True


def source_identity(path: Path) -> bytes:
    """What identifies a table's content cheaply: a file's bytes, or for a dataset folder its metadata files and
    the size and time of every data file (no pass over the data)."""
    if path.is_file():
        return path.read_bytes()
    if not path.is_dir():
        return str(path).encode()  # a hub name
    parts = []
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        content = file.read_bytes() if file.suffix == ".json" else file_stamp(file).encode()
        parts.append(f"{file.relative_to(path)}:".encode() + content)
    return b"\n".join(parts)
