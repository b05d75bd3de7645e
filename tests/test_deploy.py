"""Deploying a student as a new user would, on real data: export (recipes, golden rows, int8, the serving
package), then predict for new files and tables from the export folder without PyTorch and from the run with
it; both must score what the tool scored on the same rows."""

import csv
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from manifest_runs import manifest_run, write_csv
from typer.testing import CliRunner

from crossdistill.cli import app
from crossdistill.data.audio import log_mel as torch_log_mel
from crossdistill.data.mfeat import MultipleFeatures
from crossdistill.serve.decode import decode_audio
from crossdistill.serve.frontend import log_mel
from crossdistill.tasks import build_task

runner = CliRunner()

# Runs a module with torch (and the installed crossdistill) unimportable: what a device without PyTorch has.
WITHOUT_TORCH = """
import importlib.abc, runpy, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "crossdistill"):
            raise ImportError(f"{name} is not installed here")
sys.meta_path.insert(0, Block())
sys.argv = ["crossdistill_serve", *sys.argv[1:]]
runpy.run_module("crossdistill_serve", run_name="__main__")
"""

MFEAT = """
data: {dataset: mfeat}
student_labels: 0.5
seeds: [0]
teacher:
  encoders: {fou: {name: mlp, hidden: [32]}, kar: {name: mlp, hidden: [32]}, pix: {name: mlp, hidden: [32]}}
  embed_dim: 32
  train: {epochs: 15}
student:
  encoders: {mor: {name: mlp, hidden: [16]}, zer: {name: mlp, hidden: [16]}}
  embed_dim: 16
distill: {terms: [{loss: ce}, {loss: kd, kwargs: {temperature: 4.0}}]}
train: {epochs: 15, batch_size: 64, progress: false}
evaluate: {latency_repeats: 2}
"""


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def without_torch(export_dir, *args):
    """``python -m crossdistill_serve ARGS`` from the export folder's own copy, with torch unimportable."""
    script = export_dir / "no_torch.py"
    script.write_text(WITHOUT_TORCH)
    return subprocess.run([sys.executable, str(script), *map(str, args)], cwd=export_dir, capture_output=True,
                          text=True, env={"PYTHONPATH": str(export_dir), "PATH": "/usr/bin:/bin"})


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def tool_accuracy(run_dir, model="distilled"):
    results = json.loads((run_dir / "results.json").read_text())
    return results["models"][model]["runs"][0]["accuracy"]


@pytest.fixture(scope="module")
def av_run(tiny_run):
    return tiny_run[0]


@pytest.fixture(scope="module")
def mfeat_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("deploy-mfeat")
    (folder / "mfeat.yaml").write_text(MFEAT)
    code, output = invoke("run", folder / "mfeat.yaml", "--out", folder / "runs")
    assert code == 0, output
    return folder / "runs" / "mfeat"


def test_the_numpy_log_mel_is_trainings_torch_stft_one(data_root):
    clips = sorted((data_root / "fsdd" / "recordings").glob("*_nicolas_*.wav"))[:16]
    waves = np.stack([decode_audio(str(p), data_root, 8000, 8000) for p in clips])
    for band_norm in (True, False):
        ours = log_mel(waves, 8000, 256, 128, 32, 60.0, band_norm)
        theirs = torch_log_mel(waves, 8000, 256, 128, 32, 60.0, band_norm).numpy()
        assert ours.shape == theirs.shape == (16, 1, 32, 63)
        assert np.abs(ours - theirs).max() < 1e-4


