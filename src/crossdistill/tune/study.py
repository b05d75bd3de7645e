"""The Optuna side of ``crossdistill tune``: the studies' storage, one study per fold (refused when made for
another config or space), the pruner, and the trials: each trains one student on the fold and reports each
epoch's validation score through ``fit``'s observers."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from crossdistill.config import ConfigError, Experiment
from crossdistill.data import open_dataset
from crossdistill.distill import resolve_terms
from crossdistill.plans import StudentPlan, experiment_task
from crossdistill.tune.space import NONE, Recipe, SearchSpace


def optuna_module() -> Any:
    """Optuna, imported on use (an optional dependency), quiet but for warnings."""
    try:
        import optuna
    except ImportError:
        raise ConfigError("crossdistill tune runs on Optuna: pip install 'crossdistill[tune]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _pruner(name: str) -> Any:
    optuna = optuna_module()
    if name == "median":  # after 3 finished trials, from each trial's 2nd epoch
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    return optuna.pruners.NopPruner()


def study_storage(run_dir: Path, url: str | None) -> Any:
    """The studies' storage: a database URL (sqlite:///..., postgresql://...: Optuna's own distributed mode, for
    several machines), else a journal file in the run directory (safe for the processes of ``--jobs``)."""
    if url:
        return url
    optuna_module()
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path = run_dir / "tune" / "study.journal"
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


def open_study(storage: Any, fold: int, key: str, pruner: str, seed: int, new_study: bool = False,
               worker: int = 0) -> Any:
    """The fold's study (created, or continued when it was made for the same experiment and space). Its sampler
    is seeded by ``seed``, the ``worker`` process and the trials already in the study, so that parallel processes
    and a continued study do not draw the same parameters again."""
    optuna = optuna_module()
    name = f"fold{fold}"
    known = {s.study_name: s for s in optuna.get_all_study_summaries(storage)}
    if name in known and known[name].user_attrs.get("key") != key:
        if not new_study:
            raise ConfigError(f"the study {name!r} in this run was made for another config or search space "
                              f"(key {known[name].user_attrs.get('key')}, now {key}): pass --new-study to start "
                              "afresh, or tune into another --out")
        optuna.delete_study(study_name=name, storage=storage)
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize", load_if_exists=True,
                                pruner=_pruner(pruner))
    study.sampler = optuna.samplers.TPESampler(seed=seed * 1_000_003 + worker * 7919 + len(study.trials))
    study.set_user_attr("key", key)
    return study


def finished(study: Any) -> int:
    optuna = optuna_module()
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=states))


def trial_plan(exp: Experiment, recipe: Recipe, name: str) -> StudentPlan:
    terms = resolve_terms(recipe.term_specs(exp), f"tune ({name})")
    teacher = "teacher" if recipe.term != NONE else None
    plan = StudentPlan(name, exp.student_labels, terms, teacher, [exp.seeds[0]], train=recipe.train_overrides)
    plan.select_on = exp.train_for(plan.train).select_on
    return plan


def _objective(exp: Experiment, space: SearchSpace, fold: Any, teachers: dict, run_dir: Path) -> Any:
    from crossdistill.pipeline import train_student

    optuna = optuna_module()

    def run_trial(trial: Any) -> float:
        recipe = space.suggest(trial)
        plan = trial_plan(exp, recipe, f"trial{trial.number}")
        model_dir = run_dir / "tune" / f"fold{fold.fold}" / f"trial{trial.number}"
        shutil.rmtree(model_dir, ignore_errors=True)  # (a trial number is never reused; a crash's leftovers)
        tic = time.perf_counter()

        def report(row: dict) -> None:
            trial.report(row["val_score"], row["epoch"])
            trial.set_user_attr("epochs", row["epoch"] + 1)
            trial.set_user_attr("seconds", time.perf_counter() - tic)
            if trial.should_prune():
                raise optuna.TrialPruned(f"epoch {row['epoch']}: validation {row['val_score']:.4f}")

        train_student(exp, plan, fold, teachers, teachers["teacher"], exp.seeds[0], model_dir, observers=[report])
        trial.set_user_attr("seconds", time.perf_counter() - tic)
        return float(json.loads((model_dir / "fit.json").read_text())["best_score"])

    return run_trial


def optimize_fold(exp: Experiment, run_dir: Path, fold_id: int, trials: int, timeout_s: float | None,
              storage_url: str | None, threads: int, worker: int = 0) -> int:
    """Run trials on the fold's study until it holds ``trials`` finished ones (or the timeout). In a job process
    as in the main one: the teacher is already trained (loaded from the run directory)."""
    from crossdistill.pipeline import obtain_teacher

    optuna = optuna_module()
    torch.set_num_threads(threads)
    space = SearchSpace(exp)
    dataset = open_dataset(exp.data.dataset, exp.data.root, exp.data.options, exp.data.seed, experiment_task(exp),
                           **exp.data.reading())
    fold = dataset.fold(fold_id)
    teachers = {"teacher": obtain_teacher(exp, "teacher", fold, run_dir)}
    study = open_study(study_storage(run_dir, storage_url), fold_id, space.key(exp), exp.tune.pruner, exp.seeds[0],
                       worker=worker)
    # (with several processes a study may end a trial or two past ``trials``: those running when it is reached)
    stop = optuna.study.MaxTrialsCallback(trials, states=(optuna.trial.TrialState.COMPLETE,
                                                          optuna.trial.TrialState.PRUNED))
    if finished(study) < trials:
        study.optimize(_objective(exp, space, fold, teachers, run_dir), timeout=timeout_s, callbacks=[stop],
                       catch=())
    return finished(study)


