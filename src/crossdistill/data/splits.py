"""Seeded, stratified splitting and subsetting; pairing of two modalities by label."""

from __future__ import annotations

import numpy as np

from crossdistill.config import ConfigError


def strata(labels: np.ndarray, bins: int = 10) -> np.ndarray:
    """Stratum of each row: its class, or for real-valued targets (regression) its decile of the labelled rows'
    values, so that splits and label budgets cover the whole range of the target. Unlabelled rows (class -1,
    NaN) get -1."""
    if not np.issubdtype(labels.dtype, np.floating):
        return labels
    known = ~np.isnan(labels)
    out = np.full(labels.size, -1, dtype=np.int64)
    if known.any():
        edges = np.quantile(labels[known], np.linspace(0, 1, bins + 1)[1:-1])
        out[known] = np.searchsorted(edges, labels[known], side="right")
    return out


def stratified_fractions(labels: np.ndarray, fractions: list[float], seed: int) -> list[np.ndarray]:
    """Split row ids into len(fractions) parts, each class (or decile of a real target) cut in the same
    proportions (seeded)."""
    labels = strata(labels)
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    bounds = np.cumsum(fractions) / np.sum(fractions)
    for cls in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == cls))
        cuts = np.round(bounds * rows.size).astype(int)
        for part, (lo, hi) in enumerate(zip(np.r_[0, cuts[:-1]], cuts, strict=True)):
            parts[part].append(rows[lo:hi])
    return [np.sort(np.concatenate(p)) for p in parts]


def group_fractions(groups: np.ndarray, fractions: list[float], seed: int) -> np.ndarray:
    """Part id (0, 1, 2) of every row, whole groups (speakers, patients) to a part, in about these fractions of
    the groups (seeded; at least one group per part)."""
    unique = np.unique(groups)
    order = np.random.default_rng(seed).permutation(unique)
    cuts = np.maximum(1, np.round(np.cumsum(fractions[:2]) / sum(fractions) * unique.size)).astype(int)
    cuts[1] = max(cuts[1], cuts[0] + 1)
    assignment = np.zeros(groups.size, dtype=np.int64)
    for part, members in enumerate(np.split(order, cuts)):
        assignment[np.isin(groups, members)] = part
    return assignment


def named_groups(groups: np.ndarray, val: list[str] | None, test: list[str] | None, where: str) -> np.ndarray:
    """Part id (0 train, 1 val, 2 test) of every row from the groups named for validation and test; every other
    group trains. Unknown or doubly named groups are refused, naming ``where`` the groups come from."""
    if val is None or test is None:
        raise ConfigError("data.options: give both val_groups and test_groups (the other groups train)")
    present = set(groups.tolist())
    for key, named in (("val_groups", val), ("test_groups", test)):
        unknown = sorted(set(named) - present)
        if unknown:
            raise ConfigError(f"data.options.{key}: no group {', '.join(map(repr, unknown))} in {where} (groups: "
                              f"{', '.join(sorted(present)[:20])})")
    if set(val) & set(test):
        raise ConfigError("data.options: a group cannot be in both val_groups and test_groups")
    return np.where(np.isin(groups, test), 2, np.where(np.isin(groups, val), 1, 0))


def groups_by_split(groups: np.ndarray, assignment: np.ndarray, names: tuple[str, ...]) -> dict[str, list[str]]:
    """The sorted groups of each part (``names[i]`` for part id i)."""
    return {name: sorted(set(groups[assignment == i].tolist())) for i, name in enumerate(names)}


def label_budget_mask(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of the samples whose label may be used: ``fraction`` of each class, at least one per class
    when ``fraction > 0`` (a budget that drops a class entirely would not be a budget but another task).
    Rows without a label (class -1 or NaN: unlabelled pairs) are never in it; real-valued targets are
    stratified by decile."""
    labels = strata(labels)
    mask = np.zeros(labels.size, dtype=bool)
    if fraction <= 0:
        return mask
    rng = np.random.default_rng(seed)
    for cls in np.unique(labels[labels >= 0]):
        rows = rng.permutation(np.flatnonzero(labels == cls))
        take = max(1, int(round(fraction * rows.size)))
        mask[rows[:take]] = True
    return mask


def pair_by_label(clip_labels: np.ndarray, pool_labels: np.ndarray, seed: int) -> np.ndarray:
    """For each clip, a pool row of the same label: drawn without replacement, cycling when the pool of that
    label is exhausted (the AV-MNIST construction). Deterministic given the seed."""
    rng = np.random.default_rng(seed)
    chosen = np.empty(clip_labels.size, dtype=np.int64)
    for cls in np.unique(clip_labels):
        clips = np.flatnonzero(clip_labels == cls)
        pool = np.flatnonzero(pool_labels == cls)
        if pool.size == 0:
            raise ValueError(f"no image of class {cls} to pair with {clips.size} clips")
        order = rng.permutation(pool)
        chosen[clips] = order[np.arange(clips.size) % order.size]
    return chosen
