"""Real test rows as a deployment would receive them (a wav file's path, an image array, a text, a feature
row), beside the positions of the same rows in the fold's test split: the export replays them through the
serving recipes and checks that they give the tensors training read (no train/serve skew), and saves them as
the export's golden rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from crossdistill.data.av_digits import AudioVisualDigits
from crossdistill.data.batch import FoldData
from crossdistill.data.columns import COLUMN_KINDS
from crossdistill.data.manifest import Manifest
from crossdistill.data.mfeat import MultipleFeatures
from crossdistill.data.sources import FSDD


def serving_examples(dataset: Any, fold: FoldData, modalities: list[str], count: int = 4
                     ) -> tuple[list[dict[str, Any]], np.ndarray]:
    """(rows of raw cells by modality, their positions in ``fold``'s test split) for the first ``count`` test
    rows. Raw cells name files by absolute path."""
    test = fold.splits["test"]
    positions = np.arange(min(count, len(test)))
    if isinstance(dataset, Manifest):
        by_id = {int(i): r for r, i in enumerate(dataset.ids)}
        rows = [dataset.rows[by_id[int(test.index[p])]] for p in positions]
        return [{m: _manifest_cell(dataset, m, row) for m in modalities} for row in rows], positions
    if isinstance(dataset, AudioVisualDigits):
        clips = dataset.split_rows(fold.fold)["test"][positions]
        images = dataset.paired_images(fold.fold, "test")[positions]
        folder = FSDD.locate(dataset.root) / "recordings"
        cells = {"audio": [str(folder / dataset.audio.files[c]) for c in clips], "image": images.tolist()}
        return [{m: cells[m][i] for m in modalities} for i in range(len(positions))], positions
    if isinstance(dataset, MultipleFeatures):
        rows = dataset.split_parts()[2][positions]
        return [{m: dataset.views[m][r].tolist() for m in modalities} for r in rows], positions
    # generated vectors fed as they are (synthetic-mfh)
    return [{m: test.inputs[m][int(p)].tolist() for m in modalities} for p in positions], positions


def _manifest_cell(dataset: Manifest, modality: str, row: dict[str, Any]) -> Any:
    spec = dataset.options.modalities[modality]
    if spec.kind == "tabular":
        return {c: row[c] for c in spec.columns()}
    cell = row[spec.column]
    if COLUMN_KINDS.get(spec.kind).names_files and isinstance(cell, str) and not cell.lstrip().startswith("["):
        path = Path(cell)
        return str(path if path.is_absolute() else dataset.base / spec.folder / path)
    return cell
