"""How the decoded store writes and reads its files, side by side in one run (why ``crossdistill.data.store_io``
writes aligned shards straight to the disk and ``stored_rows.read_rows`` reads rows with ``pread``).

Writes: two processes at once each write 10 blocks of 32 MB (a shard of 1,024 one-second 16-bit clips) to their
own places in one freshly allocated file, through the page cache and with ``O_DIRECT``; the slower process's
wall time and the kernel CPU of each, then the sync that puts the file on disk. The pause before each round lets
freed memory go back to the host as it does between builds on a VM. Cold reads: 40 random batches of 128 rows of
a store-shaped file pair (3x64x64 uint8 pictures and 16,000-sample int16 clips, 16k rows), each way in a fresh
process after dropping the page cache (root): the time, and what was read from the disk (/proc/vmstat pgpgin).
Rounds alternate; medians are reported.

Writes ``benchmarks/results/store_io.json``.
    python benchmarks/store_io.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BLOCK, BLOCKS = 1024 * 32000, 10  # bytes a block, blocks a process
ROWS, BATCHES, BATCH = 16000, 40, 128
SHAPES = {"image": ((3, 64, 64), np.uint8), "audio": ((16000,), np.int16)}


def write_blocks(path: str, slot: int, direct: bool) -> tuple[float, float]:
    """(wall s, kernel CPU s) of writing this process's blocks."""
    from crossdistill.data.store_io import aligned_zeros, write_rows

    block = aligned_zeros((BLOCK,), np.dtype(np.uint8))
    block[:] = np.random.default_rng(slot).integers(0, 255, BLOCK, dtype=np.uint8)
    before, start = resource.getrusage(resource.RUSAGE_SELF).ru_stime, time.perf_counter()
    for i in range(BLOCKS):
        offset = (slot * BLOCKS + i) * BLOCK
        if direct:
            write_rows(Path(path), offset, block)
        else:
            with open(path, "r+b") as handle:
                handle.seek(offset)
                handle.write(block)
    return time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_stime - before


def one_write_round(pool: ProcessPoolExecutor, folder: Path, direct: bool) -> dict:
    path = folder / "one_file.bin"
    path.unlink(missing_ok=True)
    with path.open("wb") as handle:
        handle.truncate(2 * BLOCKS * BLOCK)
        os.posix_fallocate(handle.fileno(), 0, 2 * BLOCKS * BLOCK)
    os.sync()
    time.sleep(3)
    done = list(pool.map(write_blocks, [str(path)] * 2, [0, 1], [direct] * 2))
    start = time.perf_counter()
    os.sync()
    return {"seconds": max(wall for wall, _ in done), "kernel_cpu_seconds": [cpu for _, cpu in done],
            "sync_seconds": time.perf_counter() - start}


COLD_READ = f"""
import os, sys, time
import numpy as np
from crossdistill.data.stored_rows import read_rows
folder, how = sys.argv[1], sys.argv[2]
os.sync()
open("/proc/sys/vm/drop_caches", "w").write("1\\n")
arrays = [np.load(os.path.join(folder, name), mmap_mode="r") for name in ("image.npy", "audio.npy")]
rng = np.random.default_rng(int(sys.argv[3]))
paged = lambda: int(open("/proc/vmstat").read().split("pgpgin ")[1].split()[0])  # KB read from disk
before, start = paged(), time.perf_counter()
for _ in range({BATCHES}):
    rows = np.sort(rng.choice(len(arrays[0]), {BATCH}, replace=False))
    for array in arrays:
        got = np.array(array[rows]) if how == "memmap" else read_rows(array, rows)
print(time.perf_counter() - start, (paged() - before) / 1024)
"""


def make_store_files(folder: Path) -> float:
    """The store-shaped files (random rows); returns the MB the batches' rows take."""
    from crossdistill.data.store_io import new_rows_file

    rng = np.random.default_rng(0)
    for name, (shape, dtype) in SHAPES.items():
        path = folder / f"{name}.npy"
        new_rows_file(path, np.dtype(dtype), (ROWS, *shape))
        mapped = np.load(path, mmap_mode="r+")
        for first in range(0, ROWS, 1024):
            mapped[first : first + 1024] = rng.integers(0, 120, size=mapped[first : first + 1024].shape, dtype=dtype)
        mapped.flush()
        del mapped
    row = sum(int(np.prod(shape)) * np.dtype(dtype).itemsize for shape, dtype in SHAPES.values())
    return BATCHES * BATCH * row / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "store_io.json")
    args = parser.parse_args()
    writes: dict[str, list[dict]] = {"page_cache": [], "direct": []}
    reads: dict[str, list[list[float]]] = {"memmap": [], "pread": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
            for _ in range(args.rounds):
                for way in writes:
                    writes[way].append(one_write_round(pool, folder, way == "direct"))
        (folder / "one_file.bin").unlink()
        rows_mb = make_store_files(folder)
        cold = os.geteuid() == 0
        for seed in range(args.rounds if cold else 0):
            for way in reads:
                out = subprocess.run([sys.executable, "-c", COLD_READ, str(folder), way, str(seed)], check=True,
                                     capture_output=True, text=True, cwd=ROOT).stdout.split()
                reads[way].append([float(x) for x in out])

    def median(runs: list, key) -> float:
        return round(statistics.median(key(run) for run in runs), 2)

    from crossdistill.rundir import stamp

    result = {"stamp": stamp(__doc__).model_dump(), "rounds": args.rounds,
              "writes": {way: {"seconds": median(runs, lambda r: r["seconds"]),
                               "kernel_cpu_seconds": median(runs, lambda r: max(r["kernel_cpu_seconds"])),
                               "sync_seconds": median(runs, lambda r: r["sync_seconds"]), "rounds": runs}
                         for way, runs in writes.items()},
              "cold_reads": ({way: {"seconds": median(runs, lambda r: r[0]), "disk_mb": median(runs, lambda r: r[1]),
                                    "rounds": runs} for way, runs in reads.items()} | {"rows_mb": round(rows_mb, 1)}
                             if cold else {"not_run": "dropping the page cache needs root"})}
    cached, direct = result["writes"]["page_cache"], result["writes"]["direct"]
    print(f"two processes writing one file: through the page cache {cached['seconds']} s "
          f"({cached['kernel_cpu_seconds']} s kernel CPU), direct {direct['seconds']} s "
          f"({direct['kernel_cpu_seconds']} s): {cached['seconds'] / direct['seconds']:.1f}x")
    if cold:
        got = result["cold_reads"]
        print(f"cold random batches: memory map {got['memmap']['seconds']} s, {got['memmap']['disk_mb']} MB from disk; "
              f"pread {got['pread']['seconds']} s, {got['pread']['disk_mb']} MB (the rows: {got['rows_mb']} MB)")
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
