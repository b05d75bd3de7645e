"""crossdistill tune on a tiny search space: a whole run in parallel processes, a killed and resumed study,
pruning, and the bad inputs refused before anything trains."""

import json
from pathlib import Path

import pytest
import yaml

from crossdistill.config import ConfigError, load
from crossdistill.tune import SearchSpace, finished, open_study, tune
from crossdistill.tune.study import optimize_fold, study_storage

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TINY_TUNE = ["data.folds=[0]", "data.augment=null", "train.epochs=2", "teacher.train.epochs=1",
             "tune.terms=[none, kd]", "tune.pruner=none", "tune.final_seeds=[0, 1]"]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CROSSDISTILL_CACHE", str(tmp_path / "cache"))


def test_tune_searches_on_validation_then_compares_on_every_seed(tiny_config, tmp_path, cache):
    exp = load(tiny_config, TINY_TUNE)
    run_dir = tune(exp, tmp_path / "runs", trials=3, jobs=2)
    summary = json.loads((run_dir / "tune" / "tune.json").read_text())
    fold = summary["folds"]["0"]
    states = [t["state"] for t in fold["trials"]]  # (two processes may run one trial past the budget)
    assert set(states) == {"complete"} and 3 <= len(states) <= 4 and summary["trials"] == len(states)
    assert len({json.dumps(t["params"], sort_keys=True) for t in fold["trials"]}) == len(states)  # no repeats
    best = max(fold["trials"], key=lambda t: t["value"])
    assert fold["best_trial"] == best["number"] and fold["best_validation"] == best["value"]
    recipe = yaml.safe_load(fold["recipe_yaml"])
    assert recipe["distill"]["terms"][0]["loss"] == "ce" and recipe["train"]["lr"] > 0
    for name in ("tuned_vs_reference", "tuned_vs_config", "config_vs_reference", "tuned_vs_reference_same_lr"):
        assert summary["comparisons"][name]["n_runs"] == 2 and summary["comparisons"][name]["verdict"] == "no verdict"
    assert summary["reference"] == "student alone" and summary["cost_trainings"] > 0
    assert summary["stamp"]["config_hash"]
    final = run_dir / fold["final_run"]
    assert {p.name for p in (final / "models").iterdir()} >= {"baseline", "distilled", "tuned", "reference_at_tuned_lr",
                                                         "teacher"}
    html = (final / "report" / "report.html").read_text()
    assert "Tuning (crossdistill tune)" in html and "<pre>distill:" in html  # the recipe, ready to paste
    assert (run_dir / "tune" / "history.png").stat().st_size > 1000
    assert "(plots/tuning.png)" in (final / "report" / "report.md").read_text()
    assert (final / "report" / "plots" / "tuning.png").is_file()


def test_a_killed_study_continues_and_pruned_trials_stop_early(tiny_config, tmp_path, cache, monkeypatch):
    import optuna

    import crossdistill.tune.study as tune_module
    from crossdistill.data import open_dataset
    from crossdistill.pipeline import obtain_teacher, prepare_run_dir
    from crossdistill.plans import experiment_task

    exp = load(tiny_config, TINY_TUNE)
    run_dir = prepare_run_dir(exp, tmp_path / "runs")
    fold = open_dataset("av-digits", None, {}, 0, experiment_task(exp)).fold(0)
    obtain_teacher(exp, "teacher", fold, run_dir)
    assert optimize_fold(exp, run_dir, 0, 1, None, None, 1) == 1
    real = tune_module._objective

    def killed_on_the_next_trial(*args):
        def run_trial(trial):
            raise KeyboardInterrupt
        return run_trial

    monkeypatch.setattr(tune_module, "_objective", killed_on_the_next_trial)
    with pytest.raises(KeyboardInterrupt):
        optimize_fold(exp, run_dir, 0, 3, None, None, 1)
    monkeypatch.setattr(tune_module, "_objective", real)
    study = open_study(study_storage(run_dir, None), 0, SearchSpace(exp).key(exp), "none", 0)
    first = study.trials[0].params
    assert optimize_fold(exp, run_dir, 0, 3, None, None, 1) == 3  # continues: 2 more, the first kept
    study = open_study(study_storage(run_dir, None), 0, SearchSpace(exp).key(exp), "none", 0)
    assert study.trials[0].params == first and finished(study) == 3
    # a pruner that stops every trial at its first validation: pruned after 1 of 2 epochs, never finished
    monkeypatch.setattr(tune_module, "_pruner", lambda name: optuna.pruners.ThresholdPruner(lower=2.0))
    assert optimize_fold(exp, run_dir, 0, 4, None, None, 1) == 4
    study = open_study(study_storage(run_dir, None), 0, SearchSpace(exp).key(exp), "none", 0)
    last = study.trials[-1]
    assert last.state == optuna.trial.TrialState.PRUNED and last.user_attrs["epochs"] == 1


