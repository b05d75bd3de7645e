"""Wall time of the demo (configs/av_digits/demo.yaml) against its 5-minute target on 2 CPU cores.

Runs the whole pipeline in a fresh output folder (the preprocessing cache is warmed first, as on a second run,
and its cold cost is reported separately), then writes benchmarks/results/demo_time.json with the wall time per
stage, the share of the headline rows, and the ratio to the target.

    python benchmarks/demo_time.py [--full] [--jobs 2]

It runs the demo as its README command does: the folds in ``--jobs`` one-thread processes (2 on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from crossdistill import config, pipeline, report  # noqa: E402
from crossdistill.data import open_dataset  # noqa: E402
from crossdistill.plans import experiment_task  # noqa: E402
from crossdistill.rundir import stamp  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = {False: 300.0, True: 1800.0}  # the quick demo: 5 minutes; --full: 30 minutes (on 2 cores)


def fit_seconds(run_dir: Path) -> dict[str, float]:
    """Training seconds per model name, summed over its folds and seeds (from metrics.jsonl)."""
    totals: dict[str, float] = {}
    for path in (run_dir / "models").glob("*/*/metrics.jsonl"):
        seconds = sum(json.loads(line)["seconds"] for line in path.read_text().splitlines())
        totals[path.parents[1].name] = totals.get(path.parents[1].name, 0.0) + seconds
    return totals


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--keep", help="store the run's results.json as benchmarks/results/KEEP")
    args = parser.parse_args()
    exp = config.load(ROOT / "configs/av_digits/demo.yaml", ["train.progress=false"])
    tic = time.perf_counter()
    open_dataset(exp.data.dataset, exp.data.root, exp.data.options, exp.data.seed, experiment_task(exp))
    preprocessing_s = time.perf_counter() - tic
    with tempfile.TemporaryDirectory() as out:
        tic = time.perf_counter()
        run_dir = pipeline.run(exp, Path(out), full=args.full, jobs=args.jobs)
        report.build(run_dir)
        wall_s = time.perf_counter() - tic
        per_model = fit_seconds(run_dir)
        results = json.loads((run_dir / "results.json").read_text())
        if args.keep:  # the run's own stamped results.json, for benchmarks/published.py
            (ROOT / "benchmarks" / "results" / args.keep).write_text(json.dumps(results, indent=1) + "\n")
    headline = sum(per_model.get(n, 0.0) for n in ("teacher", "baseline", "distilled"))  # (summed over jobs)
    payload = {
        "stamp": stamp(config.dump(exp)).model_dump(),
        "config": "configs/av_digits/demo.yaml", "full": args.full, "jobs": args.jobs,
        "threads": torch.get_num_threads(),
        "wall_s": round(wall_s, 1), "target_s": TARGET_S[args.full],
        "wall_over_target": round(wall_s / TARGET_S[args.full], 3),
        "headline_fit_s": round(headline, 1), "fit_s_per_model": {k: round(v, 1) for k, v in per_model.items()},
        "preprocessing_s_first_open": round(preprocessing_s, 1),
        "accuracy": {n: round(m["metrics"]["accuracy"]["mean"], 4) for n, m in results["models"].items()},
    }
    out_path = ROOT / "benchmarks" / "results" / ("demo_time_full.json" if args.full else "demo_time.json")
    out_path.write_text(json.dumps(payload, indent=1) + "\n")
    print(json.dumps(payload, indent=1))
    target = TARGET_S[args.full]
    print(f"demo wall time {wall_s:.0f} s = {wall_s / target:.2f} x the {target:.0f} s target", file=sys.stderr)


if __name__ == "__main__":
    main()
