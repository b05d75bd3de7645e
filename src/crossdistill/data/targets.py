"""A manifest's label column -> targets: class ids (names, numbers, or numbers cut into bins), or real values for
regression, standardised on the training split."""

from __future__ import annotations

from typing import Any

import numpy as np

from crossdistill.serve.decode import decode_number

MISSING = frozenset({"", "nan", "na", "n/a", "none", "null"})  # label cells meaning "no label" (any case)


def missing_label(cell: Any) -> bool:
    """Whether a label cell holds no label (empty, NaN, NA, None, null): the row is unlabelled, never a class."""
    return cell is None or str(cell).strip().lower() in MISSING


def class_labels(values: list[Any]) -> tuple[list[str], np.ndarray]:
    """Class names (in numeric order when every value is a number) and each row's class id (-1: no label)."""
    known = [str(v).strip() for v in values if not missing_label(v)]
    numeric = all(v.lstrip("-").replace(".", "", 1).isdigit() for v in known)
    classes = sorted(set(known), key=(lambda v: float(v)) if numeric else None)
    index = {c: i for i, c in enumerate(classes)}
    return classes, np.asarray([-1 if missing_label(v) else index[str(v).strip()] for v in values], dtype=np.int64)


def binned_labels(cells: list[Any], edges: list[float]) -> tuple[list[str], np.ndarray]:
    """Class i: the value lies in (edge[i-1], edge[i]]; names say so (-1: no label)."""
    values = np.asarray([np.nan if missing_label(cell) else decode_number(cell) for cell in cells])
    names = [f"<= {edges[0]:g}"] + [f"({a:g}, {b:g}]" for a, b in zip(edges, edges[1:], strict=False)] + \
        [f"> {edges[-1]:g}"]
    ids = np.searchsorted(np.asarray(sorted(edges)), values, side="left").astype(np.int64)
    return names, np.where(np.isnan(values), -1, ids)


def regression_values(cells: list[Any]) -> np.ndarray:
    """(N,) float64 targets in the label's own units (NaN: no label)."""
    return np.asarray([np.nan if missing_label(cell) else decode_number(cell) for cell in cells], dtype=np.float64)


def standardised(values: np.ndarray, train: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """Z-scores of regression targets with the mean and std of the labelled training rows (so no statistic of
    validation or test leaks into training); returns them as float32 with (mean, std)."""
    known = values[train & ~np.isnan(values)]
    if known.size < 2:
        raise ValueError(f"regression needs at least 2 labelled training rows to standardise the target, got "
                         f"{known.size}")
    mean, std = float(known.mean()), float(known.std())
    std = std if std > 0 else 1.0
    return ((values - mean) / std).astype(np.float32), (mean, std)
