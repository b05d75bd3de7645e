"""Every row of a table checked and its file cells decoded, in this process or in worker processes (``workers``),
in row order either way, with a progress bar on a terminal. A row that cannot be used is named with its row
number, column, modality and file, whichever process met it."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from functools import partial
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress

from crossdistill.data.columns import COLUMN_KINDS, empty
from crossdistill.data.decoders import BadCell, decode_number
from crossdistill.data.manifest_options import ManifestOptions

AUTO_MIN_ROWS = 5000  # below this, "auto" decodes in this process: starting workers costs more than it saves
CHUNK = 256  # rows a worker decodes per task


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
            return None, f"row {number}, column {column!r} (modality {modality}): {why}"
    label = options.label
    if label and str(row[label]).strip() in ("", "None"):
        return None, f"row {number}, column {label!r} (label): empty"
    if label and label_is_number:
        try:
            decode_number(row[label])
        except BadCell as why:
            return None, f"row {number}, column {label!r} (label): {why}"
    if cells and all(c is None for c in cells.values()) and len(cells) == len(options.modalities):
        return None, f"row {number}: every modality is missing"
    return cells, None


def _decode_chunk(rows: list[dict[str, Any]], options: ManifestOptions, base: Path, label_is_number: bool
                  ) -> list[tuple[dict[str, Any] | None, str | None]]:
    return [decode_row(row, options, base, label_is_number) for row in rows]


def iter_decoded_rows(rows: list[dict[str, Any]], options: ManifestOptions, base: Path, label_is_number: bool,
                      workers: int | str = 0, what: str = "decoding", total: int | None = None
                      ) -> Iterator[tuple[dict[str, Any] | None, str | None]]:
    """``decode_row`` of every row, in row order, as they come; ``workers`` > 0 spreads chunks of rows over that
    many processes (started fresh, so that nothing of this process's threads is inherited), with a bounded number
    of chunks in flight, so that memory holds a few chunks whatever the table's size. ``total``: the table's row
    count (the progress bar's end; a resumed build decodes fewer)."""
    count = resolve_workers(workers, total or len(rows))
    chunks = (rows[i : i + CHUNK] for i in range(0, len(rows), CHUNK))
    work = partial(_decode_chunk, options=options, base=base, label_is_number=label_is_number)
    console = Console(stderr=True)
    with Progress(transient=True, console=console, disable=not console.is_terminal) as bar:
        task = bar.add_task(f"{what} ({count or 'no'} worker processes)", total=total or len(rows),
                            completed=(total or len(rows)) - len(rows))
        if count == 0:
            for chunk in chunks:
                part = work(chunk)
                bar.advance(task, len(part))
                yield from part
            return
        with ProcessPoolExecutor(count, mp_context=get_context("spawn")) as pool:
            pending: deque[Future] = deque()
            for chunk in chunks:
                pending.append(pool.submit(work, chunk))
                if len(pending) >= 2 * count:
                    part = pending.popleft().result()
                    bar.advance(task, len(part))
                    yield from part
            while pending:
                part = pending.popleft().result()
                bar.advance(task, len(part))
                yield from part


def decode_rows(rows: list[dict[str, Any]], options: ManifestOptions, base: Path, label_is_number: bool,
                workers: int | str = 0, what: str = "decoding") -> list[tuple[dict[str, Any] | None, str | None]]:
    """Every row's ``decode_row``, in row order (``iter_decoded_rows`` gathered)."""
    return list(iter_decoded_rows(rows, options, base, label_is_number, workers, what))
