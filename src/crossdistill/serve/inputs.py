"""What ``predict`` is given, as cells per modality: a table (one column per modality, read like a manifest:
relative paths start from the table's folder and the column's ``folder``), a folder of files or one file (for a
model of one file modality), or a ``.npy`` array of rows (for a model of one numeric modality)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .recipes import FILE_SUFFIXES, columns_of
from .table import FORMATS, read_rows


class InputError(ValueError):
    """Input that does not match the model's modalities; the message names the file, column or modality."""


@dataclass
class InputRows:
    ids: list[str]  # what each output row is called: a file name, a table's ``id`` column, or a row number
    cells: dict[str, list[Any]]  # modality -> one cell per row
    bases: dict[str, Path]  # modality -> the folder its relative paths start from
    table: list[dict[str, Any]] | None = None  # a table input's rows, every column (e.g. to name the rows)

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, rows: list[int]) -> InputRows:
        return InputRows([self.ids[i] for i in rows], {m: [c[i] for i in rows] for m, c in self.cells.items()},
                         self.bases)


def read_inputs(path: Path, modalities: list[str], recipes: dict[str, dict[str, Any]]) -> InputRows:
    """The rows of ``path`` for a model reading ``modalities``."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"input not found: {path}")
    if path.is_file() and path.suffix.lower() in FORMATS:
        return _table(path, modalities, recipes)
    (modality,) = _single(path, modalities, recipes)
    if path.suffix.lower() == ".npy" and len(recipes[modality]["shape"]) + 1 == np.load(path, mmap_mode="r").ndim:
        rows = np.load(path, allow_pickle=False)
        return InputRows([str(i) for i in range(1, len(rows) + 1)], {modality: list(rows)}, {modality: path.parent})
    suffixes = FILE_SUFFIXES.get(recipes[modality]["kind"], ())
    if path.is_dir():
        files = sorted(p.name for p in path.iterdir() if p.suffix.lower() in suffixes)
        if not files:
            raise InputError(f"{path} holds no {modality} files ({', '.join(suffixes) or 'none for its kind'})")
        return InputRows(files, {modality: files}, {modality: path})
    if path.suffix.lower() not in suffixes:
        raise InputError(f"{path}: a {path.suffix or 'suffix-less'} file is neither a table ({', '.join(FORMATS)}) "
                         f"nor a {modality} file ({', '.join(suffixes) or 'none: give a table'})")
    return InputRows([path.name], {modality: [path.name]}, {modality: path.parent})


def _single(path: Path, modalities: list[str], recipes: dict[str, dict[str, Any]]) -> list[str]:
    if len(modalities) != 1:
        shown = ", ".join(f"{m} (column {' or '.join(map(repr, columns_of(m, recipes[m])))})" for m in modalities)
        raise InputError(f"{path}: this model reads {len(modalities)} modalities, {shown}: give a table with "
                         "one column each")
    return modalities


def _table(path: Path, modalities: list[str], recipes: dict[str, dict[str, Any]]) -> InputRows:
    rows = read_rows(path)
    if not rows:
        raise InputError(f"{path}: no rows")
    header = set(rows[0])
    cells, bases, missing = {}, {}, []
    for modality in modalities:
        recipe = recipes[modality]
        wanted = columns_of(modality, recipe)
        if recipe["kind"] == "tabular":
            absent = [c for c in wanted if c not in header]
            if absent:
                missing.append(f"{modality} (columns {', '.join(map(repr, absent))})")
                continue
            cells[modality] = [{c: row[c] for c in wanted} for row in rows]
        else:
            column = next((c for c in wanted if c in header), None)
            if column is None:
                missing.append(f"{modality} (column {' or '.join(map(repr, wanted))})")
                continue
            cells[modality] = [row[column] for row in rows]
        bases[modality] = path.parent / recipe.get("folder", "")
    if missing:
        raise InputError(f"{path}: no column for {'; '.join(missing)}; the table has: {', '.join(sorted(header))}")
    ids = [str(row["id"]) if "id" in header else str(i) for i, row in enumerate(rows, start=1)]
    return InputRows(ids, cells, bases, rows)
