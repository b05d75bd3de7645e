"""Collects per-(fold, seed) evaluations into ``results.json``: mean ± std over seeds x folds per model, and
every distilled student compared with the student trained alone on the same label budget under the project's
one statistical rule (``crossdistill.stats``: paired over (fold, seed), hierarchical bootstrap)."""

from __future__ import annotations

import json
import logging
import statistics
from pathlib import Path

import numpy as np
import torch
from torch import nn

from crossdistill.atomic import atomic_file, write_text_atomic
from crossdistill.config import Experiment, ModelSpec, dump
from crossdistill.data.batch import FoldData, ModalitySpec
from crossdistill.distributed import is_main
from crossdistill.evaluate import evaluate_split
from crossdistill.evaluate.efficiency import efficiency
from crossdistill.evaluate.health import flat_teacher_warning
from crossdistill.plans import StudentPlan
from crossdistill.rundir import RunDir, stamp
from crossdistill.stats import paired_diff
from crossdistill.tasks import Task

log = logging.getLogger("crossdistill")


def summarize(values: list[float]) -> dict:
    """Mean, sample standard deviation (0 for one value) and the values themselves."""
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "std": std, "per_seed": values}


def write_json(path: Path, payload: dict) -> None:
    """(rank 0 only, under several processes: they all hold the same results)"""
    if is_main():
        write_text_atomic(path, json.dumps(payload, indent=1))


