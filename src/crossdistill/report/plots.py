"""Plots of a run directory: training curves, score vs latency, confusion matrices, score vs label budget, a
tuning study's history (PNG, Agg backend)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

from crossdistill.rundir import RunDir

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as ticker  # noqa: E402
import numpy as np  # noqa: E402


def _grid(count: int, width: float, height: float, **kwargs) -> tuple:
    """A figure with ``count`` panels, at most four per row; unused panels hidden."""
    cols = min(4, count)
    rows = -(-count // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False, **kwargs)
    flat = list(axes.flat)
    for ax in flat[count:]:
        ax.set_visible(False)
    return fig, flat[:count]


def _curves(run_dir: Path, name: str) -> list[tuple[str, list[dict]]]:
    """(its folder name, e.g. ``fold2-seed0``, and its epochs) of each fit of a model."""
    files = sorted((RunDir(run_dir).models / name).glob("*/metrics.jsonl"))
    return [(f.parent.name, [json.loads(line) for line in f.read_text().splitlines() if line.strip()])
            for f in files]


def training_curves(run_dir: Path, results: dict, path: Path) -> Path:
    """Validation score per epoch, one line per (fold, seed) with a legend, one panel per model."""
    names = list(results["models"])
    fig, axes = _grid(len(names), 3.2, 2.6, sharey=True)
    for ax, name in zip(axes, names, strict=True):
        curves = _curves(run_dir, name)
        for run, history in curves:
            scored = [r for r in history if "val_score" in r]  # (with no selection, only some epochs are scored)
            ax.plot([r["epoch"] for r in scored], [r["val_score"] for r in scored], alpha=0.7,
                    label=run.replace("fold", "fold ").replace("-seed", ", seed "))
        if 1 < len(curves) <= 12:
            ax.legend(fontsize=5, loc="lower right", ncol=2 if len(curves) > 6 else 1)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.set_ylabel("validation score", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def score_vs_latency(results: dict, path: Path) -> Path:
    """The headline test metric (accuracy in %, or R^2) of each model against its batch-1 CPU latency."""
    metric = results["metric_names"][0]
    scale = float(results["metric_style"][metric][0])
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    markers = "osD^vP*Xh<>"
    for index, (name, m) in enumerate(results["models"].items()):  # a legend, not labels that overlap
        score = m["metrics"][metric]
        ax.errorbar(m["latency_ms"]["batch1"], score["mean"] * scale, yerr=score["std"] * scale,
                    fmt=markers[index % len(markers)], capsize=3, label=name)
    ax.legend(fontsize=7, loc="best")
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 1.5, 2.0, 3.0, 5.0, 7.0)))
    ax.xaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    ax.margins(x=0.25)
    ax.set_xlabel("CPU latency, batch 1 (ms, log scale)")
    ax.set_ylabel(f"test {metric} (%)" if scale == 100.0 else f"test {metric}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def confusion_matrices(results: dict, path: Path) -> Path:
    names = list(results["models"])
    fig, axes = _grid(len(names), 2.6, 2.8)
    for ax, name in zip(axes, names, strict=True):
        matrix = np.array(results["models"][name]["confusion"], dtype=float)
        ax.imshow(matrix / matrix.sum(axis=1, keepdims=True).clip(1), cmap="Blues", vmin=0, vmax=1)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("predicted", fontsize=8)
        ax.set_ylabel("true", fontsize=8)
        ax.tick_params(labelsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def score_vs_budget(results: dict, path: Path) -> Path | None:
    """The headline test metric against the student's label budget: students trained alone and taught (at each
    budget the first such run: baseline / distilled, else the first variant), each point the mean over its runs
    with a 95% interval of that mean (mean ± t * std / sqrt(n)); None with fewer than two budgets."""
    from scipy.stats import t as student_t

    students = [m for m in results["models"].values() if m["role"] == "student"]
    if len({m["student_labels"] for m in students}) < 2:
        return None
    metric = results["metric_names"][0]
    scale = float(results["metric_style"][metric][0])
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for kind, taught in (("alone", False), ("distilled", True)):
        first: dict[float, dict] = {}  # per budget, the first such run (baseline / distilled come first)
        for m in students:
            if bool(m.get("teacher")) == taught and not m.get("init_from"):
                first.setdefault(m["student_labels"], m["metrics"][metric])
        points = sorted(first.items(), key=lambda point: point[0])
        if not points:
            continue
        budgets = [100 * b for b, _ in points]
        means = [s["mean"] * scale for _, s in points]
        half = [student_t.ppf(0.975, len(s["per_seed"]) - 1) * s["std"] / len(s["per_seed"]) ** 0.5 * scale
                if len(s["per_seed"]) > 1 else 0.0 for _, s in points]
        ax.errorbar(budgets, means, yerr=half, fmt="-o", capsize=3, label=kind)
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xticks([b for b in sorted({100 * m["student_labels"] for m in students})])
    ax.xaxis.set_major_formatter(ticker.FormatStrFormatter("%g%%"))
    ax.set_xlabel("student's label budget (share of training labels)")
    ax.set_ylabel(f"test {metric} (%)" if scale == 100.0 else f"test {metric}")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def tuning_history(summary: dict, path: Path) -> Path:
    """Each fold's study: every finished trial's validation score by trial number, and the best so far."""
    folds = summary["folds"]
    fig, axes = _grid(len(folds), 4.5, 3.2)
    for ax, (fold, f) in zip(axes, folds.items(), strict=True):
        done = [t for t in f["trials"] if t["state"] == "complete"]
        pruned = [t for t in f["trials"] if t["state"] == "pruned" and t["value"] is not None]
        ax.plot([t["number"] for t in done], [t["value"] for t in done], "o", label="trial (finished)")
        ax.plot([t["number"] for t in pruned], [t["value"] for t in pruned], "x", color="#888",
                label="pruned (its last epoch)")
        best, running = [], -float("inf")
        for t in done:
            running = max(running, t["value"])
            best.append(running)
        ax.step([t["number"] for t in done], best, where="post", label="best so far")
        ax.set(title=f"fold {fold}: {len(done)} finished, {len(pruned)} pruned", xlabel="trial",
               ylabel="validation score")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
