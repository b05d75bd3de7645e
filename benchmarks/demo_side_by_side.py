"""The av-digits demo must not get slower: its wall time with the code of an earlier commit and with this one,
alternating, side by side in one benchmark (each in its own git worktree and cache, the preprocessing cache warmed
first, one process with 2 threads).

The config is the demo's quick rows (configs/av_digits/demo.yaml without its ``--full`` settings, which older
code does not know): teacher, the student alone and distilled, six folds, one seed. The default base is the
commit before the decoded store (issue 13), so the ratio says what the data-larger-than-memory work (and
everything since) cost the in-memory path. Writes benchmarks/results/demo_side_by_side.json.

    python benchmarks/demo_side_by_side.py [--base COMMIT] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BASE = "b8b3ae8"  # the commit before the decoded store
TARGET = 1.05  # the new code's wall time over the old one's, at most


def shared_config(folder: Path) -> Path:
    """The demo's quick rows in keys every version knows."""
    demo = yaml.safe_load((ROOT / "configs" / "av_digits" / "demo.yaml").read_text())
    for key in ("full_seeds", "variants"):
        demo.pop(key, None)
    demo["name"] = "demo"
    demo.setdefault("train", {})["progress"] = False
    path = folder / "demo_quick.yaml"
    path.write_text(yaml.safe_dump(demo, sort_keys=False))
    return path


def crossdistill(tree: Path, cache: Path, *args: str) -> tuple[float, int]:
    env = {**os.environ, "CROSSDISTILL_CACHE": str(cache), "PYTHONPATH": str(tree / "src"), "OMP_NUM_THREADS": "2",
           "OMP_WAIT_POLICY": "PASSIVE"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "crossdistill", *args], cwd=tree, env=env, capture_output=True)
    return time.perf_counter() - start, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default=BASE)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    work = Path(tempfile.mkdtemp(prefix="side-by-side-"))
    trees = {"base": work / "base", "head": work / "head"}
    try:
        for name, commit in (("base", args.base), ("head", head)):
            subprocess.run(["git", "worktree", "add", "-q", "--detach", str(trees[name]), commit], cwd=ROOT,
                           check=True)
        config = shared_config(work)
        for name, tree in trees.items():  # the FSDD spectrograms, cached once per tree before any timing
            crossdistill(tree, work / f"cache-{name}", "check", str(config))
        seconds: dict[str, list[float]] = {"base": [], "head": []}
        for _ in range(args.rounds):
            for name, tree in trees.items():
                wall, code = crossdistill(tree, work / f"cache-{name}", "run", str(config), "--out",
                                          str(work / f"out-{name}"))
                if code:
                    raise SystemExit(f"the {name} run failed (exit {code})")
                shutil.rmtree(work / f"out-{name}")
                seconds[name].append(round(wall, 1))
    finally:
        for tree in trees.values():
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    ratio = statistics.median(seconds["head"]) / statistics.median(seconds["base"])
    from crossdistill import config as configs
    from crossdistill.rundir import stamp

    exp = configs.load(ROOT / "configs" / "av_digits" / "demo.yaml")
    payload = {"stamp": stamp(configs.dump(exp)).model_dump(), "base_commit": args.base, "rounds": args.rounds,
               "seconds": seconds, "head_over_base": round(ratio, 3), "target": TARGET, "met": ratio <= TARGET}
    out = ROOT / "benchmarks" / "results" / "demo_side_by_side.json"
    out.write_text(json.dumps(payload, indent=1) + "\n")
    print(json.dumps(payload, indent=1))


if __name__ == "__main__":
    main()
