"""End to end on the real FSDD files: `crossdistill run` on a tiny config, then report and export."""

import json

import pytest
from typer.testing import CliRunner

from crossdistill.cli import app

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def finished_run(tiny_run):
    return tiny_run


def test_help_lists_the_commands():
    code, output = invoke("--help")
    assert code == 0
    for command in ("run", "report", "export", "list", "fetch"):
        assert command in output


@pytest.mark.parametrize("what,expected",
                         [("datasets", "av-mnist"), ("encoders", "spec_cnn"), ("losses", "Decoupled KD")])
def test_list(what, expected):
    code, output = invoke("list", what)
    assert code == 0 and expected in output


def test_list_unknown_kind():
    code, output = invoke("list", "gizmos")
    assert code == 2 and "choose datasets, encoders, losses or tasks" in output


def test_run_writes_the_run_directory_contract(finished_run):
    run_dir, output = finished_run
    results = json.loads((run_dir / "results.json").read_text())
    assert results["dataset"] == "av-digits"
    assert set(results["models"]) == {"teacher", "baseline", "distilled"}
    for name, model in results["models"].items():
        accuracy = model["metrics"]["accuracy"]
        assert set(accuracy) == {"mean", "std", "per_seed"} and 0.0 <= accuracy["mean"] <= 1.0, name
        assert model["params"] > 0 and model["flops"] > 0
        assert set(model["latency_ms"]) == {"batch1", "batch64"}
        assert "macro_f1" in model["metrics"]
    assert results["models"]["teacher"]["modalities"] == ["image"]
    assert set(results["models"]["teacher"]["modality_ablation"]) == {"image"}  # the teacher without its image
    assert results["models"]["distilled"]["modalities"] == ["audio"]
    assert results["gain"]["accuracy"] == pytest.approx(
        results["models"]["distilled"]["metrics"]["accuracy"]["mean"]
        - results["models"]["baseline"]["metrics"]["accuracy"]["mean"])
    assert (run_dir / "config.yaml").is_file()
    assert (run_dir / "models" / "distilled" / "fold0-seed0" / "metrics.jsonl").is_file()
    assert (run_dir / "models" / "distilled" / "fold0-seed0" / "eval.json").is_file()
    for part in ("report.md", "report.html", "results.csv", "plots/curves.png", "plots/confusion.png"):
        assert (run_dir / "report" / part).stat().st_size > 0, part
    assert "base64," in (run_dir / "report" / "report.html").read_text()  # self-contained
    assert "distilled" in output and "report.html" in output


def test_results_carry_the_paired_comparison_and_per_row_predictions(finished_run):
    import numpy as np

    from crossdistill.stats import paired_diff

    run_dir, output = finished_run
    results = json.loads((run_dir / "results.json").read_text())
    (comparison,) = results["comparisons"]
    assert (comparison["model"], comparison["reference"], comparison["metric"]) == ("distilled", "baseline",
                                                                                    "accuracy")
    diff = comparison["paired_diff"]
    assert diff["n_runs"] == 1 and diff["verdict"] == "no verdict"  # one seed, one fold: no verdict
    assert diff["ci_low"] <= diff["mean"] <= diff["ci_high"]
    assert diff["mean"] == pytest.approx(results["gain"]["accuracy"])
    rows = {name: np.load(run_dir / "models" / name / "fold0-seed0" / "test_rows.npz")
            for name in ("distilled", "baseline")}
    assert rows["distilled"]["correct"].mean() == pytest.approx(
        results["models"]["distilled"]["metrics"]["accuracy"]["mean"])
    # recomputed from the files in the run directory: the same interval
    again = paired_diff({(0, 0): dict(rows["distilled"])}, {(0, 0): dict(rows["baseline"])},
                        lambda r, idx: r["correct"][idx].mean(axis=1), seed=0)
    assert again.model_dump() == diff
    assert "no verdict (fewer than 3 paired runs" in output
    teacher_soft = results["models"]["teacher"]["soft_labels"][0]
    assert 0.1 <= teacher_soft["mean_top_probability"] <= 1.0 and 0 <= teacher_soft["normalised_entropy"] <= 1


