"""The design's applications, each on data no one here wrote: repeated seeded splits, the built-in tables
(scikit-learn's medical records, the Emoji Sentiment Ranking joined to Noto emoji, FSDD with transcripts),
Lopez-Paz et al.'s synthetic privileged-information experiments, and every shipped case config run end to end
on a slice."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from crossdistill import config, pipeline
from crossdistill.config import ConfigError
from crossdistill.data import open_dataset
from crossdistill.data.synthetic_lupi import LupiOptions, draw
from crossdistill.tasks import build_task

ROOT = Path(__file__).resolve().parents[1]
CLASSIFICATION, REGRESSION = build_task("classification"), build_task("regression")
MEAN = ["mean radius", "mean texture"]


def breast_cancer(repeats: int = 1, **extra):
    options = {"path": "breast_cancer", "label": "diagnosis", "ratios": [0.6, 0.2, 0.2], "repeats": repeats,
               "modalities": {"mean": {"kind": "tabular", "numeric": MEAN}}} | extra
    return open_dataset("sklearn", None, options, 0, CLASSIFICATION)


def test_sklearn_tables_are_read_as_manifests():
    data = breast_cancer()
    assert len(data.rows) == 569 and data.classes == ["benign", "malignant"]
    assert sorted(np.bincount(data.labels).tolist()) == [212, 357]  # the data set's own class counts
    diabetes = open_dataset("sklearn", None, {"path": "diabetes", "label": "progression", "modalities": {
        "visit": {"kind": "tabular", "numeric": ["age", "sex", "bmi", "bp"]}}}, 0, REGRESSION)
    assert len(diabetes.rows) == 442 and diabetes.rows[0]["bmi"] == pytest.approx(32.1)  # unscaled values
    with pytest.raises(ConfigError, match="'iris' is not one of breast_cancer, diabetes"):
        open_dataset("sklearn", None, {"path": "iris", "modalities": {}}, 0, CLASSIFICATION)


def test_repeats_make_seeded_stratified_splits_each_a_fold():
    data = breast_cancer(repeats=3)
    assert data.num_folds == 3
    tests = [set(data.fold(k)["test"].index.tolist()) for k in range(3)]
    assert 112 <= len(tests[0]) <= 115 and tests[0] != tests[1] != tests[2]
    for k in range(3):
        fold = data.fold(k)
        assert fold.fold == k
        assert abs(float(fold["test"].target.float().mean()) - 212 / 569) < 0.02  # stratified
        assert not set(fold["train"].index.tolist()) & set(fold["test"].index.tolist())
    assert data.fold(1).fingerprint != data.fold(0).fingerprint
    again = breast_cancer(repeats=3)
    assert set(again.fold(2)["test"].index.tolist()) == tests[2]  # seeded
    with pytest.raises(ConfigError, match="repeats > 1 needs random splits"):
        breast_cancer(repeats=2, split_column="diagnosis")


def test_emoji_sentiment_joins_the_ranking_to_the_pictures_by_code_point():
    options = {"label": "sentiment", "modalities": {"text": {"kind": "text", "column": "name"}}}
    data = open_dataset("emoji-sentiment", None, options, 0, REGRESSION)
    everything = open_dataset("emoji-sentiment", None, options | {"min_occurrences": 1}, 0, REGRESSION)
    assert 600 < len(data.rows) < len(everything.rows) <= 736
    assert all(row["occurrences"] >= 5 for row in data.rows)
    joy = next(row for row in data.rows if row["unified"] == "1F602")  # FACE WITH TEARS OF JOY
    assert joy["name"] == "FACE WITH TEARS OF JOY"
    assert joy["sentiment"] == pytest.approx((6845 + 1 - 3614 - 1) / (14622 + 3), abs=1e-4)  # Laplace p+ - p-


def test_fsdd_transcripts_pair_every_clip_with_its_digit_word():
    options = {"label": "digit", "modalities": {"text": {"kind": "text", "column": "transcript"}}}
    data = open_dataset("fsdd-transcripts", None, options, 0, CLASSIFICATION)
    assert len(data.rows) == 3000
    words = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
    assert all(words[int(r["audio"].split("/")[1][0])] == r["transcript"] for r in data.rows)
    groups = data.split_groups()
    assert len(groups["test"]) == 1 and not set(groups["test"]) & set(groups["train"])  # speaker-disjoint
    repeated = open_dataset("fsdd-transcripts", None, options | {"repeats": 3}, 0, CLASSIFICATION)
    for fold in range(3):  # each seeded cut keeps every speaker in one split
        cut = repeated.split_groups(fold)
        assert not set(cut["test"]) & (set(cut["train"]) | set(cut["val"])) and cut["train"]
    with pytest.raises(ConfigError, match="holds no recordings/ folder"):
        open_dataset("fsdd-transcripts", None, options | {"path": "mfeat"}, 0, CLASSIFICATION)


def test_lopez_paz_generators_follow_the_papers_definitions():
    rng = np.random.default_rng(0)
    a, relevant = rng.standard_normal(50), np.array([7, 3, 41])
    relevant_case = draw("relevant_features", a, relevant, 500, np.random.default_rng(1))
    assert np.array_equal(relevant_case["x_star"], relevant_case["x"][:, relevant])
    assert (relevant_case["y"] == (relevant_case["x_star"].astype(np.float64) @ a[:3] > 0)).mean() > 0.999
    clean = draw("clean_labels", a, relevant, 2000, np.random.default_rng(2))
    assert np.allclose(clean["x_star"][:, 0], clean["x"].astype(np.float64) @ a, atol=1e-4)
    agree = ((clean["x_star"][:, 0] > 0) == clean["y"]).mean()  # labels flipped by N(0, 1) noise near the boundary
    assert 0.85 < agree < 0.98
    features = draw("clean_features", a, relevant, 500, np.random.default_rng(3))
    assert features["x"].shape == features["x_star"].shape == (500, 50)
    per_sample = draw("sample_relevant_features", a, relevant, 500, np.random.default_rng(4))
    assert per_sample["x_star"].shape == (500, 3)
    assert LupiOptions().n_test == 10000


def _run(path: str, tmp_path: Path, overrides: list[str]) -> dict:
    exp = config.load(ROOT / path, ["train.progress=false", "evaluate.latency_repeats=1", *overrides])
    return json.loads((pipeline.run(exp, tmp_path) / "results.json").read_text())


def test_lopez_paz_relevant_features_reproduces_the_papers_finding(tmp_path):
    """Experiment 3 on two draws: the student of 50 regular features distilled from the 3-feature teacher beats
    the same student on the labels (paper: 97 vs 89%)."""
    results = _run("configs/privileged/lopez_paz_relevant_features.yaml", tmp_path, ["data.folds=2"])
    models = results["models"]
    assert models["teacher"]["metrics"]["accuracy"]["mean"] > 0.93
    assert models["distilled"]["metrics"]["accuracy"]["mean"] > models["baseline"]["metrics"]["accuracy"]["mean"] + 0.04
    assert results["comparisons"][0]["paired_diff"]["n_runs"] == 2


@pytest.mark.parametrize("path, overrides", [
    ("configs/medical/breast_cancer.yaml", ["data.folds=2", "data.options.repeats=2", "seeds=[0]"]),
    ("configs/medical/diabetes.yaml", ["data.folds=1", "data.options.repeats=1", "seeds=[0]"]),
    ("configs/emoji_sentiment/classes_name_student.yaml", ["data.folds=1", "data.options.repeats=1", "seeds=[0]"]),
    ("configs/emoji_sentiment/classes_picture_student.yaml", ["data.folds=1", "data.options.repeats=1", "seeds=[0]"]),
    ("configs/emoji_sentiment/score_name_student.yaml", ["data.folds=1", "data.options.repeats=1", "seeds=[0]"]),
    ("configs/emoji_sentiment/score_picture_student.yaml", ["data.folds=1", "data.options.repeats=1", "seeds=[0]"]),
    ("configs/slu/fsdd_text_teacher.yaml", ["data.folds=1", "data.options.repeats=1", "seeds=[0]"]),
], ids=lambda v: Path(v).stem if isinstance(v, str) else "")
def test_application_configs_run_end_to_end_on_a_slice(path, overrides, tmp_path):
    slim = ["train.epochs=2", "teacher.train.epochs=2", "variants=null"]
    results = _run(path, tmp_path, [*overrides, *slim])
    folds = int(overrides[0].split("=")[1])
    assert {"teacher", "baseline", "distilled"} <= set(results["models"])
    assert len(results["models"]["distilled"]["runs"]) == folds
    metric = "mae" if "score" in path or "diabetes" in path else "accuracy"
    assert np.isfinite(results["models"]["distilled"]["metrics"][metric]["mean"])
    assert results["comparisons"][0]["paired_diff"]["n_runs"] == folds  # (distilled vs alone, paired)


def _engines_or_skip(*engines: str) -> None:
    """The text-to-speech engines (.ci/run installs them); a CI machine without them is a failure, not a skip."""
    import os
    import shutil

    from crossdistill.data.spoken_commands import PROGRAMS

    missing = [e for e in engines if shutil.which(PROGRAMS[e]) is None]
    if missing and os.environ.get("CI"):
        pytest.fail(f"CI lacks the text-to-speech engines {missing} (.ci/run installs them)")
    if missing:
        pytest.skip(f"no {', '.join(missing)} here (apt-get install espeak-ng flite)")


def test_spoken_commands_are_deterministic_and_described(tmp_path):
    _engines_or_skip("espeak-ng", "flite")
    from crossdistill.data.spoken_commands import INTENTS, make_spoken_commands

    first = make_spoken_commands(tmp_path / "a", ["espeak-ng", "flite"], voices=None, phrasings=1)
    rows = first.read_text().splitlines()
    assert len(rows) == 1 + 19 * len(INTENTS) and len(INTENTS) == 30  # 14 espeak-ng + 5 flite voices
    again = make_spoken_commands(tmp_path / "b", ["flite"], voices=1, phrasings=1)
    for row in again.read_text().splitlines()[1:3]:
        audio = row.split(",")[0]
        assert (tmp_path / "a" / audio).read_bytes() == (tmp_path / "b" / audio).read_bytes()
    assert "eSpeak NG (GPL-3.0" in (tmp_path / "a" / "LICENCE.md").read_text()
    with pytest.raises(ConfigError, match="unknown engines"):
        make_spoken_commands(tmp_path / "c", ["say"])


def test_spoken_commands_config_runs_on_a_slice(tmp_path):
    _engines_or_skip("espeak-ng")
    from crossdistill.data.spoken_commands import make_spoken_commands

    table = make_spoken_commands(tmp_path / "commands", ["espeak-ng"], voices=5, phrasings=1)
    results = _run("configs/slu/spoken_commands.yaml", tmp_path / "out", [
        f"data.options.path={table}", "data.folds=1", "data.options.repeats=1", "seeds=[0]", "train.epochs=2",
        "teacher.train.epochs=40", "teacher.train.lr=0.01", "variants=null"])
    assert results["models"]["teacher"]["metrics"]["accuracy"]["mean"] > 0.2  # 30 intents; the transcript decides
    assert len(results["models"]["distilled"]["runs"]) == 1
