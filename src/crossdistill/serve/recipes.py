"""Preprocessing recipes: how each modality of a trained model is fed, written as JSON at training time (a
modality's ``meta`` in ``data_info.json``: the column kind's options under ``serving``, the state learnt from
the training rows beside it) and followed here for new inputs, in numpy alone.

A recipe is ``{"kind", "shape", "dtype", ...options, ...state}``; kinds:
- ``audio``: a wav file, resampled to ``sample_rate``, centre-padded or cropped to ``samples``, then the
  normalised log-mel of ``frontend.log_mel`` (``n_fft``, ``hop``, ``n_mels``, ``top_db``, ``band_norm``);
- ``image``: a PNG/JPEG file resized to ``size`` (``grayscale``), or an array already of the model's shape,
  standardised per channel (``normalise``);
- ``features``: numbers (a ``.npy`` file, a list, a JSON list) of the model's shape, standardised per value
  (``normalise``) when training did;
- ``text``: token ids of the saved ``tokenizer`` (a vocabulary, or a ``tokenizer.json`` beside the recipe);
- ``tabular``: one value per column of ``columns`` (``numeric_columns`` first; ``mean``, ``std``, ``levels``);
- ``text_embedding``: a text through a pretrained sentence model (``embed`` must be given: no numpy path).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .decode import BadCell, decode_audio, decode_features, decode_image, decode_number
from .frontend import log_mel, standardise, tabular
from .text import PieceTokenizer, WordTokenizer

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
FILE_SUFFIXES = {"audio": (".wav",), "image": IMAGE_SUFFIXES, "features": (".npy",)}


class NotServable(ValueError):
    """A modality whose preprocessing cannot run here (no recipe, or a recipe that needs a model)."""


def recipes_from_info(data_info: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """modality -> recipe, from a run's ``data_info.json`` (its ``modalities``)."""
    recipes = {}
    for modality, saved in data_info["modalities"].items():
        meta = dict(saved.get("meta", {}))
        serving = meta.pop("serving", None) or {"kind": "unknown", "why": "this run's data source wrote no "
                                               "preprocessing recipe (trained before crossdistill 0.2)"}
        recipes[modality] = {**meta, **serving, "shape": list(saved["shape"]), "dtype": saved["dtype"]}
    return recipes


def columns_of(modality: str, recipe: dict[str, Any]) -> list[str]:
    """The input-table columns a modality reads: its own columns (tabular), else its manifest column and its
    name."""
    if recipe["kind"] == "tabular":
        return list(recipe["columns"])
    return list(dict.fromkeys(c for c in (recipe.get("column"), modality) if c))


Spectrogram = Callable[..., Any]  # (waves, sample_rate, n_fft, hop, n_mels, top_db, band_norm) -> (N, 1, M, T)


