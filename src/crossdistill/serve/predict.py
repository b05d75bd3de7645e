"""The prediction loop shared by both back ends (onnxruntime over an export folder, PyTorch over a run): rows
preprocessed and run in batches with a progress bar, rows that cannot be read named and skipped or stopped at,
outputs read in the label's terms (class and probabilities, or a value in the label's units), written as CSV or
JSONL."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .decode import BadCell
from .inputs import InputRows

Run = Callable[[dict[str, np.ndarray]], np.ndarray]  # model inputs (B, ...) -> outputs (B, K)
Preprocess = Callable[[str, list[Any], Path], np.ndarray]


class BadRow(ValueError):
    """A row that cannot be read (``on_error='stop'``); the message names the row, modality and reason."""


def predict_rows(rows: InputRows, modalities: list[str], preprocess: Preprocess, run: Run, reading: dict[str, Any],
                 batch_size: int = 64, on_error: str = "stop", progress: bool = True
                 ) -> tuple[list[dict[str, Any]], list[str]]:
    """(one record per readable row, a line per skipped row)."""
    if on_error not in ("stop", "skip"):
        raise ValueError(f"on_error must be 'stop' or 'skip', got {on_error!r}")
    records, skipped = [], []
    bar = Progress(len(rows), enabled=progress)
    for start in range(0, len(rows), batch_size):
        batch = rows.take(list(range(start, min(start + batch_size, len(rows)))))
        inputs, kept = _inputs(batch, modalities, preprocess, on_error, skipped)
        if kept:
            outputs = run(inputs)  # (B, K)
            records += [{"id": batch.ids[i], **record} for i, record in zip(kept, read_outputs(outputs, reading),
                                                                             strict=True)]
        bar.advance(len(batch))
    bar.close()
    return records, skipped


def _inputs(batch: InputRows, modalities: list[str], preprocess: Preprocess, on_error: str, skipped: list[str]
            ) -> tuple[dict[str, np.ndarray], list[int]]:
    """The batch's model inputs; a batch with a bad row is redone row by row to name it."""
    try:
        return {m: preprocess(m, batch.cells[m], batch.bases[m]) for m in modalities}, list(range(len(batch)))
    except BadCell:
        pass
    parts: dict[str, list[np.ndarray]] = {m: [] for m in modalities}
    kept = []
    for i in range(len(batch)):
        try:
            row = {m: preprocess(m, batch.cells[m][i : i + 1], batch.bases[m]) for m in modalities}
        except BadCell as why:
            modality = next(m for m in modalities if _fails(preprocess, m, batch, i))
            line = f"row {batch.ids[i]}, {modality}: {why}"
            if on_error == "stop":
                raise BadRow(f"{line} (--on-error skip leaves such rows out)") from None
            skipped.append(line)
            continue
        kept.append(i)
        for m in modalities:
            parts[m].append(row[m])
    return ({m: np.concatenate(p) for m, p in parts.items()} if kept else {}), kept


def _fails(preprocess: Preprocess, modality: str, batch: InputRows, i: int) -> bool:
    try:
        preprocess(modality, batch.cells[modality][i : i + 1], batch.bases[modality])
    except BadCell:
        return True
    return False


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def read_outputs(outputs: np.ndarray, reading: dict[str, Any]) -> list[dict[str, Any]]:
    """Model outputs (B, K) in the label's terms: ``prediction`` (a class name) with ``probability`` and one
    ``p_<class>`` per class, or ``value`` in the label's units (regression)."""
    if "target_mean" in reading:
        values = outputs[:, 0].astype(np.float64) * reading["target_std"] + reading["target_mean"]
        return [{"value": float(v)} for v in values]
    names = reading["class_names"]
    probabilities = softmax(outputs.astype(np.float64))
    return [{"prediction": names[int(p.argmax())], "probability": float(p.max()),
             **{f"p_{name}": round(float(q), 6) for name, q in zip(names, p, strict=True)}} for p in probabilities]


def write_records(records: list[dict[str, Any]], out: Path | None) -> None:
    """CSV (``.csv``, or standard output when ``out`` is None) or JSONL (``.jsonl``)."""
    if out is not None and out.suffix.lower() == ".jsonl":
        out.write_text("".join(json.dumps(r) + "\n" for r in records))
        return
    if out is not None and out.suffix.lower() != ".csv":
        raise ValueError(f"{out}: write predictions to a .csv or .jsonl file")
    handle = out.open("w", newline="") if out is not None else sys.stdout
    writer = csv.DictWriter(handle, fieldnames=list(records[0]) if records else ["id"])
    writer.writeheader()
    writer.writerows(records)
    if out is not None:
        handle.close()


class Progress:
    """A progress bar on standard error: rich's when it is installed, else a plain counter."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.done, self.enabled = total, 0, enabled and total > 0
        self._rich = None
        if self.enabled:
            try:
                from rich.progress import Progress as RichProgress

                self._rich = RichProgress(transient=True)
                self._task = self._rich.add_task("predicting", total=total)
                self._rich.start()
            except ImportError:
                pass

    def advance(self, count: int) -> None:
        self.done += count
        if self._rich is not None:
            self._rich.update(self._task, completed=self.done)
        elif self.enabled:
            print(f"\rpredicting: {self.done}/{self.total} rows", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._rich is not None:
            self._rich.stop()
        elif self.enabled:
            print(file=sys.stderr)
