"""Which split (0 train, 1 val, 2 test) each row of a manifest is in: from a split column, from named groups, or
cut at random (seeded) by stratified ratios or by whole groups. ``repeats`` such random cuts, each with its own
seed, are the manifest's folds: a small data set's verdict then does not rest on one draw of its test set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from crossdistill.data.manifest_options import ManifestOptions
from crossdistill.data.splits import group_fractions, named_groups, stratified_fractions
from crossdistill.data.table import ManifestError

SPLITS = ("train", "val", "test")


def assign_splits(rows: list[dict[str, Any]], options: ManifestOptions, strata: np.ndarray, seed: int, path: Path
                  ) -> np.ndarray:
    """(N,) split id of every row; ``strata`` (N,) the class or target decile of each row (-1: unlabelled), ``seed``
    the cut's (a fold's) seed."""
    if not options.label:
        return np.zeros(len(rows), dtype=np.int64)  # unlabelled pairs: all for training
    if options.split_column:
        names = [str(row[options.split_column]).strip().lower() for row in rows]
        unknown = sorted(set(names) - set(SPLITS))
        if unknown:
            raise ManifestError(f"{path}: column {options.split_column!r} must hold train / val / test, "
                                f"found {', '.join(unknown)}")
        return np.asarray([SPLITS.index(n) for n in names])
    if options.group_column:
        groups = np.asarray([str(row[options.group_column]) for row in rows])
        if np.unique(groups).size < 3:
            raise ManifestError(f"{path}: group column {options.group_column!r} has {np.unique(groups).size} "
                                "groups; group-disjoint splits need at least 3")
        if options.val_groups is not None or options.test_groups is not None:
            return named_groups(groups, options.val_groups, options.test_groups,
                                f"column {options.group_column!r} of {path}")
        return group_fractions(groups, list(options.ratios), seed)
    assignment = np.zeros(len(rows), dtype=np.int64)
    for split, members in enumerate(stratified_fractions(strata, list(options.ratios), seed)):
        assignment[members] = split  # (a zero train ratio, as for a labelled evaluation manifest, gives none)
    assignment[strata < 0] = 0  # unlabelled rows can only serve training
    return assignment
