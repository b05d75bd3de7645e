"""Read a manifest table (CSV, JSONL or Parquet) into rows of plain Python values, each with its row number."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from crossdistill.config import ConfigError
from crossdistill.data.manifest_options import JoinSpec
from crossdistill.errors import CrossdistillError

FORMATS = (".csv", ".tsv", ".jsonl", ".json", ".parquet")


def read_rows(path: Path, file_format: str | None = None, names: list[str] | None = None) -> list[dict[str, Any]]:
    """Rows in file order. CSV/TSV cells are strings; JSON(L) and Parquet keep their types (lists stay lists).
    ``.json`` is one array of objects. ``file_format`` overrides the extension (e.g. ``tsv`` for a ``.txt``);
    ``names`` name the columns of a CSV/TSV without a header row."""
    if not path.is_file():
        raise ConfigError(f"manifest not found: {path}")
    suffix = f".{file_format}" if file_format else path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        with path.open(newline="", encoding="utf-8-sig") as handle:  # (-sig: Excel's "CSV UTF-8" byte-order mark)
            rows = list(csv.DictReader(handle, fieldnames=names, delimiter="," if suffix == ".csv" else "\t"))
        if names and any(None in row for row in rows):
            extra = next(i for i, row in enumerate(rows, start=1) if None in row)
            raise ConfigError(f"{path}, data row {extra}: more cells than the {len(names)} column names given")
        return rows
    if suffix == ".json":
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ConfigError(f"{path}: not JSON ({error.msg}, line {error.lineno})") from None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ConfigError(f"{path}: a .json manifest must be one array of objects (or use .jsonl)")
        return rows
    if suffix == ".jsonl":
        rows = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ConfigError(f"{path}, line {number}: not JSON ({error.msg})") from None
            if not isinstance(row, dict):
                raise ConfigError(f"{path}, line {number}: expected a JSON object per line")
            rows.append(row)
        return rows
    if suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise ConfigError(f"{path}: reading Parquet needs pyarrow: pip install 'crossdistill[parquet]'") from None
        return pq.read_table(path).to_pylist()
    raise ConfigError(f"{path}: manifest format {suffix or '(none)'} not supported; use {', '.join(FORMATS)}")


def check_columns(rows: list[dict[str, Any]], needed: dict[str, str], path: Path) -> None:
    """Every column the config names exists (``needed``: column -> what uses it)."""
    present = set(rows[0]) if rows else set()
    missing = {column: use for column, use in needed.items() if column not in present}
    if missing:
        named = ", ".join(f"{column!r} ({use})" for column, use in missing.items())
        raise ConfigError(f"{path}: no column {named}; the manifest has: {', '.join(sorted(present))}")


class ManifestError(CrossdistillError, ValueError):
    """Rows of a manifest that cannot be used; the message names each row, column and file."""


def joined(rows: list[dict[str, Any]], path: Path, join: JoinSpec, root: Path) -> list[dict[str, Any]]:
    """``rows`` of the table at ``path`` with the columns of ``join``'s table added by key (a row's own cells
    win); every row must find its key there."""
    other_path = Path(join.path).expanduser()
    other_path = other_path if other_path.is_absolute() else root / other_path
    other = read_rows(other_path, join.format, join.column_names)
    check_columns(rows, {join.key: "join key"}, path)
    check_columns(other, {join.key: "join key"}, other_path)
    by_key = {str(row[join.key]): row for row in other}
    unmatched = [i for i, row in enumerate(rows, start=1) if str(row[join.key]) not in by_key]
    if unmatched:
        raise ManifestError(f"{path}: {len(unmatched)} rows have no {join.key!r} in {other_path} (rows "
                            f"{', '.join(map(str, unmatched[:10]))})")
    return [by_key[str(row[join.key])] | row for row in rows]