def test_an_audio_student_serves_without_torch_at_the_tools_accuracy(av_run, data_root, tmp_path):
    code, output = invoke("export", av_run, "--format", "onnx", "--quantize", "int8")
    assert code == 0, output
    export_dir = av_run / "export"
    written = json.loads((export_dir / "distilled.json").read_text())
    recipe = written["preprocessing"]["audio"]
    assert recipe["kind"] == "audio" and recipe["sample_rate"] == 8000 and recipe["samples"] == 8000
    assert written["golden"]["rows"] == 4 and written["golden"]["max_input_difference"]["audio"] < 1e-4
    assert (export_dir / "crossdistill_serve" / "__main__.py").is_file()
    for int8 in ([], ["--int8"]):
        checked = without_torch(export_dir, "check", ".", *int8)
        assert checked.returncode == 0 and "golden rows reproduced" in checked.stdout, checked.stderr
    # the test speaker of fold 0 is george: all of his clips, as wav files in a folder
    clips = tmp_path / "clips"
    clips.mkdir()
    for path in (data_root / "fsdd" / "recordings").glob("*_george_*.wav"):
        shutil.copy(path, clips / path.name)
    served = without_torch(export_dir, "predict", ".", clips, "--out", tmp_path / "onnx.csv")
    assert served.returncode == 0, served.stderr
    code, output = invoke("predict", av_run, clips, "--out", tmp_path / "torch.jsonl")
    assert code == 0, output
    onnx_rows = read_csv(tmp_path / "onnx.csv")
    torch_rows = [json.loads(line) for line in (tmp_path / "torch.jsonl").read_text().splitlines()]
    assert len(onnx_rows) == len(torch_rows) == 500
    for ours, theirs in zip(onnx_rows, torch_rows, strict=True):
        assert ours["id"] == theirs["id"] and ours["prediction"] == theirs["prediction"]
        assert abs(float(ours["probability"]) - theirs["probability"]) < 1e-4
    accuracy = np.mean([row["prediction"] == row["id"].split("_")[0] for row in onnx_rows])
    assert accuracy == pytest.approx(tool_accuracy(av_run), abs=1e-9)  # what the tool scored on the same clips


def test_raw_mfeat_rows_predict_at_the_tools_accuracy(mfeat_run, data_root, tmp_path):
    code, output = invoke("export", mfeat_run, "--format", "onnx")
    assert code == 0, output
    data = MultipleFeatures(data_root, {}, 0, build_task("classification"))
    test_rows = data.split_parts()[2]
    table = tmp_path / "rows.jsonl"  # raw rows of the views' CSV files, as a user has them
    table.write_text("".join(json.dumps({"id": int(r), "mor": data.views["mor"][r].tolist(),
                                         "zer": data.views["zer"][r].tolist()}) + "\n" for r in test_rows))
    served = without_torch(mfeat_run / "export", "predict", ".", table, "--out", tmp_path / "p.jsonl")
    assert served.returncode == 0, served.stderr
    predicted = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    truth = {str(r): str(data.labels[r]) for r in test_rows}
    accuracy = np.mean([row["prediction"] == truth[row["id"]] for row in predicted])
    assert accuracy == pytest.approx(tool_accuracy(mfeat_run), abs=1e-9) and accuracy > 0.5


def test_int8_beyond_the_tolerance_is_refused_with_the_numbers(mfeat_run):
    code, output = invoke("export", mfeat_run, "--format", "onnx", "--quantize", "int8", "--max-drop", "-100")
    assert code == 2 and "int8 loses" in output and "accuracy %" in output and "--max-drop -100" in output
    assert not (mfeat_run / "export" / "distilled.int8.onnx").exists()
    code, output = invoke("export", mfeat_run, "--format", "onnx", "--quantize", "int8", "--max-drop", "5")
    assert code == 0, output
    int8 = json.loads((mfeat_run / "export" / "distilled.json").read_text())["int8"]
    assert int8["mode"] == "static" and int8["fp32"]["weights_bytes"] > 2 * int8["int8"]["weights_bytes"]
    assert all(int8[g]["latency_ms_batch1"] > 0 and int8[g]["latency_ms_batch64"] > 0 for g in ("fp32", "int8"))
    assert int8["test_rows"] == 400 and abs(int8["fp32"]["accuracy %"] - 100 * tool_accuracy(mfeat_run)) < 1e-9
    report = (mfeat_run / "report" / "report.md").read_text()  # the report shows what the export measured
    assert "## Deployment" in report and "| int8 |" in report and "int8 (static quantisation" in report


