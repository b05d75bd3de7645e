"""Epoch time of the student alone vs distillation with the teacher online vs from the teacher cache.

Same data (av-digits fold 0, training split), same student, same optimiser, measured side by side in one run;
median of several epochs each. Writes benchmarks/results/cache_overhead.json.

    python benchmarks/cache_overhead.py
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from crossdistill import config  # noqa: E402
from crossdistill.config import TermSpec  # noqa: E402
from crossdistill.data import open_dataset  # noqa: E402
from crossdistill.data.loader import BatchLoader  # noqa: E402
from crossdistill.distill import Distiller, TeacherCache, resolve_terms  # noqa: E402
from crossdistill.evaluate.efficiency import count_flops  # noqa: E402
from crossdistill.models import build_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 5


def epoch_seconds(distiller: Distiller, loader: BatchLoader) -> float:
    optimizer = torch.optim.AdamW(list(distiller.trainable_parameters()), lr=1e-3)
    times = []
    for _ in range(EPOCHS):
        tic = time.perf_counter()
        for batch in loader:
            loss = distiller(batch)["loss"]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        times.append(time.perf_counter() - tic)
    return statistics.median(times)


def main() -> None:
    exp = config.load(ROOT / "configs/av_digits/demo.yaml")
    fold = open_dataset(exp.data.dataset, None, exp.data.options, exp.data.seed).fold(0)
    torch.manual_seed(0)
    teacher = build_model(exp.teacher, fold.info).eval()
    loader = BatchLoader(fold["train"], exp.train.batch_size, shuffle=True, augment=exp.data.augment)
    alone = Distiller(build_model(exp.student, fold.info), None, resolve_terms([TermSpec(loss="ce")]))
    kd_terms = resolve_terms(exp.distill.terms)
    online = Distiller(build_model(exp.student, fold.info), teacher, kd_terms)
    cached = Distiller(build_model(exp.student, fold.info), teacher, kd_terms)
    with tempfile.TemporaryDirectory() as cache_dir:
        tic = time.perf_counter()
        cache = TeacherCache.open(teacher, fold["train"], split="train", data_fingerprint=fold.fingerprint,
                                  reads=cached.teacher_reads(), root=Path(cache_dir), augmented=set())
        build_s = time.perf_counter() - tic
        cached.use_teacher_source(cache)
        seconds = {"student_alone": epoch_seconds(alone, loader), "kd_online": epoch_seconds(online, loader),
                   "kd_cached": epoch_seconds(cached, loader)}
    payload = {
        "data": "av-digits fold 0 train split", "samples": len(fold["train"]), "threads": torch.get_num_threads(),
        "teacher_flops": count_flops(teacher, fold.info.modalities),
        "student_flops": count_flops(alone.student, fold.info.modalities),
        "epoch_s": {k: round(v, 3) for k, v in seconds.items()}, "cache_build_s": round(build_s, 3),
        "online_over_alone": round(seconds["kd_online"] / seconds["student_alone"], 3),
        "cached_over_alone": round(seconds["kd_cached"] / seconds["student_alone"], 3),
    }
    (ROOT / "benchmarks" / "results" / "cache_overhead.json").write_text(json.dumps(payload, indent=1) + "\n")
    print(json.dumps(payload, indent=1))


if __name__ == "__main__":
    main()
