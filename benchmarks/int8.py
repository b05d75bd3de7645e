"""int8 vs float32 on the demo student (configs/av_digits/demo.yaml): size on disk, CPU latency at batch 1 and
64, and test accuracy, on every leave-one-speaker-out fold, side by side in one run.

Trains the quick demo (six folds, one seed; or uses ``--run`` a finished demo run directory), exports each fold's
distilled student to ONNX with ``--quantize int8`` (static, calibrated on 256 training rows of its fold) and
writes benchmarks/results/int8.json. The issue's goal: at least 3x smaller on disk, at most 1 accuracy point
lost; latency is measured, not promised (onnxruntime, one thread, the median of repeated calls).

    python benchmarks/int8.py [--run RUN_DIR] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

from crossdistill import config, pipeline  # noqa: E402
from crossdistill.export import export  # noqa: E402
from crossdistill.rundir import stamp  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "int8.json"
CONFIG = ROOT / "configs" / "av_digits" / "demo.yaml"
GOALS = {"size_ratio_at_least": 3.0, "accuracy_points_lost_at_most": 1.0}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", type=Path, help="a finished quick demo run (default: train one now)")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    exp = config.load(CONFIG)
    run_dir = args.run or pipeline.run(exp, Path(tempfile.mkdtemp(prefix="int8-")), jobs=args.jobs)
    folds = []
    for fold in exp.data.fold_ids:
        written = export(run_dir, ["onnx"], "distilled", fold=fold, seed=exp.seeds[0], quantize="int8",
                         max_drop=100.0)  # (measured here, not refused)
        int8 = written["int8"]
        folds.append({"fold": fold, "test_rows": int8["test_rows"], "mode": int8["mode"],
                      **{f"{g}_{k}": int8[g][k] for g in ("fp32", "int8")
                         for k in ("size_bytes", "weights_bytes", "accuracy %", "latency_ms_batch1",
                                   "latency_ms_batch64")}})
        shutil.rmtree(Path(run_dir) / "export")
    lost = [f["fp32_accuracy %"] - f["int8_accuracy %"] for f in folds]
    median = lambda key: float(np.median([f[key] for f in folds]))  # noqa: E731
    summary = {
        "size_ratio": folds[0]["fp32_size_bytes"] / folds[0]["int8_size_bytes"],
        "weights_ratio": folds[0]["fp32_weights_bytes"] / folds[0]["int8_weights_bytes"],
        "fp32_size_kb": folds[0]["fp32_size_bytes"] / 1024, "int8_size_kb": folds[0]["int8_size_bytes"] / 1024,
        "fp32_accuracy": float(np.mean([f["fp32_accuracy %"] for f in folds])),
        "int8_accuracy": float(np.mean([f["int8_accuracy %"] for f in folds])),
        "points_lost_mean": float(np.mean(lost)), "points_lost_worst_fold": float(np.max(lost)),
        "latency_ratio_batch1": median("int8_latency_ms_batch1") / median("fp32_latency_ms_batch1"),
        "latency_ratio_batch64": median("int8_latency_ms_batch64") / median("fp32_latency_ms_batch64"),
        **{f"{g}_latency_ms_batch{b}": median(f"{g}_latency_ms_batch{b}") for g in ("fp32", "int8") for b in (1, 64)},
    }
    summary["goals_met"] = {"size": summary["size_ratio"] >= GOALS["size_ratio_at_least"],
                            "accuracy": summary["points_lost_worst_fold"] <= GOALS["accuracy_points_lost_at_most"]}
    result = {"stamp": stamp(config.dump(exp)).model_dump(), "config": str(CONFIG.relative_to(ROOT)),
              "goals": GOALS, "summary": summary, "folds": folds}
    OUT.write_text(json.dumps(result, indent=1))
    print(json.dumps(summary, indent=1))
    print(f"written: {OUT}")


if __name__ == "__main__":
    main()
