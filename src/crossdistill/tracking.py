"""Experiment tracking (``train.log: [tensorboard, mlflow]``): every model of a run (each teacher per fold, each
student per fold and seed) logs its hyper-parameters, its per-epoch scalars through ``fit``'s observers and, once
the run is evaluated, its test metrics.

- TensorBoard: event files under ``<run>/tensorboard/<model>/fold<k>[-seed<s>]`` (``tensorboard --logdir``);
  the test metrics with the hyper-parameters in the HParams tab.
- MLflow: the tracking store named by ``$MLFLOW_TRACKING_URI``, else a SQLite store ``<run>/mlflow.db``
  (``mlflow ui --backend-store-uri sqlite:///<run>/mlflow.db``); one experiment per crossdistill run name, one
  MLflow run per model, found again by its tag ``crossdistill.model`` (a resumed run continues it).
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crossdistill.config import ConfigError, Experiment
from crossdistill.rundir import RunDir

EXTRAS = {"tensorboard": ("tensorboard", "crossdistill[tensorboard]"), "mlflow": ("mlflow", "crossdistill[mlflow]")}


def check_trackers(exp: Experiment) -> None:
    """Before training: each tracker ``train.log`` names is installed (else the pip command to run)."""
    for name in exp.train.log:
        module, extra = EXTRAS[name]
        if importlib.util.find_spec(module) is None:
            raise ConfigError(f"train.log: {name} is not installed: pip install '{extra}'")


def scalars(row: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in row.items() if isinstance(v, int | float) and not isinstance(v, bool)}


class TensorBoardTracker:
    def __init__(self, run_dir: Path, key: str, params: dict[str, Any]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.folder = run_dir / "tensorboard" / key
        self.writer = SummaryWriter(str(self.folder))
        if params:
            (self.folder / "params.json").write_text(json.dumps(params))
            self.writer.add_text("hyper-parameters", "\n".join(f"    {k}: {v}" for k, v in params.items()))

    def observe(self, row: dict[str, Any]) -> None:
        for name, value in scalars(row).items():
            if name != "epoch":
                self.writer.add_scalar(name, value, int(row["epoch"]))
        self.writer.flush()

    def finish(self, metrics: dict[str, float]) -> None:
        saved = self.folder / "params.json"
        params = json.loads(saved.read_text()) if saved.is_file() else {}
        hparams = {k: v if isinstance(v, int | float | str | bool) else str(v) for k, v in params.items()}
        self.writer.add_hparams(hparams, {f"test/{k}": v for k, v in metrics.items()}, run_name=".")
        self.writer.close()


class MlflowTracker:
    def __init__(self, run_dir: Path, experiment: str, key: str, params: dict[str, Any]) -> None:
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{run_dir / 'mlflow.db'}")
        found = self.client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else self.client.create_experiment(experiment)
        runs = self.client.search_runs([experiment_id], filter_string=f"tags.`crossdistill.model` = '{key}'")
        if runs:
            self.run_id = runs[0].info.run_id
        else:
            self.run_id = self.client.create_run(experiment_id, run_name=key,
                                                 tags={"crossdistill.model": key}).info.run_id
            self.client.log_batch(self.run_id, params=[Param(k, str(v)[:500]) for k, v in params.items()])

    def _log(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, step) for k, v in values.items()])

    def observe(self, row: dict[str, Any]) -> None:
        self._log({k: v for k, v in scalars(row).items() if k != "epoch"}, int(row["epoch"]))

    def finish(self, metrics: dict[str, float]) -> None:
        self._log({f"test/{k}": v for k, v in metrics.items()}, 0)
        self.client.set_terminated(self.run_id)


def trackers(exp: Experiment, model_dir: Path, params: dict[str, Any] | None = None) -> list[Any]:
    """The trackers of one model (``model_dir``: ``<run>/models/<name>/fold<k>[-seed<s>]``)."""
    run_dir, key = model_dir.parents[2], f"{model_dir.parent.name}/{model_dir.name}"
    made = {"tensorboard": lambda: TensorBoardTracker(run_dir, key, params or {}),
            "mlflow": lambda: MlflowTracker(run_dir, exp.name, key, params or {})}
    return [made[name]() for name in exp.train.log]


def epoch_observers(exp: Experiment, model_dir: Path, params: dict[str, Any]) -> list[Callable[[dict], None]]:
    """``fit`` observers logging each epoch's row (only in the process that writes: rank 0)."""
    return [tracker.observe for tracker in trackers(exp, model_dir, params)]


def finish_tracking(exp: Experiment, run_dir: Path, models: dict[str, Any]) -> None:
    """Each trained model's test metrics (``results.json``'s per-run rows) to its trackers."""
    if not exp.train.log:
        return
    for name, model in models.items():
        for row in model.runs:
            folder = RunDir(run_dir).model_dir(name, row["fold"], row.get("seed"))
            metrics = {k: v for k, v in scalars(row).items() if k not in ("fold", "seed")}
            for tracker in trackers(exp, folder):
                tracker.finish(metrics)


def model_params(exp: Experiment, name: str, fold: int, seed: int | None, train: Any, terms: list[Any],
                 labels: float) -> dict[str, Any]:
    """What a tracker records as a model's hyper-parameters."""
    spelled = [t.name + (f"({', '.join(f'{k}={v}' for k, v in t.kwargs.items())})" if t.kwargs else "")
               + (f"x{t.weight:g}" if t.weight != 1 else "") for t in terms]
    return {"run": exp.name, "model": name, "dataset": exp.data.dataset, "fold": fold, "seed": seed,
            "labels": labels, "terms": " + ".join(spelled),
            **{k: v for k, v in train.model_dump().items() if k not in ("log", "progress", "device")}}
