"""Read a table (CSV, TSV, JSON, JSONL or Parquet) into rows of plain Python values: a manifest in training,
an input table in serving."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

FORMATS = (".csv", ".tsv", ".jsonl", ".json", ".parquet")


class TableError(ValueError):
    """A table that is missing or cannot be read; the message names the file (and line)."""


def read_rows(path: Path, file_format: str | None = None, names: list[str] | None = None) -> list[dict[str, Any]]:
    """Rows in file order. CSV/TSV cells are strings; JSON(L) and Parquet keep their types (lists stay lists).
    ``.json`` is one array of objects. ``file_format`` overrides the extension (e.g. ``tsv`` for a ``.txt``);
    ``names`` name the columns of a CSV/TSV without a header row."""
    if not path.is_file():
        raise TableError(f"table not found: {path}")
    suffix = f".{file_format}" if file_format else path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        with path.open(newline="", encoding="utf-8-sig") as handle:  # (-sig: Excel's "CSV UTF-8" byte-order mark)
            rows = list(csv.DictReader(handle, fieldnames=names, delimiter="," if suffix == ".csv" else "\t"))
        if names and any(None in row for row in rows):
            extra = next(i for i, row in enumerate(rows, start=1) if None in row)
            raise TableError(f"{path}, data row {extra}: more cells than the {len(names)} column names given")
        return rows
    if suffix == ".json":
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise TableError(f"{path}: not JSON ({error.msg}, line {error.lineno})") from None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise TableError(f"{path}: a .json table must be one array of objects (or use .jsonl)")
        return rows
    if suffix == ".jsonl":
        rows = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise TableError(f"{path}, line {number}: not JSON ({error.msg})") from None
            if not isinstance(row, dict):
                raise TableError(f"{path}, line {number}: expected a JSON object per line")
            rows.append(row)
        return rows
    if suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise TableError(f"{path}: reading Parquet needs pyarrow: pip install pyarrow") from None
        return pq.read_table(path).to_pylist()
    raise TableError(f"{path}: table format {suffix or '(none)'} not supported; use {', '.join(FORMATS)}")
