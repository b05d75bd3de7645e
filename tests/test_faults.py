"""Faults: a run killed with SIGKILL resumes to the same weights, bit for bit; checkpoints are verified on load
(pickle payloads refused, altered or truncated files named); a non-finite loss stops with the term and the step,
or its batch is skipped and counted."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from crossdistill.checkpoint import CorruptCheckpointError, load_state, load_weights, save_state, save_weights
from crossdistill.config import ModelSpec, TermSpec, TrainConfig
from crossdistill.data import open_dataset
from crossdistill.data.loader import BatchLoader
from crossdistill.distill import Distiller, resolve_terms
from crossdistill.models import build_model
from crossdistill.tasks import build_task
from crossdistill.train import NonFiniteLossError, fit

CLASSIFICATION = build_task("classification")


class NotATensor:  # what a malicious checkpoint would smuggle in
    pass


def test_a_checkpoint_carrying_a_pickle_payload_is_refused(tmp_path):
    crafted = tmp_path / "last.pt"
    torch.save({"model": {"w": torch.ones(2)}, "hook": NotATensor()}, crafted)
    with pytest.raises(CorruptCheckpointError, match="pickle payload"):
        load_state(crafted)
    # the same inside our own envelope (a valid checksum over a malicious payload)
    save_state({"w": torch.ones(2)}, tmp_path / "good.pt")
    outer = torch.load(tmp_path / "good.pt", weights_only=True)
    import hashlib
    import io

    buffer = io.BytesIO()
    torch.save({"hook": NotATensor()}, buffer)
    payload = buffer.getvalue()
    outer |= {"sha256": hashlib.sha256(payload).hexdigest(),
              "payload": torch.frombuffer(bytearray(payload), dtype=torch.uint8)}
    torch.save(outer, tmp_path / "envelope.pt")
    with pytest.raises(CorruptCheckpointError, match="pickle payload"):
        load_state(tmp_path / "envelope.pt")


def test_altered_or_truncated_checkpoints_are_named_never_used(tmp_path):
    path = tmp_path / "last.pt"
    save_state({"weights": torch.randn(1000), "epoch": 3}, path)
    assert load_state(path)["epoch"] == 3
    data = bytearray(path.read_bytes())
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF  # inside the tensor bytes: torch.load alone would return wrong values
    path.write_bytes(bytes(flipped))
    with pytest.raises(CorruptCheckpointError, match="checksum mismatch|truncated"):
        load_state(path)
    path.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(CorruptCheckpointError, match="truncated"):
        load_state(path)
    weights = tmp_path / "best.safetensors"
    model = torch.nn.Linear(50, 20)
    save_weights(model.state_dict(), weights)
    raw = bytearray(weights.read_bytes())
    raw[-100] ^= 0x01  # one bit of the last tensor
    weights.write_bytes(bytes(raw))
    with pytest.raises(CorruptCheckpointError, match="checksum mismatch"):
        load_weights(torch.nn.Linear(50, 20), weights)


def _mfh_fit(tmp_path, nonfinite: str):
    """A linear student on synthetic-mfh whose 6th training sample is NaN: 1 of 4 batches per epoch is."""
    fold = open_dataset("synthetic-mfh", None, {"experiment": "gamma", "overlap": 4}, 0, CLASSIFICATION).fold(0)
    fold["train"].inputs["x2"][5, 0] = float("nan")
    spec = ModelSpec.model_validate({"encoders": {"x2": {"name": "identity"}}, "fusion": "identity",
                                     "dropout": 0.0})
    student = build_model(spec, fold.info)
    distiller = Distiller(student, None, resolve_terms([TermSpec(loss="ce")]))
    cfg = TrainConfig(epochs=3, batch_size=50, progress=False, nonfinite=nonfinite, select_on="last")
    train = BatchLoader(fold["train"], 50, shuffle=True, seed=0)
    return fit(distiller, train, BatchLoader(fold["val"], 256), fold["val"].target, cfg, tmp_path,
               torch.device("cpu")), student


def test_a_non_finite_loss_names_the_term_and_step_or_is_skipped(tmp_path):
    with pytest.raises(NonFiniteLossError, match=r"epoch 0, step \d: loss term ce = nan is not finite"):
        _mfh_fit(tmp_path / "stop", "stop")
    result, student = _mfh_fit(tmp_path / "skip", "skip")
    assert [row["skipped_steps"] for row in result.history] == [1, 1, 1]  # the batch holding sample 5, each epoch
    assert all(torch.isfinite(p).all() for p in student.parameters())


def _run(config, out, env):
    return subprocess.Popen([sys.executable, "-m", "crossdistill", "run", str(config), "--out", str(out),
                             "--set", "train.epochs=6", "--set", "seeds=[0]"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_a_run_killed_mid_epoch_resumes_to_the_same_weights_bit_for_bit(tiny_config, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    assert _run(tiny_config, tmp_path / "whole", env).wait(timeout=600) == 0
    victim = _run(tiny_config, tmp_path / "killed", env)
    log = tmp_path / "killed" / "tiny" / "models" / "distilled" / "fold0-seed0" / "metrics.jsonl"
    deadline = time.time() + 600
    while time.time() < deadline and not (log.is_file() and len(log.read_text().splitlines()) >= 2):
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)  # during the distilled student's third epoch (or later)
    victim.wait()
    epochs_done = len(log.read_text().splitlines())
    assert 2 <= epochs_done < 6, "the run was not killed mid-training"
    assert _run(tiny_config, tmp_path / "killed", env).wait(timeout=600) == 0  # resumes from last.pt
    for model in ("teacher/fold0", "baseline/fold0-seed0", "distilled/fold0-seed0"):
        whole = (tmp_path / "whole" / "tiny" / "models" / model / "checkpoints" / "best.safetensors").read_bytes()
        resumed = (tmp_path / "killed" / "tiny" / "models" / model / "checkpoints" / "best.safetensors").read_bytes()
        assert whole == resumed, model
    history = [json.loads(line) for line in log.read_text().splitlines()]
    assert [row["epoch"] for row in history] == list(range(6))


def test_no_resume_trains_afresh(tmp_path):
    from typer.testing import CliRunner

    from crossdistill.cli import app

    config = tmp_path / "mfh.yaml"
    config.write_text("data: {dataset: synthetic-mfh, options: {experiment: gamma}}\nseeds: [0]\n"
                      "teacher: {encoders: {x1: {name: identity}}, fusion: identity}\n"
                      "student: {encoders: {x2: {name: identity}}, fusion: identity}\n"
                      "train: {epochs: 3, progress: false}\nevaluate: {latency_repeats: 1}\n")
    runner = CliRunner()
    log = tmp_path / "runs" / "mfh" / "models" / "teacher" / "fold0" / "metrics.jsonl"
    assert runner.invoke(app, ["run", str(config), "--out", str(tmp_path / "runs")]).exit_code == 0
    first = log.stat().st_mtime_ns
    assert runner.invoke(app, ["run", str(config), "--out", str(tmp_path / "runs")]).exit_code == 0
    assert log.stat().st_mtime_ns == first  # resumed: the finished teacher is not trained again
    assert runner.invoke(app, ["run", str(config), "--out", str(tmp_path / "runs"), "--no-resume"]).exit_code == 0
    assert log.stat().st_mtime_ns > first  # trained afresh
