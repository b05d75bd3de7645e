"""Column kinds: how a manifest column becomes a modality tensor, written once and used for training, for
``search`` and for any later serving path, so that what a deployed model is fed is exactly what it was trained on.

A kind has four steps:
- ``check`` / ``decode``: a cell is checked cheaply, or decoded (a file, a list of numbers) into an array. Decoded
  arrays are what the manifest caches with the data.
- ``fit``: the state learnt from the training rows only (normalisation statistics, a vocabulary, category
  levels); it is JSON-able and saved as the modality's ``meta`` in ``data_info.json``.
- ``transform``: values + state -> the tensor a model reads, row by row (a row's tensor never depends on the
  other rows of its batch).
``column_serving.preprocess`` chains them for new cells with a saved state: the serving path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from crossdistill.config import ConfigError
from crossdistill.data.manifest_options import ManifestOptions, ModalityColumns
from crossdistill.data.pretrained import sentence_encoder
from crossdistill.data.store_codes import IMAGE_CODES, PCM16_CODES, Codes
from crossdistill.data.stored_rows import Rows, moments
from crossdistill.data.text import PretrainedTokenizer, Tokenizer
from crossdistill.registry import Registry
from crossdistill.serve.decode import BadCell, decode_audio, decode_features, decode_image, decode_number
from crossdistill.serve.frontend import standardise, tabular

if TYPE_CHECKING:
    from torch import Tensor


def as_tensor(array: np.ndarray) -> Tensor:
    """``torch.from_numpy``, PyTorch imported on the first transform: decoding (what the decoded store's build
    workers run) needs numpy, Pillow and scipy only, and a worker starts seconds sooner without PyTorch."""
    import torch

    return torch.from_numpy(array)


def empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


class ColumnKind:
    """Base: a kind whose cells are decoded to arrays and passed through unchanged."""

    name: ClassVar[str] = ""
    decoded: ClassVar[bool] = True  # cells are decoded during the read (and cached with the data)
    file_suffixes: ClassVar[frozenset[str]] = frozenset()  # files of this kind (a gallery folder's)
    names_files: ClassVar[bool] = False  # its cells name files (hashed into the cache key)
    reads_text: ClassVar[bool] = False  # its cells are free text (a text query can be served to it)
    dtype: ClassVar[str] = "float32"
    codes: ClassVar[Codes | None] = None  # the integer codes its decoded values are held as in the store, if exact

    def check(self, spec: ModalityColumns, row: dict[str, Any]) -> None:
        """Cheap checks of a row's cells that are not decoded; raises ``BadCell``."""

    def decode(self, spec: ModalityColumns, cell: Any, base: Path, options: ManifestOptions) -> Any:
        """One cell -> its decoded value (``base``: the folder relative paths start from)."""
        return decode_features(cell, base)

    def decode_all(self, spec: ModalityColumns, values: list[Any]) -> tuple[list[Any], dict[str, Any]]:
        """Every decoded row at once (a pretrained model runs here); returns them and what the state must add."""
        return values, {}

    def values(self, spec: ModalityColumns, rows: list[dict[str, Any]]) -> Any:
        """The values ``fit``/``transform`` take, from the table's rows (kinds that are not decoded)."""
        raise NotImplementedError

    def present(self, spec: ModalityColumns, rows: list[dict[str, Any]]) -> np.ndarray:
        """(N,) bool: the rows that have this modality (not decoded kinds)."""
        return np.asarray([not empty(row[spec.column]) for row in rows])

    def fit(self, spec: ModalityColumns, values: Any, train: np.ndarray, modality: str,
            extra: dict[str, Any]) -> dict[str, Any]:
        """The state learnt from the training rows ``train`` (N,) bool: saved as the modality's meta."""
        return dict(extra)

    def transform(self, spec: ModalityColumns, values: Any, state: dict[str, Any]) -> Tensor:
        return as_tensor(np.asarray(values, dtype=np.float32))


COLUMN_KINDS: Registry[ColumnKind] = Registry("column kind")


def register_kind(cls: type[ColumnKind]) -> type[ColumnKind]:
    COLUMN_KINDS.register(cls.name)(cls())
    return cls


