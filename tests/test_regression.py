"""Regression targets end to end: a manifest's numeric label, standardised on train; the task loss, distillation
terms, selection, metrics and report for values; on the real VADER ratings (mean human sentiment, -4..4)."""

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import mean_absolute_error, r2_score
from typer.testing import CliRunner

import crossdistill
from crossdistill.cli import app
from crossdistill.data import open_dataset
from crossdistill.data.batch import DataInfo, has_label
from crossdistill.data.manifest import ManifestError
from crossdistill.data.splits import label_budget_mask, stratified_fractions
from crossdistill.tasks import build_task

CLASSIFICATION = build_task("classification")

REGRESSION = build_task("regression")

runner = CliRunner()


def vader_options(path, **extra):
    return {"path": str(path), "format": "tsv", "column_names": ["id", "mean", "text"], "label": "mean",
            "modalities": {"text": {"kind": "text", "column": "text", "max_length": 24}},
            **extra}


@pytest.fixture(scope="module")
def vader_small(data_root, tmp_path_factory):
    """The first 600 VADER tweets, as the file ships (headerless TSV)."""
    lines = (data_root / "vader_sentiment_groundtruth" / "tweets_GroundTruth.txt").read_text().splitlines()
    path = tmp_path_factory.mktemp("vader") / "tweets600.tsv"
    path.write_text("\n".join(lines[:600]) + "\n")
    return path


def test_real_targets_are_stratified_by_decile_and_unlabelled_rows_left_out():
    values = np.random.default_rng(0).normal(size=1000)
    values[::10] = np.nan  # unlabelled pairs
    groups = REGRESSION.strata(values)
    assert set(groups[~np.isnan(values)]) == set(range(10)) and (groups[np.isnan(values)] == -1).all()
    mask = label_budget_mask(REGRESSION.strata(values), 0.1, seed=0)
    assert mask.sum() == 90 and not mask[np.isnan(values)].any()
    assert len(np.unique(groups[mask])) == 10  # every decile of the target has labels
    train, val, test = stratified_fractions(REGRESSION.strata(values[~np.isnan(values)]), [0.5, 0.25, 0.25], seed=0)
    kept = values[~np.isnan(values)]
    assert abs(np.median(kept[train]) - np.median(kept[test])) < 0.2  # both cover the whole range


def test_validation_score_is_r2_and_test_metrics_are_in_the_target_units():
    target = torch.tensor([0.0, 1.0, -1.0, 2.0])  # standardised
    outputs = torch.tensor([[0.5], [1.0], [-0.5], [1.5]])
    expected = r2_score(target.numpy(), outputs[:, 0].numpy())
    assert REGRESSION.validation_score(outputs, target) == pytest.approx(expected, rel=1e-6)
    info = DataInfo({}, 0, {}, REGRESSION, target_scale=(10.0, 2.0))
    report = REGRESSION.score(outputs, target, info)
    raw_target, raw_predicted = target.numpy() * 2 + 10, outputs[:, 0].numpy() * 2 + 10
    assert report["metrics"]["r2"] == pytest.approx(expected, rel=1e-6)  # R^2 is unit-free
    assert report["metrics"]["mae"] == pytest.approx(mean_absolute_error(raw_target, raw_predicted))
    assert report["metrics"]["rmse"] == pytest.approx(float(np.sqrt(np.mean((raw_target - raw_predicted) ** 2))))
    assert report["confusion"] is None
    assert has_label(torch.tensor([0.5, float("nan")])).tolist() == [True, False]
    assert has_label(torch.tensor([2, -1])).tolist() == [True, False]


