"""crossdistill against the peer, torchdistill 1.1.5, on the same Hinton-KD experiment, in one run: av-mnist
(FSDD speech + MNIST digits, ``configs/av_mnist/kd.yaml``'s data, teacher and student), the same trained image
teacher, the same audio student (same architecture code, same initial weights per seed), the same tensors (no
augmentation, batches in the same order, student without dropout: both sides should train the same student up
to float rounding), 10 epochs of Adam at 3e-3 with batch 64, loss CE + T^2 KL at T = 4 (weights 1, 1), last
epoch kept, 3 seeds; test accuracy of the students.

Ours runs in this process through ``distiller_for`` + ``fit`` twice: with the teacher cache (built cold: its
build is inside our time) and with it off (the teacher runs online every step, as the peer's does), so that
library overhead and caching are measured apart; torchdistill runs in its own venv (``benchmarks/.peer-venv``,
created on first use: torch 2.13.0, torchvision 0.28.0 with a two-operator shim, torchdistill 1.1.5, this
package for the model code)
through its DistillationBox, driven by its config dict and epoch loop (``benchmarks/peer_torchdistill.py``).
Both times exclude interpreter start-up and data loading; they cover building the students, distilling them and
testing them. Writes ``benchmarks/results/peer.json``. Target: ours >= 2x faster at equal accuracy (±0.5 points).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from crossdistill import config  # noqa: E402
from crossdistill.checkpoint import save_weights  # noqa: E402
from crossdistill.data import open_dataset  # noqa: E402
from crossdistill.data.loader import BatchLoader  # noqa: E402
from crossdistill.evaluate import evaluate_split  # noqa: E402
from crossdistill.pipeline import distiller_for, obtain_teacher  # noqa: E402
from crossdistill.plans import (
    experiment_task,  # noqa: E402
    student_plans,  # noqa: E402
)
from crossdistill.rundir import stamp  # noqa: E402
from crossdistill.runtime import seed_everything  # noqa: E402
from crossdistill.train import fit  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PEER = ROOT / "benchmarks" / ".peer-venv"
EPOCHS, BATCH, LR, TEMPERATURE, SEEDS = 10, 64, 3e-3, 4.0, [0, 1, 2]


def peer_python() -> Path:
    """The peer's interpreter; its venv is created on first use (package registries only)."""
    python = PEER / "bin" / "python"
    if not python.is_file():
        print("creating the torchdistill venv (once) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(PEER)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "torch==2.13.0"], check=True)  # first: the local CPU build
        subprocess.run([*pip, "torchvision==0.28.0", "torchdistill==1.1.5"], check=True)
        subprocess.run([*pip, "-e", str(ROOT)], check=True)
    return python


def experiment() -> config.Experiment:
    overrides = ["data.augment={}", "seeds=[0]", f"train.epochs={EPOCHS}", f"train.batch_size={BATCH}",
                 f"train.lr={LR}", "train.weight_decay=0", "train.warmup_epochs=0", "train.schedule=constant",
                 "train.clip_grad=null", "train.ema_horizon=null", "train.patience=null", "train.select_on=last",
                 f"train.checkpoint_every={EPOCHS}", "train.progress=false", "student_labels=1.0",
                 "student.dropout=0.0",
                 f"distill.terms=[{{loss: ce}}, {{loss: kd, kwargs: {{temperature: {TEMPERATURE}}}}}]"]
    return config.load(ROOT / "configs" / "av_mnist" / "kd.yaml", overrides)


def ours(exp, fold, teacher, scratch: Path, cache: bool = True) -> dict:
    exp = exp.model_copy(update={"distill": exp.distill.model_copy(update={"cache": cache})})
    plan = next(p for p in student_plans(exp) if p.name == "distilled")
    cfg = exp.train_for({})
    accuracies, tic = [], time.perf_counter()
    for seed in SEEDS:
        seed_everything(seed)
        distiller = distiller_for(exp, plan, fold, {"teacher": teacher}, torch.arange(8), seed)
        train = BatchLoader(fold["train"], BATCH, shuffle=True, seed=seed)
        fit(distiller, train, BatchLoader(fold["val"], 256), fold["val"].target, cfg,
            scratch / f"s{seed}-{'cache' if cache else 'online'}",
            torch.device("cpu"), resume=False)
        accuracies.append(evaluate_split(distiller.student.eval(), fold["test"], fold.info)["metrics"]["accuracy"])
    return {"seconds": time.perf_counter() - tic, "accuracy": accuracies}


def main() -> None:
    python = peer_python()
    exp = experiment()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        os.environ["CROSSDISTILL_CACHE"] = str(scratch / "cache")  # cold: the cache build is in our time
        fold = open_dataset(exp.data.dataset, None, exp.data.options, exp.data.seed, experiment_task(exp)).fold(0)
        teacher = obtain_teacher(exp, "teacher", fold, scratch / "teacher")  # shared, not timed
        save_weights(teacher.state_dict(), scratch / "teacher.safetensors")
        np.savez(scratch / "data.npz", **{f"{split}.{key}": value.numpy() for split in ("train", "test")
                                          for key, value in [*fold[split].inputs.items(),
                                                             ("target", fold[split].target)]})
        (scratch / "setup.json").write_text(json.dumps({
            "teacher": exp.teacher.model_dump(mode="json"), "student": exp.student.model_dump(mode="json"),
            "num_classes": fold.info.num_classes, "shapes": {m: list(s.shape) for m, s in fold.info.modalities.items()},
            "epochs": EPOCHS, "batch_size": BATCH, "lr": LR, "temperature": TEMPERATURE, "seeds": SEEDS,
            "threads": torch.get_num_threads()}))
        mine = ours(exp, fold, teacher, scratch)
        online = ours(exp, fold, teacher, scratch, cache=False)
        done = subprocess.run([str(python), str(ROOT / "benchmarks" / "peer_torchdistill.py"), str(scratch)],
                              capture_output=True, text=True, env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
        if done.returncode != 0:
            raise RuntimeError(f"torchdistill side failed:\n{done.stderr[-3000:]}")
        theirs = json.loads(done.stdout.strip().splitlines()[-1])
    summary = {name: {"seconds": r["seconds"], "accuracy_per_seed": r["accuracy"],
                      "accuracy_mean": statistics.fmean(r["accuracy"]), "accuracy_std": statistics.stdev(r["accuracy"])}
               for name, r in (("crossdistill", mine), ("crossdistill_cache_off", online),
                               ("torchdistill", theirs))}
    payload = {"stamp": stamp(config.dump(exp)).model_dump(),
               "experiment": {"data": "av-mnist fold 0", "epochs": EPOCHS, "batch_size": BATCH, "lr": LR,
                              "temperature": TEMPERATURE, "seeds": SEEDS, "threads": torch.get_num_threads()},
               **summary, "speedup": theirs["seconds"] / mine["seconds"],
               "speedup_cache_off": theirs["seconds"] / online["seconds"],  # library overhead alone
               "accuracy_gap_points": 100 * (summary["crossdistill"]["accuracy_mean"]
                                             - summary["torchdistill"]["accuracy_mean"]),
               "target": "speedup >= 2 at |gap| <= 0.5 points"}
    (ROOT / "benchmarks" / "results" / "peer.json").write_text(json.dumps(payload, indent=1) + "\n")
    print(json.dumps(payload, indent=1))


if __name__ == "__main__":
    main()