def test_a_study_of_another_search_space_is_refused_unless_new(tiny_config, tmp_path, cache):
    exp = load(tiny_config, TINY_TUNE)
    other = load(tiny_config, [*TINY_TUNE[:-3], "tune.terms=[none, dist]", "tune.pruner=none"])
    storage = study_storage(tmp_path, None)
    open_study(storage, 0, SearchSpace(exp).key(exp), "none", 0)
    with pytest.raises(ConfigError, match="made for another config or search space.*--new-study"):
        open_study(storage, 0, SearchSpace(other).key(other), "none", 0)
    assert open_study(storage, 0, SearchSpace(other).key(other), "none", 0, new_study=True).user_attrs["key"] == (
        SearchSpace(other).key(other))


@pytest.mark.parametrize("overrides, message", [
    (["tune.terms=[]"], "no candidate term"),
    (["tune.terms=[none, kdd]"], "unknown loss 'kdd'"),
    (["tune.terms=[none, ce]"], "not a distillation term"),
    (["tune.terms=[none, fitnet]"], "reads a feature map"),
    (["tune.terms=[none, kd]", "tune.options={kd: {beta: [1, 8]}}"], "'kd' has no option beta"),
    (["tune.terms=[none, dkd]", "tune.options={dist: {beta: [1, 8]}}"], "not one of tune.terms"),
    (["student_labels=0", "tune.terms=[none, kd]"], "nothing to learn from"),
    (["tune.weight=[0, 1]"], "low end must be > 0"),
    (["tune.train={epochs: [1, 2]}"], "not a trainer option the search can draw"),
])
def test_bad_search_spaces_are_named_before_anything_trains(tiny_config, overrides, message):
    with pytest.raises(ConfigError, match=message):
        SearchSpace(load(tiny_config, overrides))


def test_contradictory_ranges_and_a_budget_of_no_trial_are_refused(tiny_config, tmp_path):
    with pytest.raises(ConfigError, match=r"\[low, high\]"):
        load(tiny_config, ["tune.lr=[0.01, 0.001]"])
    with pytest.raises(ConfigError, match="--trials must be at least 1"):
        tune(load(tiny_config, TINY_TUNE), tmp_path / "runs", trials=0)
    assert not (tmp_path / "runs").exists()  # refused before a run directory was made


def test_the_command_names_a_bad_budget_and_a_foreign_study(tiny_config, tmp_path):
    from typer.testing import CliRunner

    from crossdistill.cli import app

    result = CliRunner().invoke(app, ["tune", str(tiny_config), "--trials", "0", "--out", str(tmp_path / "runs")])
    assert result.exit_code == 2 and "--trials must be at least 1" in result.output
    result = CliRunner().invoke(app, ["tune", str(tiny_config), "--set", "tune.terms=[none, kdd]"])
    assert result.exit_code == 2 and "unknown loss 'kdd'" in result.output and "kd" in result.output


def test_a_trial_draws_the_term_its_options_and_trainer_options_into_a_pasteable_recipe(tiny_config):
    import optuna

    exp = load(tiny_config, ["tune.terms=[none, dkd]", "tune.options={dkd: {beta: [1, 8]}}",
                             "tune.train={weight_decay: [1e-5, 1e-2]}"])
    space = SearchSpace(exp)
    params = {"term": "dkd", "lr": 0.002, "train.weight_decay": 0.0003, "weight": 2.0, "temperature": 3.0,
              "dkd.beta": 4.0}
    recipe = space.suggest(optuna.trial.FixedTrial(params))
    assert (recipe.term, recipe.kwargs, recipe.train_overrides) == (
        "dkd", {"temperature": 3.0, "beta": 4.0}, {"lr": 0.002, "weight_decay": 0.0003})
    assert space.recipe(params) == recipe  # a finished trial's recipe is the one it trained
    pasted = yaml.safe_load(recipe.config(exp))
    assert pasted["train"] == {"lr": 0.002, "weight_decay": 0.0003}
    assert pasted["distill"]["terms"] == [{"loss": "ce"}, {"loss": "dkd", "weight": 2.0,
                                                           "kwargs": {"temperature": 3.0, "beta": 4.0}}]
    alone = space.suggest(optuna.trial.FixedTrial({"term": "none", "lr": 0.001, "train.weight_decay": 0.001}))
    assert alone.term_specs(exp)[0].loss == "ce" and len(alone.term_specs(exp)) == 1


def test_outside_classification_the_terms_must_be_listed():
    regression = load(CONFIGS / "vader" / "minilm_regression.yaml")
    with pytest.raises(ConfigError, match="task regression needs them listed.*pred_mse"):
        SearchSpace(regression)
    assert SearchSpace(load(CONFIGS / "vader" / "minilm_regression.yaml", ["tune.terms=[none, pred_mse]"])).terms == [
        "none", "pred_mse"]