def test_manifest_regression_label_is_standardised_on_train_only(vader_small, tmp_path):
    fold = open_dataset("manifest", None, vader_options(vader_small), 0, REGRESSION).fold(0)
    assert fold.info.task.name == "regression" and fold.info.num_classes == 0
    train = fold["train"].target
    assert train.dtype == torch.float32
    assert abs(float(train.mean())) < 1e-5 and float(train.std(unbiased=False)) == pytest.approx(1.0, rel=1e-4)
    raw = np.asarray([float(line.split("\t")[1]) for line in vader_small.read_text().splitlines()])
    mean, std = fold.info.target_scale
    restored = torch.cat([fold[s].target for s in ("train", "val", "test")]).numpy() * std + mean
    index = torch.cat([fold[s].index for s in ("train", "val", "test")]).numpy()
    assert np.allclose(restored, raw[index], atol=1e-4)  # every row back in the raters' units
    with pytest.raises(Exception, match="label_bins cuts the label into classes"):
        open_dataset("manifest", None, vader_options(vader_small, label_bins=[0.0]), 0, REGRESSION)
    bad = tmp_path / "bad.tsv"
    bad.write_text("1\t0.5\tgood\n2\tvery\tbad\n3\t-1\tugly\n")
    with pytest.raises(ManifestError, match="row 2, column 'mean' \\(label\\): not a number: 'very'"):
        open_dataset("manifest", None, vader_options(bad), 0, REGRESSION)


REGRESSION_RUN = """
task: regression
data:
  dataset: manifest
  options:
    path: {path}
    format: tsv
    column_names: [id, mean, text]
    label: mean
    modalities:
      text: {{kind: text, column: text, max_length: 24}}
student_labels: 0.2
seeds: [0, 1]
teacher:
  encoders:
    text: {{name: text_gru, dim: 48, hidden: 64}}
  embed_dim: 32
  train: {{epochs: 8}}
student:
  encoders:
    text: {{name: text_bag, dim: 16}}
  embed_dim: 16
distill:
  terms:
    - {{loss: mse}}
    - {{loss: pred_mse}}
variants:
  bounded: {{terms: [{{loss: mse}}, {{loss: teacher_bounded}}], seeds: [0]}}
  no_labels: {{student_labels: 0.0, terms: [{{loss: pred_mse}}], train: {{select_on: teacher}}, seeds: [0]}}
  finetuned: {{init_from: no_labels, terms: [{{loss: mse}}], seeds: [0]}}
  unmoved: {{init_from: no_labels, terms: [{{loss: mse}}], seeds: [0], train: {{lr: 1.0e-12, epochs: 1}}}}
train: {{epochs: 6, batch_size: 32, progress: false}}
evaluate: {{latency_repeats: 2}}
"""