class Preprocessor:
    """``preprocessor(modality, cells, base) -> (N, *shape) array``: new cells (file paths relative to ``base``,
    texts, numbers, rows of a tabular modality) as the model reads them. ``folder`` holds files a recipe names
    (a tokenizer); ``spectrogram`` and ``embed`` let a caller with PyTorch run training's own front end."""

    def __init__(self, recipes: dict[str, dict[str, Any]], folder: Path | None = None,
                 spectrogram: Spectrogram = log_mel, embed: Callable[[dict, list[str]], np.ndarray] | None = None
                 ) -> None:
        self.recipes, self.folder, self.spectrogram, self.embed = recipes, folder, spectrogram, embed
        self._tokenizers: dict[str, Any] = {}

    def check(self, modalities: list[str]) -> None:
        """Raise ``NotServable`` naming each modality whose preprocessing cannot run here."""
        problems = [f"{m}: {self.why(m)}" for m in modalities if not self.servable(m)]
        if problems:
            raise NotServable("cannot preprocess " + "; ".join(problems))

    def why(self, modality: str) -> str:
        """Why ``modality`` cannot be served here."""
        recipe = self.recipes[modality]
        if recipe["kind"] == "text_embedding":
            return (f"its text is embedded by the sentence model {recipe.get('model')!r}, which needs PyTorch: "
                    "predict from the run directory")
        return recipe.get("why", f"no serving path for kind {recipe['kind']!r}")

    def servable(self, modality: str) -> bool:
        kind = self.recipes[modality]["kind"]
        return kind in ("audio", "image", "features", "text", "tabular") or (
            kind == "text_embedding" and self.embed is not None)

    def __call__(self, modality: str, cells: list[Any], base: Path) -> np.ndarray:
        recipe = self.recipes[modality]
        kind = recipe["kind"]
        if kind == "audio":
            waves = np.stack([decode_audio(c, base, recipe["sample_rate"], recipe["samples"]) for c in cells])
            return np.asarray(self.spectrogram(waves, recipe["sample_rate"], recipe["n_fft"], recipe["hop"],
                                               recipe["n_mels"], recipe.get("top_db", 60.0),
                                               recipe.get("band_norm", True)), dtype=np.float32)
        if kind == "image":
            images = np.stack([self._image(c, base, recipe) for c in cells])
            return standardise(images, recipe["normalise"], per_channel=True)
        if kind == "features":
            values = np.stack([shaped(decode_features(c, base), recipe["shape"]) for c in cells])
            return standardise(values, recipe["normalise"], per_channel=recipe.get("per_channel", False)) \
                if "normalise" in recipe else values.astype(np.float32)
        if kind == "text":
            return self._tokenizer(modality).encode(["" if c is None else str(c) for c in cells])
        if kind == "tabular":
            return self._tabular(cells, recipe)
        if kind == "text_embedding" and self.embed is not None:
            return standardise(self.embed(recipe, [str(c) for c in cells]), recipe["normalise"], per_channel=False)
        self.check([modality])
        raise AssertionError("unreachable")

    def _image(self, cell: Any, base: Path, recipe: dict[str, Any]) -> np.ndarray:
        if isinstance(cell, dict) or str(cell).lower().endswith(IMAGE_SUFFIXES):
            return decode_image(cell, base, recipe["size"], recipe["grayscale"])
        return shaped(decode_features(cell, base), recipe["shape"])  # an array of the model's shape

    def _tokenizer(self, modality: str) -> Any:
        if modality not in self._tokenizers:
            state = self.recipes[modality]["tokenizer"]
            if state["level"] != "hf":
                self._tokenizers[modality] = WordTokenizer.from_state(state)
            else:
                path = (self.folder or Path(".")) / self.recipes[modality].get("tokenizer_file", "tokenizer.json")
                if not path.is_file():
                    raise NotServable(f"{modality}: word-piece text needs {path} (written by the export)")
                self._tokenizers[modality] = PieceTokenizer(path, state["max_length"])
        return self._tokenizers[modality]

    def _tabular(self, cells: list[Any], recipe: dict[str, Any]) -> np.ndarray:
        n = len(recipe["numeric_columns"])
        rows = [[cell[c] for c in recipe["columns"]] if isinstance(cell, dict) else list(cell) for cell in cells]
        numbers = np.zeros((len(rows), n), np.float32)
        for i, row in enumerate(rows):
            for j, column in enumerate(recipe["numeric_columns"]):
                try:
                    numbers[i, j] = decode_number(row[j])
                except BadCell as why:
                    raise BadCell(str(why), column=column) from None
        return tabular(numbers, [row[n:] for row in rows], recipe)


def shaped(values: np.ndarray, shape: list[int]) -> np.ndarray:
    """``values`` as the model's per-row ``shape``; a different size is a ``BadCell`` naming both."""
    if values.size != int(np.prod(shape)):
        raise BadCell(f"{values.size} numbers, the model reads {'x'.join(map(str, shape))} = {int(np.prod(shape))}")
    return values.reshape(shape)
