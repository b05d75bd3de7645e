"""Several processes: ``torchrun --nproc_per_node=2 -m crossdistill run`` (gloo on CPU) trains to the same
weights and metrics as one process with the same global batch, with identical weights on both ranks; and mixed
precision (bf16 autocast on CPU)."""

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from crossdistill.cli import app

CONFIG = """
data:
  dataset: synthetic-mfh
  folds: 1
  options: {experiment: gamma, overlap: 6}
seeds: [0]
teacher:
  encoders: {x1: {name: mlp, hidden: [32]}}
  embed_dim: 16
  dropout: 0.0
  train: {epochs: 15}
student:
  encoders: {x2: {name: mlp, hidden: [16]}}
  embed_dim: 8
  dropout: 0.0
distill:
  terms: [{loss: ce}, {loss: kd, kwargs: {temperature: 2.0}}]
train: {epochs: 15, batch_size: 50, lr: 0.01, progress: false}
evaluate: {latency_repeats: 2, modality_ablation: false}
"""
MODELS = ("teacher/fold0", "baseline/fold0-seed0", "distilled/fold0-seed0")


def test_two_processes_train_what_one_process_trains(tmp_path):
    config = tmp_path / "ddp.yaml"
    config.write_text(CONFIG)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "crossdistill", "run", str(config), "--out", str(tmp_path / "two")],
                         env=env, capture_output=True, text=True, timeout=600)
    assert two.returncode == 0, two.stderr[-3000:]
    assert "terminate called" not in two.stderr  # clean teardown
    one = subprocess.run([sys.executable, "-m", "crossdistill", "run", str(config), "--out", str(tmp_path / "one")],
                         env=env, capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    for model in MODELS:
        a = load_file(tmp_path / "one" / "ddp" / "models" / model / "checkpoints" / "best.safetensors")
        b = load_file(tmp_path / "two" / "ddp" / "models" / model / "checkpoints" / "best.safetensors")
        assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-4, model  # float rounding only
    # the two ranks ended with the same weights (each rank's digest, gathered by rank 0)
    fit = json.loads((tmp_path / "two" / "ddp" / "models" / "distilled" / "fold0-seed0" / "fit.json").read_text())
    assert len(fit["weights_digest_per_rank"]) == 2 and len(set(fit["weights_digest_per_rank"])) == 1
    results = [json.loads((tmp_path / run / "ddp" / "results.json").read_text()) for run in ("one", "two")]
    for name in ("teacher", "baseline", "distilled"):
        accuracy = [r["models"][name]["metrics"]["accuracy"]["mean"] for r in results]
        assert accuracy[0] == pytest.approx(accuracy[1], abs=0.005), name
    assert (tmp_path / "two" / "ddp" / "report" / "report.md").is_file()  # rank 0 reported


def test_bf16_autocast_trains_on_cpu_and_fp16_asks_for_a_gpu(tmp_path):
    config = tmp_path / "ddp.yaml"
    config.write_text(CONFIG)
    runner = CliRunner()
    done = runner.invoke(app, ["run", str(config), "--out", str(tmp_path), "--set", "train.precision=bf16",
                               "--set", "variants={}"])
    assert done.exit_code == 0, done.output
    weights = load_file(tmp_path / "ddp" / "models" / "distilled" / "fold0-seed0" / "checkpoints" /
                        "best.safetensors")
    assert all(torch.isfinite(t).all() and t.dtype == torch.float32 for t in weights.values())  # fp32 master weights
    if not torch.cuda.is_available():
        refused = runner.invoke(app, ["run", str(config), "--out", str(tmp_path / "fp16"), "--set",
                                      "train.precision=fp16"])
        assert refused.exit_code == 2 and "fp16 needs a GPU" in refused.output


def test_frozen_teachers_stay_outside_ddp_and_every_wrapped_parameter_trains(tmp_path):
    """DDP wraps only what training changes (no ``find_unused_parameters``): a run with an adapter term and a
    jointly trained teacher (c2kd) trains under two processes, both ranks ending with the same weights."""
    config = tmp_path / "ddp.yaml"
    config.write_text(CONFIG.replace("train: {epochs: 15,", "train: {epochs: 3,").replace(
        "distill:\n  terms: [{loss: ce}, {loss: kd, kwargs: {temperature: 2.0}}]",
        "distill:\n  cache: false\n  terms: [{loss: ce}, {loss: c2kd}, {loss: feature_mse, reads: embed}]"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "crossdistill", "run", str(config), "--out", str(tmp_path / "two")],
                         env=env, capture_output=True, text=True, timeout=600)
    assert two.returncode == 0, two.stderr[-3000:]
    fit = json.loads((tmp_path / "two" / "ddp" / "models" / "distilled" / "fold0-seed0" / "fit.json").read_text())
    assert len(set(fit["weights_digest_per_rank"])) == 1