def test_regression_run_end_to_end_with_report_and_export(vader_small, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(REGRESSION_RUN.format(path=vader_small))
    done = runner.invoke(app, ["run", str(config), "--out", str(tmp_path / "runs")])
    assert done.exit_code == 0, done.output
    run_dir = tmp_path / "runs" / "run"
    results = json.loads((run_dir / "results.json").read_text())
    assert results["task"] == "regression" and results["metric_names"] == ["r2", "mae", "rmse"]
    models = results["models"]
    assert set(models) == {"teacher", "baseline", "distilled", "bounded", "no_labels", "finetuned", "unmoved"}
    # init_from starts from the no-label student's selected weights: with a vanishing learning rate it stays there
    for metric in ("r2", "mae"):
        assert models["unmoved"]["metrics"][metric]["mean"] == pytest.approx(
            models["no_labels"]["metrics"][metric]["mean"], abs=1e-4)
    assert models["finetuned"]["init_from"] == "no_labels" and models["finetuned"]["teacher"] is None
    for name, model in models.items():
        assert set(model["metrics"]) == {"r2", "mae", "rmse"}
        # in the raters' units: each run's metrics recomputed from the per-row predictions the run dir keeps
        for run in model["runs"]:
            folder = f"fold{run['fold']}" + ("" if run["seed"] is None else f"-seed{run['seed']}")
            rows = np.load(run_dir / "models" / name / folder / "test_rows.npz")
            assert rows["target"].min() >= -4 and rows["target"].max() <= 4  # (VADER's scale)
            assert run["mae"] == pytest.approx(np.abs(rows["target"] - rows["predicted"]).mean())
            residual, spread = rows["target"] - rows["predicted"], rows["target"] - rows["target"].mean()
            assert run["r2"] == pytest.approx(1 - (residual ** 2).sum() / (spread ** 2).sum())
    assert models["teacher"]["metrics"]["r2"]["mean"] > 0.2  # the GRU learned the sentiment of the words
    assert models["baseline"]["terms"] == [{"term": "mse", "weight": 1.0}]
    assert results["gain"].keys() == {"r2", "mae", "rmse"}
    report = (run_dir / "report" / "report.md").read_text()
    assert "| r2 | mae | rmse |" in report and "R² (unit-free)" in report
    assert not (run_dir / "report" / "plots" / "confusion.png").exists()  # no classes, no confusion matrix
    assert "distillation" in report and " r2;" in report.replace(" r2)", " r2;")  # verdicts on R²
    exported = runner.invoke(app, ["export", str(run_dir), "--format", "onnx"])
    assert exported.exit_code == 0, exported.output
    written = json.loads((run_dir / "export" / "distilled.json").read_text())
    mean, std = json.loads((run_dir / "data_info.json").read_text())["target_scale"]
    assert written["task"] == {"name": "regression"} and (written["target_mean"], written["target_std"]) == (mean, std)
    # predict the test tweets from the export (numpy + onnxruntime): the values the run scored, in VADER's units
    exp = crossdistill.load_config(run_dir / "config.yaml")
    test = open_dataset("manifest", None, exp.data.options, exp.data.seed, REGRESSION).fold(0)["test"]
    lines = vader_small.read_text().splitlines()
    table = tmp_path / "test_tweets.jsonl"
    table.write_text("".join(json.dumps({"id": int(i), "text": lines[int(i)].split("\t")[2]}) + "\n"
                             for i in test.index))
    predicted = runner.invoke(app, ["predict", str(run_dir / "export"), str(table), "--out", str(tmp_path / "p.jsonl")])
    assert predicted.exit_code == 0, predicted.output
    values = [json.loads(line)["value"] for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    scored = np.load(run_dir / "models" / "distilled" / "fold0-seed0" / "test_rows.npz")["predicted"]
    assert np.allclose(values, scored, atol=1e-4)


def test_a_class_distribution_loss_on_a_regression_task_is_refused_before_training(vader_small, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(REGRESSION_RUN.format(path=vader_small))
    refused = runner.invoke(app, ["run", str(config), "--out", str(tmp_path / "runs"),
                                  "--set", "distill.terms=[{loss: mse}, {loss: kd}]"])
    assert refused.exit_code == 2
    assert "loss 'kd' needs a model giving classes, but task regression provides head, values" in refused.output
    assert "losses made for regression: pred_mse, teacher_bounded, mse" in refused.output
    assert not (tmp_path / "runs").exists()


def test_init_from_must_name_an_earlier_run_with_the_same_seeds(vader_small, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(REGRESSION_RUN.format(path=vader_small))
    for override, message in (("variants.finetuned.init_from=later", "init_from 'later' is not a student run listed"),
                              ("variants.finetuned.seeds=[0, 5]", "runs seeds [0], not [5]")):
        refused = runner.invoke(app, ["run", str(config), "--out", str(tmp_path / "runs"), "--set", override])
        assert refused.exit_code == 2 and message in refused.output, refused.output


def test_diagnose_measures_reach_with_r2_for_a_regression_target(vader_small, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(REGRESSION_RUN.format(path=vader_small))
    done = runner.invoke(app, ["diagnose", str(config), "--out", str(tmp_path / "runs")])
    assert done.exit_code == 0, done.output
    result = json.loads((tmp_path / "runs" / "run" / "diagnose.json").read_text())
    reach = result["student_reach"]
    assert result["task"] == "regression" and "agreement" not in reach["label"]  # R², not a class probe
    assert -1 < reach["label"]["explained"] < 1 and -1 < reach["teacher_soft_labels"]["explained"] < 1
    assert result["score"] == pytest.approx(reach["teacher_soft_labels"]["explained"]
                                            - 0.2 * reach["label"]["explained"])
