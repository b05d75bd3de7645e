"""The run directory: the contract between stages. ``RunDir`` owns every path of a run, and ``results.json`` /
``data_info.json`` are versioned, stamped files read through one loader here (report, export, search and the CLI
never build a path or parse these files themselves). A run written by an older version is named and refused with
the command that rebuilds it; nothing falls back to defaults for missing keys.

Layout::

    <run>/config.yaml            the validated experiment
    <run>/data_info.json         classes, modalities and their saved preprocessing, the task
    <run>/results.json           every model's test metrics and costs (``Results``), stamped
    <run>/models/<name>/fold<k>[-seed<s>]/{checkpoints/best.safetensors, checkpoints/last.pt, metrics.jsonl,
                                           eval.json, fit.json, test_rows.npz}
    <run>/report/                report.md, report.html, results.csv, plots/
    <run>/export/                the exported student
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from crossdistill import __version__
from crossdistill.errors import CrossdistillError
from crossdistill.stats import PairedDiff

SCHEMA_VERSION = 3  # 1: before the stamp and the task objects (no schema_version key); 2: before comparisons


class StaleRunError(CrossdistillError, ValueError):
    """A run directory written by another version of crossdistill (or not one at all)."""


class Stamp(BaseModel):
    """Where a results file comes from: enough to tell which code and config made it, and where."""

    model_config = ConfigDict(extra="forbid")
    schema_version: int
    package_version: str
    commit: str | None  # the git commit of the package's checkout, when it runs from one
    config_hash: str  # SHA-256 of the validated config (config.yaml's text), first 16 hex digits
    date: str  # ISO 8601, UTC
    machine: str  # processor, cores, OS, Python and torch versions


class ModelResult(BaseModel):
    """One model of a run: its role, metrics (mean, std and per run) and costs."""

    model_config = ConfigDict(extra="allow")  # role-specific details (terms, towers, ablation, ...)
    role: str
    modalities: list[str]
    metrics: dict[str, dict[str, Any]]
    runs: list[dict[str, Any]]
    params: int
    flops: float
    latency_ms: dict[str, float]
    confusion: list[list[int]]


class Comparison(BaseModel):
    """One paired comparison: ``model`` minus ``reference`` on ``metric`` (``crossdistill.stats.PairedDiff``)."""

    model_config = ConfigDict(extra="forbid")
    model: str
    reference: str
    labels: float
    metric: str
    paired_diff: PairedDiff


class Results(BaseModel):
    """``results.json``."""

    model_config = ConfigDict(extra="forbid")
    stamp: Stamp
    dataset: str
    name: str
    task: str
    metric_names: list[str]
    metric_style: dict[str, tuple[float, int, str]]
    metrics_text: str
    selection_text: str
    folds: list[dict[str, Any]]
    seeds: list[int]
    select_on: str
    student_labels: float
    latency_threads: int
    models: dict[str, ModelResult]
    gain: dict[str, float]
    comparisons: list[Comparison]  # each taught student vs the student alone on its budget (crossdistill.stats)
    warnings: list[str]  # flat teacher soft labels, undertrained students (crossdistill.evaluate.health)


def _commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                    if line.startswith("model name")), cpu)
    return (f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python "
            f"{platform.python_version()}, torch {torch.__version__}")


def stamp(config_text: str) -> Stamp:
    """A stamp for results made now from ``config_text``."""
    return Stamp(schema_version=SCHEMA_VERSION, package_version=__version__, commit=_commit(),
                 config_hash=hashlib.sha256(config_text.encode()).hexdigest()[:16],
                 date=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), machine=machine())


class RunDir:
    """Every path of one run, and the loaders of its files."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    # ---- paths ------------------------------------------------------------------------------------------------
    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def data_info(self) -> Path:
        return self.root / "data_info.json"

    @property
    def results(self) -> Path:
        return self.root / "results.json"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def report(self) -> Path:
        return self.root / "report"

    @property
    def export(self) -> Path:
        return self.root / "export"

    def model_dir(self, name: str, fold: int, seed: int | None = None) -> Path:
        """A teacher's (no seed: trained once per fold) or a student's (per seed) folder."""
        return self.models / name / (f"fold{fold}" if seed is None else f"fold{fold}-seed{seed}")

    @staticmethod
    def fold_of(model_dir: Path) -> int:
        """The fold a model folder (``fold<k>[-seed<s>]``) was trained on."""
        return int(model_dir.name.split("-")[0].removeprefix("fold"))

    @staticmethod
    def weights(model_dir: Path) -> Path:
        return model_dir / "checkpoints" / "best.safetensors"

    @staticmethod
    def test_rows(model_dir: Path) -> Path:
        """Per-test-row targets/predictions of one trained model (what the paired bootstrap resamples)."""
        return model_dir / "test_rows.npz"

    def trained(self, name: str, fold: int | None = None, seed: int | None = None) -> Path:
        """The folder of a trained model; ``fold`` None: the first fold present, ``seed`` None: the first seed
        (a teacher has none)."""
        pattern = "fold*" if fold is None else f"fold{fold}*"
        found = sorted(d for d in (self.models / name).glob(pattern) if self.weights(d).is_file())
        if seed is not None:
            found = [d for d in found if d.name.endswith(f"-seed{seed}")]
        if not found:
            known = ", ".join(sorted(p.name for p in self.models.iterdir())) if self.models.is_dir() else "none"
            where = ", ".join(f"{k} {v}" for k, v in (("fold", fold), ("seed", seed)) if v is not None)
            raise FileNotFoundError(f"no trained {name!r}{f' ({where})' if where else ''} in {self.root}; "
                                    f"models: {known}")
        return found[0]

    # ---- loaders ----------------------------------------------------------------------------------------------
    def rebuild_hint(self) -> str:
        return f"`crossdistill run {self.config} --out {self.root.parent} --no-resume`"

    def _read(self, path: Path) -> dict[str, Any]:
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: is {self.root} a finished crossdistill run?")
        try:
            raw = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise StaleRunError(f"{path} is not valid JSON ({error}): rebuild the run with "
                                f"{self.rebuild_hint()}") from None
        version = raw.get("stamp", {}).get("schema_version") if isinstance(raw, dict) else None
        if version != SCHEMA_VERSION:
            age = "an older" if version is None or version < SCHEMA_VERSION else "a newer"
            raise StaleRunError(f"{path} was written by {age} crossdistill (run format {version or 1}; this "
                                f"version {__version__} reads format {SCHEMA_VERSION}): rebuild it with "
                                f"{self.rebuild_hint()}")
        return raw

    def load_results(self) -> Results:
        raw = self._read(self.results)
        try:
            return Results.model_validate(raw)
        except ValidationError as error:
            raise StaleRunError(f"{self.results} does not match the results format ({error.error_count()} "
                                f"problems, first: {error.errors()[0]['loc']}: {error.errors()[0]['msg']}): "
                                f"rebuild it with {self.rebuild_hint()}") from None

    def load_data_info(self) -> dict[str, Any]:
        return self._read(self.data_info)
