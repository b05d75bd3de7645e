"""``crossdistill tune``: find the distillation recipe that pays on the user's own data (docs/tune.md).

Per fold, an Optuna study searches the config's ``tune:`` space. A trial trains one student (one seed) on the
fold's training split and is scored on the fold's own validation split only; its per-epoch validation scores go
to a pruner through ``fit``'s observers. The teacher is trained (or loaded) once per fold and its outputs cached,
so a trial costs about one student training. The study lives in the run directory (Optuna's journal file, safe
for parallel processes; ``--storage`` takes a database URL so that several machines share one study), so a
killed or extended ``tune`` continues where it was. Finally each fold's best recipe is retrained over
``tune.final_seeds`` beside the student alone and the config's own recipe, on the same folds, and compared under
the project's paired rule (docs/statistics.md): the test split is touched by those final runs only.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crossdistill.atomic import write_text_atomic
from crossdistill.config import ConfigError, Experiment, TermSpec, VariantSpec, dump
from crossdistill.data.row_decoding import available_cores
from crossdistill.losses import LOSSES
from crossdistill.plans import experiment_task, task_term
from crossdistill.rundir import RunDir, stamp
from crossdistill.stats import paired_diff
from crossdistill.tune.space import NONE, Recipe, SearchSpace
from crossdistill.tune.study import finished, open_study, optimize_fold, optuna_module, study_storage

__all__ = ["NONE", "Recipe", "SearchSpace", "finished", "open_study", "tune"]
log = logging.getLogger("crossdistill")


def tune(exp: Experiment, out: Path, trials: int | None = None, timeout_min: float | None = None, jobs: int = 1,
         new_study: bool = False, storage_url: str | None = None) -> Path:
    """Search, per fold, then compare the chosen recipes (module docstring). Returns the run directory."""
    from crossdistill.pipeline import check, obtain_teacher, prepare_run_dir

    trials = trials if trials is not None else exp.tune.trials
    if trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {trials}")
    space = SearchSpace(exp)
    _, dataset = check(exp)
    run_dir = prepare_run_dir(exp, out)
    key = space.key(exp)
    storage = study_storage(run_dir, storage_url)
    for fold_id in exp.data.fold_ids:  # refuse a foreign study before anything trains
        open_study(storage, fold_id, key, exp.tune.pruner, exp.seeds[0], new_study)
    timeout_s = timeout_min * 60 if timeout_min else None
    for fold_id in exp.data.fold_ids:
        obtain_teacher(exp, "teacher", dataset.fold(fold_id), run_dir)  # once, before any trial reads it
        if jobs > 1:
            threads = max(1, available_cores() // jobs)
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
                futures = [pool.submit(optimize_fold, exp, run_dir, fold_id, trials, timeout_s, storage_url, threads,
                                       worker) for worker in range(jobs)]
                for future in futures:
                    future.result()
        else:
            optimize_fold(exp, run_dir, fold_id, trials, timeout_s, storage_url, torch.get_num_threads())
        log.info("fold %d: %d trials finished", fold_id, finished(open_study(storage, fold_id, key, exp.tune.pruner,
                                                                            exp.seeds[0])))
    summary = final_comparison(exp, space, run_dir, storage)
    write_summary(run_dir, summary)
    return run_dir


def _trials_of(study: Any) -> list[dict]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        rows.append({"number": t.number, "state": t.state.name.lower(), "value": t.value, "params": t.params,
                     "epochs": t.user_attrs.get("epochs", 0), "seconds": t.user_attrs.get("seconds", 0.0)})
    return rows


def _importance(study: Any) -> dict[str, float]:
    """Which parameters mattered: Optuna's fANOVA importance over the finished trials, for the parameters every
    one of them drew (a term's temperature exists only for some terms); empty when too few trials to say."""
    optuna = optuna_module()
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    shared = sorted(set.intersection(*(set(t.params) for t in complete))) if len(complete) >= 2 else []
    if not shared:
        return {}
    try:
        return {k: float(v) for k, v in optuna.importance.get_param_importances(study, params=shared).items()}
    except (RuntimeError, ValueError):  # e.g. every finished trial drew the same values
        return {}


def final_comparison(exp: Experiment, space: SearchSpace, run_dir: Path, storage: Any) -> dict:
    """Each fold's best trial (on its validation split) retrained over ``tune.final_seeds`` beside the student
    alone (KD alone without labels) and the config's recipe; paired comparisons over every (fold, seed)."""
    from crossdistill.pipeline import run

    optuna = optuna_module()
    key = space.key(exp)
    folds, rows = {}, {"tuned": {}, "reference": {}, "config": {}, "reference_same_lr": {}}
    # the reference: the student alone; without labels KD alone, or the config's recipe where KD does not apply
    kd_applies = LOSSES.get("kd").needs <= experiment_task(exp).provides
    reference = "baseline" if exp.student_labels > 0 else "kd" if kd_applies else "distilled"
    for fold_id in exp.data.fold_ids:
        study = open_study(storage, fold_id, key, exp.tune.pruner, exp.seeds[0])
        complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if not complete:
            raise RuntimeError(f"fold {fold_id}: no trial finished (all pruned or failed): raise --trials")
        best = study.best_trial
        recipe = space.recipe(best.params)
        variants = {"tuned": VariantSpec(terms=recipe.term_specs(exp) or None, train=recipe.train_overrides)}
        if reference == "kd":
            variants["kd"] = VariantSpec(terms=[TermSpec(loss="kd", kwargs={"temperature": 4.0})])
        # the reference at the tuned learning rate: what of the gain is the term's, not the learning rate's
        reference_terms = {"baseline": [task_term(exp)], "kd": [TermSpec(loss="kd", kwargs={"temperature": 4.0})],
                           "distilled": exp.distill.terms}[reference]
        variants["reference_at_tuned_lr"] = VariantSpec(terms=reference_terms, train=recipe.train_overrides)
        final = exp.model_copy(deep=True, update={
            "name": f"{exp.name}-fold{fold_id}", "seeds": list(exp.tune.final_seeds), "full_seeds": None,
            "variants": variants})
        final.data = final.data.model_copy(update={"folds": [fold_id]})
        final_dir = run(final, run_dir / "tune" / "final")
        trials = _trials_of(study)
        seconds = [json.loads(line)["seconds"] for s in final.seeds for line in
                   (RunDir(final_dir).model_dir(reference, fold_id, s)
                    / "metrics.jsonl").read_text().splitlines()]
        per_training = sum(seconds) / len(final.seeds)  # one student training, in seconds
        folds[str(fold_id)] = {"best_trial": best.number, "best_validation": best.value, "params": best.params,
                               "recipe": asdict(recipe), "recipe_yaml": recipe.config(exp), "trials": trials,
                               "importance": _importance(study),
                               "cost_trainings": sum(t["seconds"] for t in trials) / max(per_training, 1e-9),
                               "final_run": str(final_dir.relative_to(run_dir))}
        for model, slot in (("tuned", "tuned"), (reference, "reference"), ("distilled", "config"),
                            ("reference_at_tuned_lr", "reference_same_lr")):
            for seed in final.seeds:
                path = RunDir(final_dir).model_dir(model, fold_id, seed) / "test_rows.npz"
                rows[slot][(fold_id, seed)] = dict(np.load(path))
    task = experiment_task(exp)
    statistic = task.headline_statistic
    comparisons = {
        "tuned_vs_reference": paired_diff(rows["tuned"], rows["reference"], statistic, seed=0).model_dump(),
        "tuned_vs_config": paired_diff(rows["tuned"], rows["config"], statistic, seed=0).model_dump(),
        "config_vs_reference": paired_diff(rows["config"], rows["reference"], statistic, seed=0).model_dump(),
        "tuned_vs_reference_same_lr": paired_diff(rows["tuned"], rows["reference_same_lr"], statistic,
                                                  seed=0).model_dump(),
    }
    n_trials = sum(len(f["trials"]) for f in folds.values())
    return {"stamp": stamp(dump(exp) + exp.tune.model_dump_json()).model_dump(), "name": exp.name,
            "reference": {"baseline": "student alone", "kd": "KD alone", "distilled": "the config's recipe"}[reference],
            "folds": folds,
            "comparisons": comparisons, "metric": task.metric_names[0], "trials": n_trials,
            "cost_trainings": sum(f["cost_trainings"] for f in folds.values()),
            "mean_trial_cost": sum(f["cost_trainings"] for f in folds.values()) / max(n_trials, 1)}


def _interval(d: dict) -> str:
    return (f"{100 * d['mean']:+.1f} points (95% CI {100 * d['ci_low']:+.1f} to {100 * d['ci_high']:+.1f}, "
            f"{d['n_runs']} runs): {d['verdict']}")


def summary_markdown(summary: dict) -> list[str]:
    """The report's tuning section (lines of Markdown): trials, what mattered, the recipe, the comparisons."""
    lines = ["## Tuning (crossdistill tune)", "",
             f"{summary['trials']} trials over {len(summary['folds'])} fold(s), chosen on each fold's validation "
             f"split; cost {summary['cost_trainings']:.1f} student trainings ({summary['mean_trial_cost']:.2f} per "
             "trial, pruned trials stopping early).", ""]
    c = summary["comparisons"]
    lines += [f"- tuned vs {summary['reference']}: {_interval(c['tuned_vs_reference'])}",
              f"- tuned vs the config's own recipe: {_interval(c['tuned_vs_config'])}",
              f"- the config's recipe vs {summary['reference']}: {_interval(c['config_vs_reference'])}",
              f"- tuned vs {summary['reference']} at the tuned learning rate (the term's own share of the gain): "
              f"{_interval(c['tuned_vs_reference_same_lr'])}", ""]
    for fold, f in summary["folds"].items():
        mattered = ", ".join(f"{k} {v:.2f}" for k, v in f["importance"].items()) or "too few trials to say"
        lines += [f"### Fold {fold}: trial {f['best_trial']} chosen (validation {f['best_validation']:.4f}); "
                  f"importance: {mattered}", "",
                  "| trial | state | validation | epochs | seconds | recipe |", "|---|---|---|---|---|---|"]
        for t in f["trials"]:
            value = "-" if t["value"] is None else f"{t['value']:.4f}"
            params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in t["params"].items())
            lines.append(f"| {t['number']} | {t['state']} | {value} | {t['epochs']} | {t['seconds']:.1f} | "
                         f"{params} |")
        lines += ["", "Chosen recipe, ready to paste into a config:", "", "```yaml", f["recipe_yaml"].rstrip(),
                  "```", ""]
    return lines


def write_summary(run_dir: Path, summary: dict) -> None:
    """tune.json, tune.md and the history plot in ``run_dir/tune``; each final run's report gains the section."""
    from crossdistill import report
    from crossdistill.report.plots import tuning_history

    out = run_dir / "tune"
    write_text_atomic(out / "tune.json", json.dumps(summary, indent=1))
    write_text_atomic(out / "tune.md", "\n".join(summary_markdown(summary)) + "\n")
    tuning_history(summary, out / "history.png")
    for fold in summary["folds"].values():
        final_dir = run_dir / fold["final_run"]
        (final_dir / "tune").mkdir(exist_ok=True)
        for name in ("tune.md", "history.png"):
            shutil.copy(out / name, final_dir / "tune" / name)
        report.build(final_dir)
    if RunDir(run_dir).results.is_file():  # a `run` of the same config: its report gains the section too
        report.build(run_dir)