class Normalised(ColumnKind):
    """Standardised with the mean and std of the training rows that have it, over ``axes``."""

    axes: ClassVar[tuple[int, ...]] = (0,)

    def fit(self, spec: ModalityColumns, values: np.ndarray | Rows, train: np.ndarray, modality: str,
            extra: dict[str, Any]) -> dict[str, Any]:
        # float64: the same statistics whatever the memory layout; read in bounded chunks from a store
        mean, std = moments(values, np.flatnonzero(train), self.axes)
        std = std + 1e-6
        return {**extra, "normalise": {"mean": mean.ravel().tolist(), "std": std.ravel().tolist()}}

    def transform(self, spec: ModalityColumns, values: np.ndarray, state: dict[str, Any]) -> Tensor:
        return as_tensor(standardise(values, state["normalise"], per_channel=self.axes != (0,)))


@register_kind
class ImageColumn(Normalised):
    """An image file (PNG, JPEG) resized to ``size`` x ``size``, standardised per channel."""

    name = "image"
    file_suffixes = frozenset({".png", ".jpg", ".jpeg"})
    names_files = True
    axes = (0, 2, 3)
    codes = IMAGE_CODES

    def decode(self, spec: ModalityColumns, cell: Any, base: Path, options: ManifestOptions) -> np.ndarray:
        return decode_image(cell, base, spec.size, spec.grayscale)


@register_kind
class FeaturesColumn(Normalised):
    """A pre-extracted vector (a ``.npy`` path or a list of numbers), standardised per dimension."""

    name = "features"
    names_files = True


@register_kind
class AudioColumn(ColumnKind):
    """A wav file, resampled, centre-padded or cropped to ``seconds``, as a normalised log-mel spectrogram."""

    name = "audio"
    file_suffixes = frozenset({".wav"})
    names_files = True
    codes = PCM16_CODES

    def decode(self, spec: ModalityColumns, cell: Any, base: Path, options: ManifestOptions) -> np.ndarray:
        return decode_audio(cell, base, spec.sample_rate, int(spec.sample_rate * spec.seconds))

    def transform(self, spec: ModalityColumns, values: np.ndarray, state: dict[str, Any]) -> Tensor:
        from crossdistill.data.audio import log_mel  # (with PyTorch: see as_tensor)

        return log_mel(values, spec.sample_rate, spec.n_fft, spec.hop, spec.n_mels)  # (N, 1, mels, frames)


@register_kind
class DistributionColumn(ColumnKind):
    """Scores per row (e.g. one per human rater) -> the share of them in each class of ``label_bins``: a soft
    target for the ``soft_target`` loss, kept as it is."""

    name = "distribution"

    def decode(self, spec: ModalityColumns, cell: Any, base: Path, options: ManifestOptions) -> np.ndarray:
        scores, edges = decode_features(cell, base), options.label_bins
        if not edges:
            raise BadCell("a distribution column needs label_bins (the class edges its scores fall between)")
        if scores.size == 0:
            raise BadCell("no scores")
        classes = np.searchsorted(np.asarray(sorted(edges)), scores.ravel(), side="left")
        return (np.bincount(classes, minlength=len(edges) + 1) / scores.size).astype(np.float32)

    def fit(self, spec: ModalityColumns, values: Any, train: np.ndarray, modality: str,
            extra: dict[str, Any]) -> dict[str, Any]:
        return {"distribution": True}


@register_kind
class TextEmbeddingColumn(FeaturesColumn):
    """A text embedded by a frozen pretrained sentence model (run once over every row, cached with the data),
    standardised per dimension."""

    name = "text_embedding"
    names_files = False
    reads_text = True

    def check(self, spec: ModalityColumns, row: dict[str, Any]) -> None:
        if not isinstance(row[spec.column], str | int | float):
            raise BadCell(f"text expected, got {row[spec.column]!r}")

    def decode(self, spec: ModalityColumns, cell: Any, base: Path, options: ManifestOptions) -> str:
        return str(cell)  # embedded below, all rows at once

    def decode_all(self, spec: ModalityColumns, values: list[Any]) -> tuple[list[Any], dict[str, Any]]:
        encoder = sentence_encoder(spec.model)
        return list(encoder(values)), {"pretrained_model": spec.model, "pretrained_params": int(encoder.params)}


