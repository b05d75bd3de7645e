"""Read a manifest table (CSV, JSONL or Parquet) into rows of plain Python values, each with its row number."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crossdistill.config import ConfigError
from crossdistill.data.manifest_options import JoinSpec
from crossdistill.errors import CrossdistillError
from crossdistill.serve import table as serve_table


def read_rows(path: Path, file_format: str | None = None, names: list[str] | None = None) -> list[dict[str, Any]]:
    """Rows in file order (``serve.table.read_rows``), a table that cannot be read as a ``ConfigError``."""
    try:
        return serve_table.read_rows(path, file_format, names)
    except serve_table.TableError as why:
        raise ConfigError(str(why)) from None


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
