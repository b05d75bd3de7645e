"""The examples under examples/ run as a user runs them (from the repository root) and print what they claim."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_example(name, *args, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, f"examples/{name}", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def accuracy_printed(output):
    line = next(line for line in output.splitlines() if "test accuracy" in line)
    return float(line.rsplit(":", 1)[1])


def test_own_training_loop_with_our_terms_and_cache(tmp_path):
    output = run_example("own_training_loop.py", tmp_path=tmp_path)
    assert "KD loss on a test batch" in output and accuracy_printed(output) > 0.6


def test_lightning_module_wraps_the_distiller(tmp_path):
    pytest.importorskip("lightning")
    output = run_example("lightning_module.py", tmp_path=tmp_path)
    assert accuracy_printed(output) > 0.6


def test_python_api_runs_exports_and_predicts(tmp_path):
    output = run_example("python_api.py", tmp_path, tmp_path=tmp_path)
    assert "teacher    image" in output and "distilled  audio" in output and "distilled vs baseline" in output
    assert (tmp_path / "kd" / "results.json").is_file() and (tmp_path / "kd" / "export" / "distilled.onnx").is_file()
    predicted = next(line for line in output.splitlines() if line.startswith("predicted:"))
    assert predicted.count("->") == 6
