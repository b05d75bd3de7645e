"""Which on-disk format the decoded store uses: random batches of fixed-shape float32 rows read from a numpy
``.npy`` memory map and from a Hugging Face ``datasets`` Arrow table (``with_format("numpy")``), side by side.

Rows of 3x64x64 float32 (a decoded 64x64 image), random batches of 128, the files freshly written (in the page
cache: the formats' own cost, not the disk's). Writes ``benchmarks/results/store_format.json``; prints ms per row.
    python benchmarks/store_format.py [--rows 8192] [--batches 40]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def per_row_ms(read, rows: int, batches: int, batch: int = 128, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    picks = [np.sort(rng.choice(rows, size=batch, replace=False)) for _ in range(batches)]
    read(picks[0])  # (warm)
    start = time.perf_counter()
    for pick in picks:
        read(pick)
    return (time.perf_counter() - start) * 1000 / (batches * batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=8192)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "store_format.json")
    args = parser.parse_args()
    values = np.random.default_rng(0).normal(size=(args.rows, 3, 64, 64)).astype(np.float32)
    result = {"rows": args.rows, "row_shape": [3, 64, 64], "batch": 128}
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "v.npy", values)
        mapped = np.load(Path(tmp) / "v.npy", mmap_mode="r")
        result["npy_memmap_ms_per_row"] = per_row_ms(lambda rows: np.asarray(mapped[rows]), args.rows, args.batches)
        try:
            import datasets
        except ImportError:
            result["arrow"] = "not measured: `datasets` is not installed (pip install 'crossdistill[hf]')"
        else:
            features = datasets.Features({"x": datasets.Array3D(shape=(3, 64, 64), dtype="float32")})
            table = datasets.Dataset.from_dict({"x": values}, features=features)
            table.save_to_disk(Path(tmp) / "arrow")
            table = datasets.load_from_disk(str(Path(tmp) / "arrow")).with_format("numpy")
            result["arrow_ms_per_row"] = per_row_ms(lambda rows: table[rows]["x"], args.rows, args.batches)
    for key, value in result.items():
        if key.endswith("ms_per_row"):
            result[key] = round(value, 4)
    if "arrow_ms_per_row" in result:
        result["arrow_over_npy"] = round(result["arrow_ms_per_row"] / result["npy_memmap_ms_per_row"], 1)
    from crossdistill.rundir import stamp

    result["stamp"] = stamp(json.dumps({k: result[k] for k in ("rows", "row_shape", "batch")})).model_dump()
    print(json.dumps(result, indent=1))
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
