"""Every row of a table checked and its file cells decoded (in whichever process writes the row's shard of the
decoded store: ``workers``). A row that cannot be used is named with its data row number (1 = the first row
after any header), column, modality and file, whichever process met it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from crossdistill.data.columns import COLUMN_KINDS, empty
from crossdistill.data.manifest_options import ManifestOptions
from crossdistill.data.targets import missing_label
from crossdistill.serve.decode import BadCell, decode_number

AUTO_MIN_ROWS = 5000
  # below this, "auto" decodes in this process: starting workers costs more than it saves


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # (not on Linux)
        return os.cpu_count() or 1


def resolve_workers(workers: int | str, rows: int) -> int:
    """``data.workers`` -> a number of worker processes (0: decode here)."""
    if workers == "auto":
        cores = available_cores()
        return cores if rows >= AUTO_MIN_ROWS and cores > 1 else 0
    return int(workers)


def decode_row(row: dict[str, Any], options: ManifestOptions, base: Path, label_is_number: bool
               ) -> tuple[dict[str, Any] | None, str | None]:
    """(decoded cells by modality (None where an optional modality is missing), None), or (None, the problem)."""
    number, cells = row["_row"], {}
    for modality, spec in options.modalities.items():
        column = spec.columns()[0]
        if spec.optional and empty(row[column]):
            cells[modality] = None  # missing in this row
            continue
        try:
            kind = COLUMN_KINDS.get(spec.kind)
            kind.check(spec, row)
            if kind.decoded:
                cells[modality] = kind.decode(spec, row[column], base / spec.folder, options)
        except BadCell as why:
            return None, f"data row {number}, column {why.column or column!r} (modality {modality}): {why}"
    label = options.label
    if label and label_is_number and not missing_label(row[label]):
        try:
            decode_number(row[label])
        except BadCell as why:
            return None, f"data row {number}, column {label!r} (label): {why}"
    if cells and all(c is None for c in cells.values()) and len(cells) == len(options.modalities):
        return None, f"data row {number}: every modality is missing"
    return cells, None


def decode_chunk(rows: list[dict[str, Any]], options: ManifestOptions, base: Path, label_is_number: bool
                 ) -> list[tuple[dict[str, Any] | None, str | None]]:
    """``decode_row`` of each row, in order (picklable with its options bound: what a store's shard writer runs)."""
    return [decode_row(row, options, base, label_is_number) for row in rows]
