"""Experiment tracking (train.log): a real run writes TensorBoard event files and an MLflow store, read back."""

import importlib.util

import pytest
from typer.testing import CliRunner

from crossdistill.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory, tiny_config_text):
    folder = tmp_path_factory.mktemp("tracked")
    (folder / "tiny.yaml").write_text(tiny_config_text)
    result = runner.invoke(app, ["run", str(folder / "tiny.yaml"), "--out", str(folder / "runs"),
                                 "--set", "train.log=[tensorboard, mlflow]"])
    assert result.exit_code == 0, result.output
    return folder / "runs" / "tiny"


def test_tensorboard_event_files_hold_every_models_epochs_and_test_metrics(tracked_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for key, epochs in (("teacher/fold0", 2), ("baseline/fold0-seed0", 2), ("distilled/fold0-seed0", 2)):
        events = EventAccumulator(str(tracked_run / "tensorboard" / key)).Reload()
        assert [e.step for e in events.Scalars("train_loss")] == list(range(epochs)), key
        assert len(events.Scalars("val_score")) == epochs
    hparams = EventAccumulator(str(tracked_run / "tensorboard" / "distilled/fold0-seed0")).Reload()
    assert hparams.Scalars("test/accuracy")[0].value >= 0  # the test metric, logged with the hyper-parameters


def test_mlflow_store_holds_params_history_and_test_metrics(tracked_run):
    import json

    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tracked_run / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tiny")
    runs = {r.data.tags["crossdistill.model"]: r for r in client.search_runs([experiment.experiment_id])}
    assert set(runs) == {"teacher/fold0", "baseline/fold0-seed0", "distilled/fold0-seed0"}
    distilled = runs["distilled/fold0-seed0"]
    assert distilled.data.params["terms"] == "ce + kd(temperature=4.0)" and distilled.data.params["labels"] == "0.1"
    assert distilled.data.params["lr"] == "0.003" and distilled.info.status == "FINISHED"
    history = client.get_metric_history(distilled.info.run_id, "train_loss")
    assert [m.step for m in history] == [0, 1]
    results = json.loads((tracked_run / "results.json").read_text())
    expected = results["models"]["distilled"]["runs"][0]["accuracy"]
    assert distilled.data.metrics["test/accuracy"] == pytest.approx(expected)


def test_a_tracker_that_is_not_installed_names_the_pip_command(tiny_config, monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    result = runner.invoke(app, ["run", str(tiny_config), "--out", str(tmp_path), "--set", "train.log=[mlflow]"])
    assert result.exit_code == 2
    assert "train.log: mlflow is not installed: pip install 'crossdistill[mlflow]'" in result.output
    assert not (tmp_path / "tiny" / "models").exists()  # refused before any training
