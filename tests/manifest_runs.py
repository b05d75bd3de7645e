"""Small manifest runs the tests build on real rows: a table written from rows, and a run config over it."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any


def write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str] | None = None) -> Path:
    """``rows`` (only ``columns``, default every key of the first row) as a CSV file with a header."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns or list(rows[0]))
        writer.writeheader()
        writer.writerows(rows if columns is None else ({c: row[c] for c in columns} for row in rows))
    return path


def manifest_run(table: Path, modalities: dict[str, dict], **settings: Any) -> dict[str, Any]:
    """A run config over ``table`` (label ``category``, a 60/20/20 split, one seed, CE + KD, two epochs); the
    ``settings`` (teacher, student, ...) complete or replace its sections."""
    return {"data": {"dataset": "manifest", "options": {"path": str(table), "label": "category",
                                                        "ratios": [0.6, 0.2, 0.2], "modalities": modalities}},
            "seeds": [0], "distill": {"terms": [{"loss": "ce"}, {"loss": "kd"}]},
            "train": {"epochs": 2, "progress": False}, "evaluate": {"latency_repeats": 2}, **settings}