class ResultsBook:
    """Evaluates each trained model on its fold's test split and writes ``data_info.json`` and ``results.json``
    (both stamped: ``rundir.Stamp``)."""

    def __init__(self, exp: Experiment, run_dir: RunDir) -> None:
        self.exp, self.run_dir = exp, run_dir
        self.stamp = stamp(dump(exp)).model_dump()
        self.folds: list[dict] = []
        self.models: dict[str, dict] = {}
        self.specs: dict[str, ModalitySpec] = {}
        self.task: Task | None = None
        self.warnings: list[str] = []  # shown in a box at the top of the report

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)
            log.warning("%s", message)

    def note_soft_labels(self, name: str, fold: FoldData, soft: dict | None) -> None:
        """The teacher's soft-label information on the training split (``evaluate.health``), warned if flat."""
        if soft is None:
            return
        self.models[name].setdefault("soft_labels", []).append({"fold": fold.fold, **soft})
        if soft["flat"]:
            self.warn(flat_teacher_warning(name, fold.fold, soft, fold.info.num_classes))

    def add_fold(self, fold: FoldData) -> None:
        self.folds.append({"fold": fold.fold, "description": fold.description, "sizes": fold.info.num_samples})
        self.specs = dict(fold.info.modalities)
        self.task = fold.info.task
        info = {"stamp": self.stamp, "split": fold.description, "num_classes": fold.info.num_classes,
                "class_names": fold.info.class_names,
                "task": fold.info.task.spec(), "target_scale": list(fold.info.target_scale),
                "modalities": {m: {"shape": list(s.shape), "dtype": s.dtype, "meta": s.meta}
                               for m, s in fold.info.modalities.items()}}
        write_json(self.run_dir.data_info, info)

    def record(self, name: str, spec: ModelSpec, model: nn.Module, fold: FoldData, seed: int | None,
               plan: StudentPlan | None = None, ablation: dict | None = None) -> None:
        """Evaluate ``model`` on the fold's test split and file the scores under ``name``."""
        report = evaluate_split(model, fold["test"], fold.info)
        test_rows = report.pop("rows")
        model_dir = self.run_dir.model_dir(name, fold.fold, seed)
        weights = RunDir.weights(model_dir)
        write_json(model_dir / "eval.json", {**report, "ablation": ablation, "seed": seed, "fold": fold.fold})
        if is_main():
            with atomic_file(RunDir.test_rows(model_dir)) as tmp:
                np.savez(tmp, **test_rows)
        entry = self.models.setdefault(name, {
            "role": "student" if plan else "teacher", "modalities": list(spec.modalities),
            "runs": [], "rows": {}, "confusion": np.zeros((fold.info.num_classes,) * 2, dtype=int), "model": model,
            "weights": weights, "ablation": [],
            **({"teacher": plan.teacher, "teachers": plan.teacher_names, "student_labels": plan.labels,
                "select_on": plan.select_on, "init_from": plan.init_from,
                "terms": [{"term": t.name, "weight": t.weight, **t.kwargs,
                           **({"teachers": t.teachers} if t.teachers else {})} for t in plan.terms]}
               if plan else {}),
        })
        entry["runs"].append({"fold": fold.fold, "seed": seed, **report["metrics"]})
        entry["rows"][(fold.fold, seed)] = test_rows
        where = f"fold {fold.fold}" + ("" if seed is None else f" seed {seed}")
        headline = fold.info.task.metric_names[0]
        log.info("%-24s %-16s test %s %.3f", name, where, headline, report["metrics"][headline])
        if report["confusion"] is not None:
            entry["confusion"] += np.array(report["confusion"])
        if ablation:
            entry["ablation"].append(ablation)
        fit_file = model_dir / "fit.json"
        if plan and fit_file.is_file() and json.loads(fit_file.read_text()).get("still_rising"):
            entry.setdefault("still_rising", []).append(where)

    def _model_summary(self, entry: dict) -> dict:
        names = self.task.metric_names
        metrics = {m: summarize([r[m] for r in entry["runs"]]) for m in names}
        by_fold: dict[int, list[float]] = {}
        for r in entry["runs"]:
            by_fold.setdefault(r["fold"], []).append(r[names[0]])
        cost = efficiency(entry["model"], self.specs, entry["weights"], self.exp.evaluate.latency_repeats)
        summary = {k: v for k, v in entry.items() if k not in ("runs", "rows", "model", "weights", "confusion",
                                                                "ablation")}
        summary |= {**cost, "metrics": metrics, "runs": entry["runs"], "confusion": entry["confusion"].tolist(),
                    "std_within_fold": {str(f): summarize(v)["std"] for f, v in by_fold.items()}}
        if entry["ablation"]:
            summary["modality_ablation"] = {
                m: {names[0]: statistics.fmean(a[m][names[0]] for a in entry["ablation"])}
                for m in entry["ablation"][0]}
        return summary

    def comparisons(self) -> list[dict]:
        """Each taught student (a teacher, or weights from a taught run) vs the student trained alone on the same
        label budget, on the headline metric, paired over the (fold, seed) runs both have."""
        students = {n: e for n, e in self.models.items() if e["role"] == "student"}
        taught = {n for n, e in students.items() if e.get("teacher") or e.get("init_from")}
        alone = {e["student_labels"]: n for n, e in students.items() if n not in taught}
        out = []
        for name in self.models:
            reference = alone.get(self.models[name]["student_labels"]) if name in taught else None
            if reference is None:
                continue
            diff = paired_diff(self.models[name]["rows"], self.models[reference]["rows"],
                               self.task.headline_statistic, seed=self.exp.data.seed)
            out.append({"model": name, "reference": reference, "labels": self.models[name]["student_labels"],
                        "metric": self.task.metric_names[0], "paired_diff": diff.model_dump()})
        return out

    def write(self) -> dict:
        for name, entry in self.models.items():
            if entry.get("still_rising"):
                runs = entry["still_rising"]
                self.warn(f"{name}: its validation score was still rising at the last epoch in {len(runs)} of "
                          f"{len(entry['runs'])} runs ({', '.join(runs)}): probably undertrained (raise train.epochs)")
        models = {name: self._model_summary(entry) for name, entry in self.models.items()}
        gain = {}
        if "baseline" in models and "distilled" in models:
            gain = {m: models["distilled"]["metrics"][m]["mean"] - models["baseline"]["metrics"][m]["mean"]
                    for m in self.task.metric_names}
        results = {"stamp": self.stamp, "dataset": self.exp.data.dataset, "name": self.exp.name, "task": self.task.name,
                   "metric_names": list(self.task.metric_names),
                   "metric_style": {m: list(style) for m, style in self.task.metric_style.items()},
                   "metrics_text": self.task.metrics_text, "selection_text": self.task.selection_text,
                   "folds": self.folds,
                   "seeds": sorted({r["seed"] for e in self.models.values() for r in e["runs"] if r["seed"] is not None}
                                  or self.exp.seeds), "select_on": self.exp.train.select_on,
                   "student_labels": self.exp.student_labels, "latency_threads": torch.get_num_threads(),
                   "models": models, "gain": gain, "comparisons": self.comparisons(),
                   "warnings": self.warnings}
        write_json(self.run_dir.results, results)
        return results
