"""What distillation costs per epoch, measured side by side in one run on av-mnist (``configs/av_mnist/kd.yaml``:
an image teacher >= 10x the audio student): (a) the student alone, (b) distillation with the teacher run online,
(c) distillation from the teacher cache, each through the library's own ``fit`` (the same loop, optimiser,
augmentation and validation as ``crossdistill run``), median epoch time over the epochs after the first.

Also: the time to build the teacher cache, the share of step time spent waiting for data (a loader wrapper times
every batch it hands out), that the cache is memory-mapped, and the peak resident memory of a whole
``crossdistill run`` of the config (one seed, a few epochs) in a child process.

Writes ``benchmarks/results/overhead.json``; prints the ratios. Target: (c) / (a) <= 1.10.
    python benchmarks/overhead.py [--epochs 4]
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
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from crossdistill import config  # noqa: E402
from crossdistill.data import open_dataset  # noqa: E402
from crossdistill.data.batch import Batch  # noqa: E402
from crossdistill.data.loader import BatchLoader  # noqa: E402
from crossdistill.data.splits import label_budget_mask  # noqa: E402
from crossdistill.evaluate.efficiency import count_flops, count_params  # noqa: E402
from crossdistill.pipeline import distiller_for, obtain_teacher  # noqa: E402
from crossdistill.plans import (
    experiment_task,  # noqa: E402
    student_plans,  # noqa: E402
)
from crossdistill.rundir import stamp  # noqa: E402
from crossdistill.runtime import seed_everything  # noqa: E402
from crossdistill.train import fit  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "av_mnist" / "kd.yaml"


class TimedLoader(BatchLoader):
    """A BatchLoader that adds up the time spent producing batches (indexing, augmentation)."""

    waited = 0.0

    def __iter__(self) -> Iterator[Batch]:
        batches = super().__iter__()
        while True:
            tic = time.perf_counter()
            try:
                batch = next(batches)
            except StopIteration:
                return
            self.waited += time.perf_counter() - tic
            yield batch


def timed_fit(exp, plan, fold, teachers, epochs: int, out: Path) -> dict:
    """One student trained by ``fit``; per-epoch seconds and the data-wait share."""
    seed_everything(0)
    labeled = torch.from_numpy(label_budget_mask(fold["train"].target.numpy(), plan.labels, exp.data.seed))
    cfg = exp.train_for({"epochs": epochs, "patience": None, "progress": False})
    train = TimedLoader(fold["train"], cfg.batch_size, shuffle=True, seed=0, labeled=labeled,
                        augment=exp.data.augment, only_labeled=plan.teacher is None)
    distiller = distiller_for(exp, plan, fold, teachers, torch.arange(8), 0)
    tic = time.perf_counter()
    result = fit(distiller, train, BatchLoader(fold["val"], 256), fold["val"].target, cfg, out,
                 torch.device("cpu"), resume=False)
    total = time.perf_counter() - tic
    seconds = [row["seconds"] for row in result.history]
    return {"epoch_s": statistics.median(seconds[1:]), "data_wait_share": train.waited / total}


def peak_rss_of_a_run(epochs: int) -> float:
    """Peak resident memory (MB) of ``crossdistill run`` on the config, one seed, in a child process."""
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([sys.executable, "-m", "crossdistill", "run", str(CONFIG), "--out", out, "--set", "seeds=[0]",
                        "--set", f"train.epochs={epochs}", "--set", f"teacher.train.epochs={epochs}"],
                       check=True, capture_output=True)
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # kB on Linux


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["CROSSDISTILL_CACHE"] = str(Path(scratch) / "cache")  # a cold cache: its build is timed
        exp = config.load(CONFIG, ["seeds=[0]", f"teacher.train.epochs={args.epochs}"])
        fold = open_dataset(exp.data.dataset, None, exp.data.options, exp.data.seed, experiment_task(exp)).fold(0)
        teacher = obtain_teacher(exp, "teacher", fold, Path(scratch) / "run")
        plans = {p.name: p for p in student_plans(exp)}
        alone = timed_fit(exp, plans["baseline"], fold, {"teacher": teacher}, args.epochs, Path(scratch) / "a")
        online_exp = exp.model_copy(update={"distill": exp.distill.model_copy(update={"cache": False})})
        online = timed_fit(online_exp, plans["distilled"], fold, {"teacher": teacher}, args.epochs,
                           Path(scratch) / "b")
        tic = time.perf_counter()
        distiller = distiller_for(exp, plans["distilled"], fold, {"teacher": teacher}, torch.arange(8), 0)
        build_s = time.perf_counter() - tic  # (the first open builds the cache)
        memory_mapped = all(isinstance(a, np.memmap) for a in distiller.teacher_sources["teacher"].arrays.values())
        cached = timed_fit(exp, plans["distilled"], fold, {"teacher": teacher}, args.epochs, Path(scratch) / "c")
        student = distiller.student
    peak_mb = peak_rss_of_a_run(2)
    payload = {
        "stamp": stamp(config.dump(exp)).model_dump(),
        "data": "av-mnist fold 0 (configs/av_mnist/kd.yaml), training split", "samples": len(fold["train"]),
        "threads": torch.get_num_threads(), "epochs_timed": args.epochs - 1,
        "teacher_params": count_params(teacher), "student_params": count_params(student),
        "teacher_flops": count_flops(teacher, fold.info.modalities),
        "student_flops": count_flops(student, fold.info.modalities),
        "epoch_s": {"a_student_alone": alone["epoch_s"], "b_kd_online": online["epoch_s"],
                    "c_kd_cached": cached["epoch_s"]},
        "online_over_alone": online["epoch_s"] / alone["epoch_s"],
        "cached_over_alone": cached["epoch_s"] / alone["epoch_s"], "target_cached_over_alone": 1.10,
        "cache_build_s": build_s, "cache_memory_mapped": memory_mapped,
        "data_wait_share": {"a": alone["data_wait_share"], "b": online["data_wait_share"],
                            "c": cached["data_wait_share"]},
        "peak_rss_mb_of_a_run": peak_mb,
    }
    (ROOT / "benchmarks" / "results" / "overhead.json").write_text(json.dumps(payload, indent=1) + "\n")
    print(json.dumps(payload, indent=1))
    print(f"(b)/(a) = {payload['online_over_alone']:.2f}, (c)/(a) = {payload['cached_over_alone']:.2f} "
          f"(target <= 1.10), teacher {payload['teacher_params'] / payload['student_params']:.0f}x the student")


if __name__ == "__main__":
    main()
