"""The export's golden rows: real test rows as a device receives them (files copied beside the export, texts,
numbers), the tensors training read for them and the model's outputs. Writing them checks that the numpy
serving path (``crossdistill.serve``) turns those raw rows into what training read; ``crossdistill_serve check``
replays them on the device."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from crossdistill.atomic import atomic_file
from crossdistill.data.batch import FoldData
from crossdistill.data.examples import serving_examples
from crossdistill.errors import CrossdistillError
from crossdistill.serve.recipes import FILE_SUFFIXES, Preprocessor

TOLERANCE = 1e-3  # numpy's float64 log-mel vs torch.stft's float32 differ by ~1e-5


class ServingSkewError(CrossdistillError, ValueError):
    """The serving path does not give the tensors training read; the message names the modality."""


def write_golden(folder: Path, dataset: Any, fold: FoldData, modalities: list[str], recipes: dict[str, dict],
                 outputs: dict[str, Any], count: int = 4) -> dict[str, Any]:
    """Write ``folder`` (golden files, ``rows.json``, ``expected.npz``); ``outputs(inputs) -> {name: (B, K)}``
    gives the model's outputs for the expected inputs. Returns the largest input difference per modality."""
    examples, positions = serving_examples(dataset, fold, modalities, count)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    cells = {m: [_portable(folder, m, i, row[m], recipes[m]) for i, row in enumerate(examples)] for m in modalities}
    served = Preprocessor(recipes, folder.parent)
    expected = {f"input.{m}": np.asarray(fold.splits["test"].inputs[m][positions]) for m in modalities}
    differences = {}
    for modality in modalities:
        got = served(modality, cells[modality], folder)
        differences[modality] = float(np.abs(got.astype(np.float64) - expected[f"input.{modality}"]).max())
        if differences[modality] > TOLERANCE and not recipes[modality].get("noise"):
            raise ServingSkewError(f"{modality}: the serving preprocessing differs from training's by "
                                   f"{differences[modality]:.2e} (> {TOLERANCE}) on real test rows: refusing to export")
    for name, value in outputs({m: expected[f"input.{m}"] for m in modalities}).items():
        expected[name] = value
    with atomic_file(folder / "expected.npz") as partial, partial.open("wb") as handle:
        np.savez(handle, **expected)
    (folder / "rows.json").write_text(json.dumps({"cells": cells, "tolerance": TOLERANCE}, indent=1))
    return {"rows": len(positions), "max_input_difference": differences}


def _portable(folder: Path, modality: str, i: int, cell: Any, recipe: dict) -> Any:
    """A file cell copied into ``folder`` (its name is the cell); any other cell as it is."""
    suffixes = FILE_SUFFIXES.get(recipe["kind"], ())
    if isinstance(cell, dict) and cell.get("bytes"):  # (a Hugging Face image/audio cell)
        name = f"{modality}-{i}{Path(str(cell.get('path') or '')).suffix or suffixes[0]}"
        (folder / name).write_bytes(cell["bytes"])
        return name
    if isinstance(cell, str) and cell.lower().endswith(suffixes) and Path(cell).is_file():
        name = f"{modality}-{i}{Path(cell).suffix.lower()}"
        shutil.copy(cell, folder / name)
        return name
    return cell
