"""``crossdistill tune`` against fixed recipes, in the methods benchmark's nine cross-modal settings plus two
whose modalities are paired per instance (mfeat: pix + kar -> fou; Noto emoji: image + name -> image).

Per setting: one ``tune`` (at most ``--trials`` trials, median pruning, the default search space, chosen on the
fold's validation split), whose final runs retrain the chosen recipe, the student alone and KD with its default
settings (the config's recipe) over seeds 0-4; then the chosen recipe against the best fixed method of the methods
benchmark chosen on validation (its runs: same fold, data, teacher, epochs and seeds 0-2, paired per seed). Every
comparison under the paired rule (docs/statistics.md). The nine settings reuse the methods benchmark's teachers
(``benchmarks/methods.py`` must have run into ``--methods-runs``).

Writes ``benchmarks/results/tune.json``; docs/tune.md's "Measured" block is rendered from it
(``benchmarks/published.py``). Settings run in ``--workers`` processes of one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from crossdistill.atomic import write_text_atomic  # noqa: E402
from crossdistill.config import Experiment, load  # noqa: E402
from crossdistill.rundir import stamp  # noqa: E402
from crossdistill.stats import holm, mean_of, paired_diff  # noqa: E402
from crossdistill.tune import tune  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from methods import BUDGETS, EPOCHS, SETTINGS, base_experiment, chosen_method, slug, train_teacher  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
ACCURACY = mean_of("correct")
KD = {"loss": "kd", "kwargs": {"temperature": 4.0}}
TUNE = {"final_seeds": [0, 1, 2, 3, 4], "pruner": "median"}


def methods_setting(name: str, budget: float, teacher: Path, trials: int) -> Experiment:
    """A methods-benchmark setting as a config: its data, teacher (the benchmark's, loaded), student and training;
    the config's own recipe is KD with its default settings."""
    no_labels = budget == 0
    raw = base_experiment(f"{slug(name)}-{round(budget * 100)}", SETTINGS[name], EPOCHS) | {
        "teacher": {**SETTINGS[name]["teacher"], "checkpoint": str(teacher)}, "student_labels": budget,
        "distill": {"terms": [KD] if no_labels else [{"loss": "ce"}, KD], "cache": True},
        "train": {"epochs": EPOCHS, "batch_size": 128, "lr": 0.004, "progress": False,
                  "select_on": "teacher" if no_labels else "labels"},
        "tune": {**TUNE, "trials": trials}}
    return Experiment.model_validate(raw)


def instance_settings(trials: int) -> dict[str, Experiment]:
    """The two settings paired per instance, from the shipped configs (variants dropped, KD as the recipe)."""
    sets = [f"tune={json.dumps({**TUNE, 'trials': trials})}", "variants={}", "seeds=[0, 1, 2]"]
    mfeat = load(ROOT / "configs" / "mfeat" / "all_views_to_two.yaml", [
        *sets, "teacher.encoders={pix: {name: mlp, hidden: [64]}, kar: {name: mlp, hidden: [64]}}",
        "student.encoders={fou: {name: mlp, hidden: [32]}}", "name=mfeat-pix+kar-to-fou"])
    emoji = load(ROOT / "configs" / "emoji" / "image_student.yaml", [*sets, "name=emoji-image+name-to-image"])
    return {"mfeat pix+kar->fou @ 10% labels": mfeat, "emoji image+name->image @ 25% labels": emoji}


def run_setting(key: str, exp: Experiment, out: str) -> dict:
    torch.set_num_threads(1)
    tic = time.perf_counter()
    run_dir = tune(exp, Path(out))
    summary = json.loads((run_dir / "tune" / "tune.json").read_text())
    summary["run_dir"], summary["wall_s"], summary["key"] = str(run_dir), time.perf_counter() - tic, key
    return summary


def test_rows_of(run_root: Path, model: str, fold: int, seeds: list[int]) -> dict:
    return {(fold, s): dict(np.load(run_root / "models" / model / f"fold{fold}-seed{s}" / "test_rows.npz"))
            for s in seeds}


def best_fixed(key: str, methods: dict, methods_runs: Path, summary: dict) -> dict | None:
    """The methods benchmark's method chosen on validation in this setting, against the tuned recipe (paired per
    seed over the seeds both have), and against the reference; None where the setting is not in it."""
    block = methods["settings"].get(key)
    if block is None:
        return None
    entries = block["methods"]
    chosen = chosen_method(block)
    model = {"kd": "distilled", "alone": "baseline"}.get(chosen, chosen)
    setting, budget = key.split(" @ ")
    stem = f"{slug(setting)}-{budget.split('%')[0]}"
    candidates = [methods_runs / stem, *sorted(methods_runs.glob(f"{stem}-*"))]  # (a later merge: <stem>-<hash>)
    folders = [d for d in candidates if (d / "models" / model).is_dir()]
    fold = int(next(iter(summary["folds"])))
    final = Path(summary["run_dir"]) / summary["folds"][str(fold)]["final_run"]
    fixed = test_rows_of(folders[0], model, fold, methods["seeds"])
    tuned = test_rows_of(final, "tuned", fold, methods["seeds"])
    return {"method": chosen, "gain_over_reference": entries[chosen].get("paired_diff"),
            "tuned_vs_best_fixed": paired_diff(tuned, fixed, ACCURACY, seed=0).model_dump(),
            "rows": (tuned, fixed)}


MOONSHOT = "av-digits image->audio"


def moonshot(out: Path, trials: int, jobs: int) -> None:
    """The moonshot: av-digits with every audio label over all six speakers (each fold trains its own teacher),
    tuned per fold with ``jobs`` processes; tuned vs the student alone and vs KD's defaults over (fold, seed)."""
    tic = time.perf_counter()
    raw = base_experiment("moonshot-av-digits-100", SETTINGS[MOONSHOT], EPOCHS) | {
        "data": {"dataset": "av-digits", "folds": 6}, "student_labels": 1.0,
        "distill": {"terms": [{"loss": "ce"}, KD], "cache": True},
        "train": {"epochs": EPOCHS, "batch_size": 128, "lr": 0.004, "progress": False},
        "tune": {**TUNE, "trials": trials}}
    exp = Experiment.model_validate(raw)
    run_dir = tune(exp, out, jobs=jobs)
    summary = json.loads((run_dir / "tune" / "tune.json").read_text())
    c = summary["comparisons"]
    result = {"stamp": stamp(json.dumps([MOONSHOT, trials, TUNE, "moonshot"])).model_dump(), "folds": len(
        summary["folds"]), "trials": summary["trials"], "tuned_vs_alone": c["tuned_vs_reference"],
              "tuned_vs_kd_default": c["tuned_vs_config"], "kd_default_vs_alone": c["config_vs_reference"],
              "tuned_vs_alone_same_lr": c["tuned_vs_reference_same_lr"],
              "chosen": {f: v["params"] for f, v in summary["folds"].items()},
              "mean_trial_cost": summary["mean_trial_cost"], "wall_s": time.perf_counter() - tic}
    write_text_atomic(RESULTS / "tune_moonshot.json", json.dumps(result, indent=1))
    print(json.dumps({k: result[k]["mean"] for k in ("tuned_vs_alone", "tuned_vs_kd_default")}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/tune-benchmark"))
    parser.add_argument("--methods-runs", type=Path, default=Path("runs/methods-benchmark"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--only", default="", help="run only the settings whose name contains this (a smoke run; "
                        "writes tune-smoke.json)")
    parser.add_argument("--moonshot", action="store_true", help="only the moonshot (all six av-digits speakers, "
                        "every label): writes tune_moonshot.json")
    args = parser.parse_args()
    if args.moonshot:
        return moonshot(args.out, args.trials, args.workers)
    tic = time.perf_counter()
    settings = {f"{name} @ {round(b * 100)}% labels": methods_setting(name, b, train_teacher(name, args.methods_runs,
                                                                                              EPOCHS), args.trials)
                for name in SETTINGS for b in BUDGETS}
    settings |= instance_settings(args.trials)
    settings = {k: v for k, v in settings.items() if args.only in k}
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        futures = {key: pool.submit(run_setting, key, exp, str(args.out)) for key, exp in settings.items()}
        summaries = {key: f.result() for key, f in futures.items()}
    methods = json.loads((RESULTS / "methods.json").read_text())
    report, pooled_tuned, pooled_fixed = {}, {}, {}
    for key, summary in summaries.items():
        fixed = best_fixed(key, methods, args.methods_runs, summary)
        c = summary["comparisons"]
        report[key] = {"reference": summary["reference"], "tuned_vs_reference": c["tuned_vs_reference"],
                       "tuned_vs_reference_same_lr": c["tuned_vs_reference_same_lr"],
                       "tuned_vs_kd_default": c["tuned_vs_config"], "kd_default_vs_reference": c["config_vs_reference"],
                       "chosen": {f: v["params"] for f, v in summary["folds"].items()},
                       "trials": summary["trials"], "cost_trainings": summary["cost_trainings"],
                       "mean_trial_cost": summary["mean_trial_cost"], "wall_s": summary["wall_s"]}
        if fixed is not None:
            tuned_rows, fixed_rows = fixed.pop("rows")
            pooled_tuned |= {(key, s): r for (_, s), r in tuned_rows.items()}
            pooled_fixed |= {(key, s): r for (_, s), r in fixed_rows.items()}
            report[key]["best_fixed"] = fixed
    verdicts = [report[k]["tuned_vs_reference"]["p_value"] for k in report]
    for k, reject in zip(report, holm(verdicts), strict=True):
        d = report[k]["tuned_vs_reference"]
        report[k]["tuned_vs_reference_holm"] = d["verdict"] if reject or d["verdict"] == "no verdict" else (
            "no clear difference")
    overall = paired_diff(pooled_tuned, pooled_fixed, ACCURACY, seed=0).model_dump()
    result = {"stamp": stamp(json.dumps([sorted(settings), args.trials, TUNE])).model_dump(), "trials": args.trials,
              "workers": args.workers, "wall_s": time.perf_counter() - tic, "settings": report,
              "tuned_vs_best_fixed_pooled": overall}
    write_text_atomic(RESULTS / ("tune-smoke.json" if args.only else "tune.json"), json.dumps(result, indent=1))
    print(json.dumps({k: (v["tuned_vs_reference"]["mean"], v["tuned_vs_reference_holm"]) for k, v in report.items()},
                     indent=1))
    print(f"wall {result['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
