"""A column kind's serving side: the options and fitted state a deployed model's preprocessing follows
(``serve.recipes``), and new cells turned into the tensor a model reads with a saved state."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from crossdistill.data.columns import COLUMN_KINDS
from crossdistill.data.manifest_options import ManifestOptions, ModalityColumns

if TYPE_CHECKING:
    from torch import Tensor


def served_state(spec: ModalityColumns, state: dict[str, Any]) -> dict[str, Any]:
    """A modality's meta: the fitted state and, under ``serving``, the options a deployed model's preprocessing
    follows (``serve.recipes``)."""
    return {**state, "serving": serving_recipe(spec)}


def serving_recipe(spec: ModalityColumns) -> dict[str, Any]:
    """The column's options a deployed model's preprocessing follows."""
    options = {"kind": spec.kind, "column": spec.column, "folder": spec.folder}
    if spec.kind == "image":
        options |= {"size": spec.size, "grayscale": spec.grayscale}
    elif spec.kind == "audio":
        options |= {"sample_rate": spec.sample_rate, "samples": int(spec.sample_rate * spec.seconds),
                    "n_fft": spec.n_fft, "hop": spec.hop, "n_mels": spec.n_mels, "top_db": 60.0, "band_norm": True}
    elif spec.kind == "tabular":
        options |= {"columns": spec.columns(), "numeric_columns": list(spec.numeric)}
    elif spec.kind == "text_embedding":
        options |= {"model": spec.model}
    return options


def preprocess(spec: ModalityColumns, cells: list[Any], base: Path, state: dict[str, Any],
               options: ManifestOptions) -> Tensor:
    """New cells of one modality (file paths relative to ``base``, texts, numbers; tabular: one list of the
    modality's columns per row) -> the tensor its model reads, with a state ``fit`` saved: what serving runs."""
    kind = COLUMN_KINDS.get(spec.kind)
    if not kind.decoded:
        several = len(spec.columns()) > 1  # (a tabular row's cell is the list of its columns' values)
        rows = [dict(zip(spec.columns(), cell if several else [cell], strict=True)) for cell in cells]
        for row in rows:
            kind.check(spec, row)
        return kind.transform(spec, kind.values(spec, rows), state)
    decoded, _ = kind.decode_all(spec, [kind.decode(spec, cell, base / spec.folder, options) for cell in cells])
    return kind.transform(spec, np.stack(decoded), state)
