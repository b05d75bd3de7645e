"""How much a second decoding process can give on this machine, with no store and no disk in the way: the rows of
``benchmarks/scale.py`` (a 64x64 PNG, a 1 s 16 kHz wav and a text each) decoded by the store builder's own row
decoder (``decode_chunk``: every file read and decoded, nothing written), all rows in one worker process against
half of them in each of two, the worker processes started and warmed before the clock starts (the decoded arrays
stay in the workers: nothing is sent back). Alternating rounds,
side by side in one run. This bounds the store build's two-worker speed-up (docs/performance.md).

Writes ``benchmarks/results/decode_scaling.json``.
    python benchmarks/decode_scaling.py [--rows 8000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from multiprocessing import get_context
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "decode_scaling.json"
CHUNK = 512


def _warm() -> int:
    import crossdistill.data.row_decoding  # noqa: F401  (the imports a build worker pays once)

    return os.getpid()


def _decoded_count(decode: partial, rows: list[dict]) -> int:
    """How many of ``rows`` decode (the arrays stay in the worker: nothing decoded is sent back)."""
    return sum(problem is None for _, problem in decode(rows))


def timed_decode(rows: list[dict], decode: partial, workers: int) -> float:
    """Seconds to decode every row in ``workers`` warm processes (chunks of CHUNK rows, as shards are)."""
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        for warming in [pool.submit(_warm) for _ in range(4 * workers)]:  # (every process started and imported)
            warming.result()
        start = time.perf_counter()
        chunks = [rows[i : i + CHUNK] for i in range(0, len(rows), CHUNK)]
        assert sum(pool.map(partial(_decoded_count, decode), chunks)) == len(rows)
        return time.perf_counter() - start


def main() -> None:
    import scale

    from crossdistill.data.manifest_options import ManifestOptions
    from crossdistill.data.row_decoding import decode_chunk
    from crossdistill.data.table import read_rows
    from crossdistill.rundir import stamp

    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=8000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        table = scale.make_rows(Path(work) / "rows", args.rows)
        options = ManifestOptions.model_validate({
            "path": str(table), "label": "label", "modalities": {
                "image": {"kind": "image", "column": "image", "size": 64},
                "audio": {"kind": "audio", "column": "audio", "sample_rate": 16000, "seconds": 1.0}}})
        rows = [row | {"_row": i + 1} for i, row in enumerate(read_rows(table))]
        decode = partial(decode_chunk, options=options, base=table.parent, label_is_number=False)
        times: dict[str, list[float]] = {"1": [], "2": []}
        for _ in range(args.rounds):
            for workers in (1, 2):
                times[str(workers)].append(round(timed_decode(rows, decode, workers), 2))
                print(f"{workers} worker(s): {times[str(workers)][-1]} s", flush=True)
    ratios = [round(one / two, 2) for one, two in zip(times["1"], times["2"], strict=True)]
    result = {"stamp": stamp(json.dumps(vars(args))).model_dump(), "rows": args.rows,
              "cpus": len(os.sched_getaffinity(0)), "seconds": times,
              "ratios_1_over_2": ratios, "median_ratio": float(np.median(ratios)), "best_ratio": max(ratios)}
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"two workers over one: {ratios} (median {np.median(ratios):.2f}x, best {max(ratios)}x)")


if __name__ == "__main__":
    main()