def test_predict_names_what_the_input_lacks(mfeat_run, av_run, data_root, tmp_path):
    table = tmp_path / "rows.csv"
    table.write_text("id,mor\n1,\"[1, 2, 3, 4, 5, 6]\"\n")
    code, output = invoke("predict", mfeat_run, table)
    assert code == 2 and "no column for zer (column 'zer')" in output and "the table has: id, mor" in output
    code, output = invoke("predict", mfeat_run, tmp_path)
    assert code == 2 and "this model reads 2 modalities" in output
    clips = tmp_path / "clips"
    clips.mkdir()
    for path in sorted((data_root / "fsdd" / "recordings").glob("3_george_*.wav"))[:3]:
        shutil.copy(path, clips / path.name)
    (clips / "broken.wav").write_bytes(b"RIFF not a wav")
    code, output = invoke("predict", av_run, clips)
    assert code == 2 and "row broken.wav, audio: cannot decode wav" in output and "--on-error skip" in output
    code, output = invoke("predict", av_run, clips, "--on-error", "skip", "--out", tmp_path / "p.csv")
    assert code == 0 and "skipped row broken.wav, audio" in output and len(read_csv(tmp_path / "p.csv")) == 3


def test_an_image_and_text_student_serves_its_manifest(emoji_rows, tmp_path):
    images = tmp_path / "png"
    images.mkdir()
    rows = []
    for row in emoji_rows:
        shutil.copy(row["image"], images / (name := row["image"].rsplit("/", 1)[1]))
        rows.append({"image": name, "name": row["name"], "category": row["category"]})
    config = manifest_run(
        write_csv(tmp_path / "emoji.csv", rows),
        {"image": {"kind": "image", "column": "image", "folder": "png", "size": 16},
         "text": {"kind": "text", "column": "name", "max_length": 6}}, student_labels=1.0,
        teacher={"encoders": {"image": {"name": "image_cnn", "channels": [8]},
                              "text": {"name": "text_bag", "dim": 16}}, "embed_dim": 16, "train": {"epochs": 2}},
        student={"encoders": {"image": {"name": "image_cnn", "channels": [4]},
                              "text": {"name": "text_bag", "dim": 8}}, "embed_dim": 8})
    (tmp_path / "emoji.yaml").write_text(json.dumps(config))
    code, output = invoke("run", tmp_path / "emoji.yaml", "--out", tmp_path / "runs")
    assert code == 0, output
    run_dir = tmp_path / "runs" / "emoji"
    code, output = invoke("export", run_dir, "--format", "onnx")
    assert code == 0, output
    served = without_torch(run_dir / "export", "check", ".")
    assert served.returncode == 0, served.stderr
    served = without_torch(run_dir / "export", "predict", ".", tmp_path / "emoji.csv", "--out", tmp_path / "o.csv")
    assert served.returncode == 0, served.stderr
    code, output = invoke("predict", run_dir, tmp_path / "emoji.csv", "--out", tmp_path / "t.csv")
    assert code == 0, output
    onnx_rows, torch_rows = read_csv(tmp_path / "o.csv"), read_csv(tmp_path / "t.csv")
    assert len(onnx_rows) == len(rows) and [r["prediction"] for r in onnx_rows] == [r["prediction"] for r in torch_rows]
    assert torch.allclose(torch.tensor([float(r["probability"]) for r in onnx_rows]),
                          torch.tensor([float(r["probability"]) for r in torch_rows]), atol=1e-4)


def test_a_modality_numpy_cannot_serve_exports_without_golden_rows_and_predicts_from_the_run(emoji_rows, tmp_path):
    pytest.importorskip("sentence_transformers")
    config = manifest_run(write_csv(tmp_path / "names.csv", emoji_rows, ["name", "category"]),
                          {"text": {"kind": "text_embedding", "column": "name"}}, student_labels=0.5,
                          teacher={"encoders": {"text": {"name": "mlp", "hidden": [32]}}, "train": {"epochs": 3}},
                          student={"encoders": {"text": {"name": "mlp", "hidden": [8]}}})
    (tmp_path / "names.yaml").write_text(json.dumps(config))
    code, output = invoke("run", tmp_path / "names.yaml", "--out", tmp_path / "runs")
    assert code == 0, output
    run_dir = tmp_path / "runs" / "names"
    code, output = invoke("export", run_dir, "--format", "onnx")
    assert code == 0 and "no golden rows, no numpy serving: text: its text is embedded by the sentence model" \
        in " ".join(output.split()), output
    code, output = invoke("predict", run_dir / "export", tmp_path / "names.csv")
    assert code == 2 and "predict from the run directory" in " ".join(output.split())
    code, output = invoke("predict", run_dir, tmp_path / "names.csv", "--out", tmp_path / "p.csv")
    assert code == 0, output
    assert len(read_csv(tmp_path / "p.csv")) == len(emoji_rows)