@register_kind
class TextColumn(ColumnKind):
    """Free text as token ids: a word or character vocabulary fitted on the training rows, the word pieces of a
    pretrained model (``tokenizer: hf``), or the tokenizer of an earlier run (``vocabulary:``)."""

    name = "text"
    decoded = False
    reads_text = True
    dtype = "int64"

    def check(self, spec: ModalityColumns, row: dict[str, Any]) -> None:
        if not isinstance(row[spec.column], str | int | float):
            raise BadCell(f"text expected, got {row[spec.column]!r}")

    def values(self, spec: ModalityColumns, rows: list[dict[str, Any]]) -> list[str]:
        return ["" if empty(row[spec.column]) else str(row[spec.column]) for row in rows]

    def fit(self, spec: ModalityColumns, values: list[str], train: np.ndarray, modality: str,
            extra: dict[str, Any]) -> dict[str, Any]:
        if spec.vocabulary:
            tokenizer = reused_tokenizer(Path(str(spec.vocabulary)).expanduser(), modality)
        elif spec.tokenizer == "hf":
            tokenizer = PretrainedTokenizer(spec.model, spec.max_length)
        else:
            tokenizer = Tokenizer(spec.tokenizer, spec.max_length, spec.min_count).fit(
                [t for t, is_train in zip(values, train, strict=True) if is_train])
        return {"vocab_size": tokenizer.vocab_size, "tokenizer": tokenizer.state()}

    def transform(self, spec: ModalityColumns, values: list[str], state: dict[str, Any]) -> Tensor:
        return as_tensor(Tokenizer.from_state(state["tokenizer"]).encode([str(v) for v in values]))


def reused_tokenizer(path: Path, modality: str) -> Tokenizer | PretrainedTokenizer:
    """The tokenizer of ``modality`` saved in a run's ``data_info.json``."""
    try:
        saved = json.loads(path.read_text())["modalities"][modality]["meta"]["tokenizer"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        raise ConfigError(f"modality {modality!r}: vocabulary {path} is not a data_info.json holding a "
                          f"tokenizer for {modality!r}") from None
    return Tokenizer.from_state(saved)


@register_kind
class TabularColumn(ColumnKind):
    """Numeric columns standardised with the training rows' mean and std, then categorical columns as ids of
    the levels seen in training (0: a level never seen there)."""

    name = "tabular"
    decoded = False

    def check(self, spec: ModalityColumns, row: dict[str, Any]) -> None:
        for column in spec.numeric:
            try:
                decode_number(row[column])
            except BadCell as why:
                raise BadCell(str(why), column=column) from None

    def values(self, spec: ModalityColumns, rows: list[dict[str, Any]]) -> list[list[Any]]:
        return [[row[c] for c in spec.columns()] for row in rows]

    def present(self, spec: ModalityColumns, rows: list[dict[str, Any]]) -> np.ndarray:
        return np.ones(len(rows), dtype=bool)  # (a tabular modality cannot be optional)

    def _numbers(self, spec: ModalityColumns, values: list[list[Any]]) -> np.ndarray:
        numbers = np.asarray([[decode_number(v) for v in row[: len(spec.numeric)]] for row in values], np.float32)
        return numbers.reshape(len(values), len(spec.numeric))  # (N, numeric)

    def fit(self, spec: ModalityColumns, values: list[list[Any]], train: np.ndarray, modality: str,
            extra: dict[str, Any]) -> dict[str, Any]:
        numbers = self._numbers(spec, values)[train]
        n = len(spec.numeric)
        levels = [sorted({str(row[n + j]) for row, is_train in zip(values, train, strict=True) if is_train})
                  for j in range(len(spec.categorical))]
        return {"numeric": n, "categories": [len(seen) + 1 for seen in levels], "levels": levels,
                "mean": numbers.mean(axis=0).tolist(), "std": numbers.std(axis=0).tolist()}

    def transform(self, spec: ModalityColumns, values: list[list[Any]], state: dict[str, Any]) -> Tensor:
        categories = [row[state["numeric"]:] for row in values]
        return as_tensor(tabular(self._numbers(spec, values), categories, state))  # (N, numeric + categ.)
