"""``manifest``: any paired multimodal data set described by a table (CSV, JSONL or Parquet), one row per sample.

A small config maps columns to modalities: image files, audio files, free text, numeric and categorical
columns (tabular), pre-extracted feature vectors (``.npy`` paths or list columns), and an optional label.
Every row is checked before anything trains: a bad cell stops the run with its row number, column and file, or,
with ``skip_bad_rows``, the row is dropped and counted in the log. Nothing on disk is modified. Decoded files go
to the decoded store (``crossdistill.data.store``, under ``$CROSSDISTILL_CACHE/store``) keyed by the manifest, its
options and every named file's size and time, so later runs decode nothing. Splits come from a column, or seeded
stratified ratios, optionally keeping groups (speaker, patient) within one split. Statistics (image and feature
normalisation, tabular standardisation, text vocabulary, categorical levels) are fitted on the training split only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from crossdistill.config import ConfigError
from crossdistill.data.batch import DataInfo, FoldData, ModalitySpec, SplitData
from crossdistill.data.column_serving import served_state
from crossdistill.data.columns import COLUMN_KINDS
from crossdistill.data.hf import source_identity
from crossdistill.data.manifest_options import ManifestOptions, ModalityColumns
from crossdistill.data.manifest_splits import SPLITS, assign_splits
from crossdistill.data.row_decoding import decode_chunk
from crossdistill.data.rows import Inputs, TransformedRows, digest_bytes, select_rows
from crossdistill.data.sources import cache_root, stamp_of
from crossdistill.data.splits import groups_by_split
from crossdistill.data.store import open_store
from crossdistill.data.stored_rows import Rows, fits_in_memory
from crossdistill.data.table import ManifestError, check_columns, joined, read_rows

if TYPE_CHECKING:
    from crossdistill.tasks import Task

log = logging.getLogger("crossdistill")


@dataclass(frozen=True)
class DecodedColumn:
    """A decoded modality of the kept rows: its values (on disk), which rows have it, what its decoding adds to the
    state (e.g. the pretrained model's size), and the store it is in."""

    values: Rows  # (K, ...)
    present: np.ndarray  # (K,) bool
    extra: dict[str, Any]
    identity: str

    def concat(self, other: DecodedColumn) -> DecodedColumn:
        return DecodedColumn(self.values.concat(other.values), np.concatenate([self.present, other.present]),
                             self.extra, f"{self.identity}+{other.identity}")


def _stamp_of_file_named(base: str, value: Any) -> str | None:
    """``file_stamp`` of the file a cell names, if it names one (a list or a long string names none): one ``stat``
    a cell, with no Path objects, since a million-row table pays it at every run."""
    if not isinstance(value, str) or not value.strip() or len(value) > 1024:
        return None
    try:
        found = os.stat(os.path.join(base, value))
    except (OSError, ValueError):  # (no such file, a name too long for the file system, a NUL in it)
        return None
    return stamp_of(found) if stat.S_ISREG(found.st_mode) else None


class Manifest:
    """The ``manifest`` data set: one fold, or ``repeats`` folds of seeded random splits."""

    name = "manifest"
    licence = "as given by the manifest's owner"
    usage = "your own table: set data.options.path and modalities (docs/guide.md)"
    Options = ManifestOptions
    targets = "given by the task"  # the task parses the label column
    decodes_files = True  # open_dataset hands it data.workers

    def __init__(self, root: Path, options: dict, seed: int, task: Task, workers: int | str = 0,
                 in_memory: bool | str = "auto", full_check: bool = False) -> None:
        self.options, self.seed, self.task, self.workers = self.Options.model_validate(options), seed, task, workers
        self.in_memory, self.full_check = in_memory, full_check
        task.check_label_options(self.options.label_bins)
        if self.options.eval_path:
            self._pair_unlabelled_with_labelled(root)
            return
        path = Path(self.options.path).expanduser()
        self.path = path if path.is_absolute() else root / path
        self.base = self.path.parent
        rows = self._read_table()
        if not rows:
            raise ConfigError(f"{self.path}: the manifest has no rows")
        if self.options.join:
            rows = joined(rows, self.path, self.options.join, root)
        check_columns(rows, self._needed_columns(), self.path)
        rows = [row | {"_row": number} for number, row in enumerate(rows, start=1)]  # the table's row numbers
        if self.options.drop_labels:
            dropped = set(self.options.drop_labels)
            rows = [r for r in rows if str(r[self.options.label]).strip() not in dropped]
        if not rows:
            raise ConfigError(f"{self.path}: no rows left after drop_labels {self.options.drop_labels}")
        self.rows, self.decoded = self._decode(rows)
        self.classes, self.labels = self._labels()
        if self.options.label and (unlabelled := int((self.task.strata(self.labels) < 0).sum())):
            log.info("%s: %d of %d rows have no label (empty, NaN, NA or None): unlabelled rows, used for "
                     "distillation in the training split only", self.path, unlabelled, len(self.rows))
        strata = self.task.strata(self.labels)
        self.assignments = [assign_splits(self.rows, self.options, strata, self.seed + k, self.path)
                            for k in range(self.options.repeats)]  # fold k: the k-th seeded cut
        self.ids = np.asarray([row["_row"] - 1 for row in self.rows])  # 0-based row of the table

    def _read_table(self) -> list[dict[str, Any]]:
        return read_rows(self.path, self.options.format, self.options.column_names)

    def _source_identity(self) -> bytes:
        """What identifies the table's content cheaply (its labels included): part of every cache key."""
        return source_identity(self.path)

    def _pair_unlabelled_with_labelled(self, root: Path) -> None:
        """Supervision transfer (Gupta et al., CVPR 2016): unlabelled pairs to train on, a labelled manifest to
        validate and test on."""
        opts = self.options.model_dump()
        pairs = Manifest(root, {**opts, "eval_path": None, "label": None, "split_column": None,
                                "group_column": None, "drop_labels": []}, self.seed, self.task, self.workers,
                         self.in_memory, self.full_check)
        labelled = Manifest(root, {**opts, "eval_path": None, "path": self.options.eval_path,
                                   "ratios": (0.0, *self.options.ratios[1:])}, self.seed, self.task, self.workers,
                            self.in_memory, self.full_check)
        self.path, self.base = pairs.path, pairs.base
        self.rows = pairs.rows + labelled.rows
        self.decoded = {k: v.concat(labelled.decoded[k]) for k, v in pairs.decoded.items()}
        self.classes = labelled.classes
        self.labels = np.concatenate([pairs.labels, labelled.labels])
        self.assignments = [np.concatenate([pairs.assignment, labelled.assignment])]
        self.ids = np.concatenate([pairs.ids, labelled.ids + pairs.ids.max() + 1])  # unique across both tables

    # ---- reading and checking ---------------------------------------------------------------------------------
    def _needed_columns(self) -> dict[str, str]:
        needed = {c: f"modality {m}" for m, spec in self.options.modalities.items() for c in spec.columns()}
        for column, use in ((self.options.label, "label"), (self.options.split_column, "split"),
                            (self.options.group_column, "group")):
            if column:
                needed[column] = use
        return needed

    def _decode(self, rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, DecodedColumn]]:
        """Every row checked and its files decoded into the decoded store (once: later runs open it); the rows
        that can be used and their decoded columns, still on disk."""
        decoded_kinds = {m: s for m, s in self.options.modalities.items() if COLUMN_KINDS.get(s.kind).decoded}
        folder = cache_root() / "store" / f"manifest-{self._content_key(rows, decoded_kinds)}"
        label_is_number = bool(self.options.label) and self.task.label_is_number(self.options.label_bins)
        decode = partial(decode_chunk, options=self.options, base=self.base, label_is_number=label_is_number)
        store = open_store(folder, rows, decoded_kinds, decode, str(self.path), self.workers, self.full_check)
        self._report(store.problems, len(rows))
        kept = np.flatnonzero(store.ok)
        columns = {m: DecodedColumn(Rows.of(store.values(m), kept, store.scale(m)), store.present(m)[kept],
                                    store.extra(m), folder.name) for m in decoded_kinds}
        return [rows[i] for i in kept], columns

    def _report(self, problems: list[str], total: int) -> None:
        if not problems:
            return
        if not self.options.skip_bad_rows:
            shown = "\n  ".join(problems[:10])
            more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
            raise ManifestError(f"{self.path}: {len(problems)} of {total} rows cannot be used:\n  {shown}{more}\n"
                                "Fix them, or pass --skip-bad-rows to drop them.")
        log.warning("%s: skipped %d of %d rows that cannot be used (first: %s)", self.path, len(problems), total,
                    problems[0])
        if len(problems) == total:
            raise ManifestError(f"{self.path}: every row is bad; first: {problems[0]}")

    def _content_key(self, rows: list[dict[str, Any]], decoded: dict[str, ModalityColumns]) -> str:
        """The manifest's bytes, the options and the identity (size, modification time) of every file the decoded
        columns name: an edited file is decoded again, and no run re-reads every file to find out."""
        digest = hashlib.sha256(self._source_identity())
        digest.update(self.options.model_dump_json().encode())
        for spec in decoded.values():
            base, names_files = str(self.base / spec.folder), COLUMN_KINDS.get(spec.kind).names_files
            for row in rows:
                value = row[spec.column]
                stamp = _stamp_of_file_named(base, value) if names_files else None
                if stamp is not None:
                    digest.update(stamp.encode())
                elif isinstance(value, str | int | float):  # (other cells, such as stored bytes, are in the source)
                    digest.update(repr(value).encode())
        return digest.hexdigest()[:24]

    # ---- labels and splits ------------------------------------------------------------------------------------
    def _labels(self) -> tuple[list[str], np.ndarray]:
        opts = self.options
        if not opts.label:  # unlabelled pairs (only inside supervision transfer)
            return [], self.task.unlabelled(len(self.rows))
        return self.task.parse_labels([row[opts.label] for row in self.rows], opts.label_bins)

    @property
    def num_folds(self) -> int:
        return len(self.assignments)

    @property
    def assignment(self) -> np.ndarray:
        """Fold 0's split id of every kept row."""
        return self.assignments[0]

    def split_groups(self, fold: int = 0) -> dict[str, list[str]]:
        """With ``group_column``: which groups each split holds (log, data_info.json, report)."""
        if not self.options.group_column:
            return {}
        return groups_by_split(np.asarray([str(row[self.options.group_column]) for row in self.rows]),
                               self.assignments[fold], SPLITS)

    # ---- tensors ----------------------------------------------------------------------------------------------
    def fold(self, fold: int) -> FoldData:
        if not 0 <= fold < self.num_folds:
            raise ValueError(f"{self.name}: fold {fold} out of range 0..{self.num_folds - 1}")
        if not self.options.label:
            raise ConfigError(f"{self.path}: no `label` column: name one, or give `eval_path` (a labelled manifest "
                              "for validation and test) to train on these unlabelled pairs")
        assignment = self.assignments[fold]
        train = assignment == 0
        inputs, specs = {}, {}
        for modality, spec in self.options.modalities.items():
            inputs[modality], specs[modality] = self._modality(spec, modality, train)
            if spec.optional:  # (N,) bool, read by the models' masked fusion
                inputs[f"{modality}.present"] = torch.from_numpy(self._present(spec, modality))
        targets, scale = self.task.fit_targets(self.labels, train)
        splits, digest = {}, hashlib.sha256(self._source_identity() + self.options.model_dump_json().encode())
        labelled = self.task.strata(self.labels) >= 0
        for split_id, split in enumerate(SPLITS):
            rows = np.flatnonzero(assignment == split_id)
            if split != "train" and not labelled[rows].all():  # (nothing to score them against)
                log.info("%s: %d unlabelled rows of the %s split left out", self.path, int((~labelled[rows]).sum()),
                         split)
                rows = rows[labelled[rows]]
            if rows.size == 0:
                raise ManifestError(f"{self.path}: the {split} split is empty")
            groups = [str(self.rows[r][self.options.group_column]) for r in rows] if self.options.group_column else []
            manifest_rows = torch.from_numpy(self.ids[rows])
            splits[split] = SplitData({m: select_rows(t, rows) for m, t in inputs.items()},
                                      torch.from_numpy(targets[rows]), manifest_rows, groups)
            digest.update(rows.tobytes() + self.ids[rows].tobytes())  # which samples, by their ids
        for tensor in inputs.values():
            digest.update(digest_bytes(tensor))
        info = DataInfo({k: len(v) for k, v in splits.items()}, self.task.num_classes(self.classes), specs,
                        self.task, self.classes, scale)
        named = self.split_groups(fold)
        description = f"{self.path.name}: {len(self.rows)} rows" + "".join(
            f"; {split} {self.options.group_column}: {', '.join(named[split])}" for split in ("val", "test") if named)
        if named:
            log.info("%s: groups by split: %s", self.path, description.split("; ", 1)[1])
        return FoldData(fold, splits, info, description, digest.hexdigest()[:20])

    def _modality(self, spec: ModalityColumns, modality: str, train: np.ndarray) -> tuple[Inputs, ModalitySpec]:
        """The modality's inputs for every row and its spec; the column kind's state (fitted on the training rows
        that have the modality) is the spec's meta, so serving preprocesses new rows the same way. Decoded
        columns are read into memory when they fit (``data.in_memory``), else transformed a batch at a time."""
        kind = COLUMN_KINDS.get(spec.kind)
        if not kind.decoded:
            values, present = kind.values(spec, self.rows), kind.present(spec, self.rows)
            state = kind.fit(spec, values, train & present, modality, {})
            tensor = kind.transform(spec, values, state)
            return tensor, ModalitySpec(tuple(tensor.shape[1:]), kind.dtype, served_state(spec, state))
        column = self.decoded[modality]
        held = self.in_memory is True or (self.in_memory == "auto" and fits_in_memory(column.values.nbytes))
        values = column.values.read() if held else column.values
        state = kind.fit(spec, values, train & column.present, modality, column.extra)
        if held:
            tensor = kind.transform(spec, values, state)
            tensor[torch.from_numpy(~column.present)] = 0  # missing rows stay zero (and are masked by the models)
            return tensor, ModalitySpec(tuple(tensor.shape[1:]), kind.dtype, served_state(spec, state))
        one = kind.transform(spec, column.values.read(np.arange(1)), state)  # (the transformed shape)
        view = TransformedRows(column.values, column.present, partial(kind.transform, spec, state=state),
                               tuple(one.shape[1:]), one.dtype, f"{column.identity}:{json.dumps(state)}")
        return view, ModalitySpec(view.sample_shape, kind.dtype, served_state(spec, state))

    def _present(self, spec: ModalityColumns, modality: str) -> np.ndarray:
        kind = COLUMN_KINDS.get(spec.kind)
        return self.decoded[modality].present if kind.decoded else kind.present(spec, self.rows)

    def describe(self) -> dict:
        sizes = {split: int((self.assignment == i).sum()) for i, split in enumerate(SPLITS)}
        info = self.fold(0).info
        return {"name": self.name, "modalities": {k: list(v.shape) for k, v in info.modalities.items()},
                "sizes (fold 0)": sizes, "folds": self.num_folds, "licence": self.licence}