def test_report_html_has_no_raw_markdown(finished_run):
    from html.parser import HTMLParser

    run_dir, _ = finished_run

    class Text(HTMLParser):
        def __init__(self):
            super().__init__()
            self.text, self.tags = [], []

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)

        def handle_data(self, data):
            self.text.append(data)

    page = Text()
    page.feed((run_dir / "report" / "report.html").read_text())
    text = "".join(page.text)
    assert "`" not in text and "**" not in text and "\n#" not in text and "|---" not in text
    assert "± 0.0" not in text and "(n = 1)" in text  # one seed: no fake spread
    assert page.tags.count("h1") == 1 and "table" in page.tags and "code" in page.tags
    assert "crossdistill report: tiny" in text


def test_report_rebuilds_from_the_run_directory(finished_run):
    run_dir, _ = finished_run
    (run_dir / "report" / "report.md").unlink()
    code, output = invoke("report", run_dir)
    assert code == 0, output
    assert "| distilled | audio | teacher | 10% |" in (run_dir / "report" / "report.md").read_text()


def test_export_onnx_matches_pytorch(finished_run):
    import numpy as np
    import onnxruntime
    from safetensors.torch import load_file

    run_dir, _ = finished_run
    code, output = invoke("export", run_dir, "--format", "onnx", "--format", "safetensors")
    assert code == 0, output
    written = json.loads((run_dir / "export" / "distilled.json").read_text())
    assert written["onnx_max_abs_diff"] <= 1e-4
    session = onnxruntime.InferenceSession(written["onnx"], providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["audio"]
    (logits,) = session.run(None, {"audio": np.zeros((5, 1, 32, 63), np.float32)})  # another batch size
    assert logits.shape == (5, 10)
    assert load_file(written["safetensors"])


def test_export_of_a_missing_model_names_what_exists(finished_run):
    code, output = invoke("export", finished_run[0], "--model", "ghost")
    assert code == 2 and "no trained 'ghost'" in output and "distilled" in output


def test_a_second_run_resumes_and_a_changed_config_never_destroys_results(finished_run, tmp_path, caplog):
    import shutil
    import time

    import yaml

    run_dir = tmp_path / "runs" / "tiny"
    shutil.copytree(finished_run[0], run_dir)  # (the module's run stays as it was for the other tests)
    config_path = run_dir / "config.yaml"
    best = run_dir / "models" / "distilled" / "fold0-seed0" / "checkpoints" / "best.safetensors"
    before = best.stat().st_mtime_ns
    time.sleep(0.01)
    with caplog.at_level("INFO", logger="crossdistill"):
        code, output = invoke("run", config_path, "--out", run_dir.parent, "--set", "name=tiny")
    assert code == 0, output
    rows = (run_dir / "models" / "distilled" / "fold0-seed0" / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 3  # nothing retrained: the finished fit was resumed at its end
    assert best.stat().st_mtime_ns == before  # (not rewritten)
    assert "already trained, kept (epoch" in caplog.text and "finished models are kept" in caplog.text
    results = (run_dir / "results.json").read_text()
    code, output = invoke("run", config_path, "--out", run_dir.parent, "--set", "train.epochs=1")
    assert code == 0, output
    assert (run_dir / "results.json").read_text() == results and best.stat().st_mtime_ns == before  # kept
    (other,) = [p for p in run_dir.parent.iterdir() if p.name.startswith("tiny-")]
    assert yaml.safe_load((other / "config.yaml").read_text())["train"]["epochs"] == 1
    assert len((other / "models" / "distilled" / "fold0-seed0" / "metrics.jsonl").read_text().splitlines()) == 1
    assert f"runs in {other}" in caplog.text
    code, output = invoke("run", config_path, "--out", run_dir.parent, "--set", "train.epochs=1", "--overwrite")
    assert code == 0, output
    rows = (run_dir / "models" / "distilled" / "fold0-seed0" / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 1 and (run_dir / "config.previous.yaml").is_file()


def test_export_rejects_an_unknown_format(finished_run):
    code, output = invoke("export", finished_run[0], "--format", "tflite")
    assert code == 2 and "unknown export format tflite; available: onnx, safetensors" in output


def test_results_are_stamped_with_version_commit_config_date_and_machine(finished_run):
    import hashlib
    import subprocess
    from datetime import datetime

    from crossdistill import __version__
    from crossdistill.rundir import SCHEMA_VERSION, RunDir

    run_dir, _ = finished_run
    stamp = RunDir(run_dir).load_results().stamp
    assert stamp.schema_version == SCHEMA_VERSION and stamp.package_version == __version__
    assert stamp.config_hash == hashlib.sha256((run_dir / "config.yaml").read_bytes()).hexdigest()[:16]
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False).stdout.strip()
    assert stamp.commit == (head or None)  # the checkout the package runs from
    assert datetime.fromisoformat(stamp.date).tzinfo is not None and "torch" in stamp.machine
    assert json.loads((run_dir / "data_info.json").read_text())["stamp"]["config_hash"] == stamp.config_hash


def test_an_older_run_is_named_and_refused_with_the_command_that_rebuilds_it(finished_run, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(finished_run[0], old)
    for name in ("results.json", "data_info.json"):  # as written before the stamp existed
        raw = json.loads((old / name).read_text())
        raw.pop("stamp")
        (old / name).write_text(json.dumps(raw))
    for command in (("report", old), ("export", old)):
        code, output = invoke(*command)
        assert code == 2, output
        assert "was written by an older crossdistill (run format 1" in output
        assert f"crossdistill run {old / 'config.yaml'}" in output and "--no-resume" in output


def test_export_defaults_to_the_first_fold_and_seed_present_and_says_which(finished_run, tmp_path):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(finished_run[0], other)
    (other / "models" / "distilled" / "fold0-seed0").rename(other / "models" / "distilled" / "fold2-seed1")
    code, output = invoke("export", other, "--format", "safetensors")
    assert code == 0, output
    assert "exporting distilled as trained in models/distilled/fold2-seed1" in output
    assert json.loads((other / "export" / "distilled.json").read_text())["trained"] == "models/distilled/fold2-seed1"


def test_folds_trained_in_parallel_jobs_give_the_same_results(tiny_config, tmp_path):
    """--jobs 2 trains the two folds in two one-thread processes; the run's own pass then finds every fit done
    (no epoch is trained twice) and writes the same results as one process (one thread here too)."""
    found = {}
    for jobs in (1, 2):
        code, output = invoke("run", tiny_config, "--out", tmp_path / f"jobs{jobs}", "--set", "data.folds=2",
                              "--set", "train.epochs=1", "--set", "teacher.train.epochs=1", "--jobs", jobs)
        assert code == 0, output
        run_dir = tmp_path / f"jobs{jobs}" / "tiny"
        found[jobs] = {name: m["runs"] for name, m in json.loads((run_dir / "results.json").read_text())
                       ["models"].items()}
        for fold in (0, 1):
            assert len((run_dir / "models" / "distilled" / f"fold{fold}-seed0" / "metrics.jsonl").read_text()
                       .splitlines()) == 1
    assert found[1] == found[2] and len(found[1]["distilled"]) == 2


def test_export_takes_the_first_fold_and_seed_present(tiny_config, tmp_path):
    """A run of fold 1 only (the demo once ran fold 2 only): export needs no --fold and says what it took."""
    code, output = invoke("run", tiny_config, "--out", tmp_path, "--set", "data.folds=[1]", "--set",
                          "train.epochs=1", "--set", "teacher.train.epochs=1")
    assert code == 0, output
    code, output = invoke("export", tmp_path / "tiny", "--format", "safetensors")
    assert code == 0, output
    assert "as trained in" in output and "fold1-seed0" in " ".join(output.split())


def test_an_interrupt_says_how_to_resume(tiny_config, monkeypatch):
    import crossdistill.pipeline

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(crossdistill.pipeline, "run", interrupted)
    code, output = invoke("run", tiny_config)
    assert code == 130 and "interrupted" in output and "run the same command again to resume" in output
