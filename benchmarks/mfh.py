"""When does cross-modal KD help? The synthetic Gaussian study of Xue et al., "The Modality Focusing Hypothesis:
Towards Understanding Crossmodal Knowledge Distillation", ICLR 2023, run through crossdistill's own pipeline
(the ``synthetic-mfh`` data set, the Distiller, ``fit`` and the evaluation of every other run).

Protocol (the paper's, ``configs/synthetic_mfh/gamma.yaml``): linear teacher on x1, linear student on x2; 200
training and 1000 test samples (test drawn from another seed); full-batch SGD, lr 0.1, 1000 epochs, last weights
kept; the student trained with CE alone, or with CE + KL(teacher || student) at T = 1, weights 1 and 1; 10
independent draws (folds), mean ± std.

1. gamma: 10 decisive features per modality, ``overlap`` in {0, 2, 4, 6, 8, 10} shared.
2. alpha: x2's 10 decisive features all shared; x1 has ``k`` in {0, 10, 20, 30, 40} more.
3. modality-general teacher: x1 has 10 specific + ``shared`` in {5, 10, 20, 30} shared decisive features; a
   second teacher sees x1 with the specific channels replaced by noise; both teach the same student.

Writes ``benchmarks/results/mfh.json``, ``mfh_gamma.png``, ``mfh_alpha.png`` and ``mfh_general.png``; prints the
tables. Each draw is also diagnosed (``crossdistill diagnose``: from its training/validation data and teacher
only) and the diagnosis is checked against the measured gain: Spearman correlation of its score with the mean KD
gain over the gamma and alpha settings, and how often its verdict matches the measured one (helps / hurts beyond
2 standard errors of the per-draw gains, else neutral). ``--workers`` processes, one thread each; ``--quick``:
2 folds, 200 epochs (a smoke run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import yaml  # noqa: E402

RESULTS = Path(__file__).parent / "results"
BASE_CONFIG = Path(__file__).parents[1] / "configs" / "synthetic_mfh" / "gamma.yaml"
GRIDS = {
    "gamma": [{"experiment": "gamma", "overlap": o} for o in (0, 2, 4, 6, 8, 10)],
    "alpha": [{"experiment": "alpha", "extra": k} for k in (0, 10, 20, 30, 40)],
    "general": [{"experiment": "general", "shared": s} for s in (5, 10, 20, 30)],
}
GENERAL_TEACHER = {"encoders": {"x1_general": {"name": "identity"}}, "fusion": "identity", "dropout": 0.0}


def experiment_dict(options: dict, folds: int, epochs: int) -> dict:
    """The shipped config with one setting's data options (and, for experiment 3, the modality-general teacher
    and its student)."""
    raw = yaml.safe_load(BASE_CONFIG.read_text())
    tag = "-".join(f"{v}" for v in options.values())
    raw |= {"name": f"mfh-{tag}"}
    raw["data"] |= {"options": options, "folds": folds}
    raw["train"] |= {"epochs": epochs, "checkpoint_every": epochs}
    if options["experiment"] == "general":
        raw["extra_teachers"] = {"general_teacher": GENERAL_TEACHER}
        raw["variants"] = {"distilled_general": {"teacher": "general_teacher"}}
    return raw


def run_setting(job: tuple[dict, int, int, str]) -> dict:
    """One grid point through the pipeline; per-fold test accuracy of each model."""
    import torch

    from crossdistill.config import Experiment
    from crossdistill.data.synthetic_mfh import MfhOptions, layout
    from crossdistill.diagnose import diagnose
    from crossdistill.pipeline import run

    torch.set_num_threads(1)
    options, folds, epochs, out = job
    tic = time.perf_counter()
    exp = Experiment.model_validate(experiment_dict(options, folds, epochs))
    run_dir = run(exp, Path(out))
    results = json.loads((run_dir / "results.json").read_text())
    plan = layout(MfhOptions.model_validate(options))
    accuracy = {name: [r["accuracy"] for r in sorted(m["runs"], key=lambda r: r["fold"])]
                for name, m in results["models"].items()}
    seconds = time.perf_counter() - tic
    # The diagnosis of every draw, from its training/validation data and its (already trained) teacher only.
    validated = options["experiment"] in ("gamma", "alpha")  # (experiment 3 compares teachers, not verdicts)
    scores = [diagnose(exp, Path(out), fold)["score"] for fold in range(folds)] if validated else []
    compared = {c["model"]: c["paired_diff"] for c in results["comparisons"]}  # the one statistical rule
    return {"options": options, "gamma": plan.gamma, "alpha": plan.alpha, "accuracy": accuracy,
            "paired_diff": compared, "diagnose_scores": scores, "seconds": seconds,
            "diagnose_seconds": time.perf_counter() - tic - seconds}


def pm(values: list[float], decimals: int = 2, signed: bool = False) -> str:
    """Mean ± std over draws, in %, as the authors print it (population std)."""
    sign = "+" if signed else ""
    return f"{100 * statistics.fmean(values):{sign}.{decimals}f} ± {100 * statistics.pstdev(values):.{decimals}f}"


def delta(point: dict, model: str, reference: str = "baseline") -> list[float]:
    acc = point["accuracy"]
    return [a - b for a, b in zip(acc[model], acc[reference], strict=True)]


def table(points: list[dict], key: str) -> list[str]:
    """Markdown rows: the paper's columns (std over draws, as the authors print it)."""
    general = "distilled_general" in points[0]["accuracy"]
    head = (f"| {key} | teacher | modality-general teacher | no KD | KD | KD from general | Δ KD | Δ KD general |"
            if general else f"| {key} | teacher | no KD | KD | Δ (KD − no KD) |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for p in points:
        acc = p["accuracy"]
        value = f"{p[key]:.2f}" if key != "shared" else str(p["options"]["shared"])
        if general:
            lines.append(f"| {value} | {pm(acc['teacher'])} | {pm(acc['general_teacher'])} | {pm(acc['baseline'])} "
                         f"| {pm(acc['distilled'])} | {pm(acc['distilled_general'])} | {pm(delta(p, 'distilled'))} "
                         f"| {pm(delta(p, 'distilled_general'))} |")
        else:
            lines.append(f"| {value} | {pm(acc['teacher'])} | {pm(acc['baseline'])} | {pm(acc['distilled'])} "
                         f"| {pm(delta(p, 'distilled'))} |")
    return lines


def measured_classes(points: list[dict]) -> list[str]:
    """The KD gain's class in each setting under the one statistical rule (docs/statistics.md: paired over the
    draws, test rows resampled), with Holm's adjustment over the settings compared together: helps / hurts when
    its 95% interval excludes 0 and Holm rejects, else neutral."""
    from crossdistill.stats import holm

    diffs = [p["paired_diff"]["distilled"] for p in points]
    rejected = holm([d["p_value"] for d in diffs])
    return [d["verdict"] if keep and d["verdict"] in ("helps", "hurts") else "neutral"
            for d, keep in zip(diffs, rejected, strict=True)]


def validation(points: list[dict]) -> dict:
    """Does the diagnosis rank the settings by the KD gain they really gave, and call its sign?"""
    from scipy.stats import spearmanr

    from crossdistill.diagnose.verdict import MARGIN

    rows = []
    for p, measured in zip(points, measured_classes(points), strict=True):
        gains = delta(p, "distilled")
        score = statistics.fmean(p["diagnose_scores"])
        predicted = "helps" if score > MARGIN else "hurts" if score < -MARGIN else "neutral"
        rows.append({"setting": p["options"], "score": score, "gain": statistics.fmean(gains),
                     "predicted": predicted, "measured": measured})
    rho, p_value = spearmanr([r["score"] for r in rows], [r["gain"] for r in rows])
    signs = [r for r in rows if r["predicted"] != "neutral" and r["measured"] != "neutral"]
    return {"spearman": float(rho), "spearman_p": float(p_value), "settings": len(rows),
            "verdict_matches": sum(r["predicted"] == r["measured"] for r in rows),
            "sign_matches": sum(r["predicted"] == r["measured"] for r in signs), "signed_settings": len(signs),
            "rows": rows}


def doc_table(points: list[dict], name: str, checked: list[dict] | None = None) -> str:
    """docs/diagnose.md's table of one experiment: accuracies (mean ± std over draws), the KD gain, the
    diagnosis and the measured class (``checked``: the validation rows the summary counts, Holm-adjusted over
    experiments 1 and 2 together); experiment 3 compares the two teachers instead."""
    def pct(values: list[float], signed: bool = False) -> str:
        return pm(values, 1, signed)

    if name == "general":
        lines = ["| shared | regular teacher | modality-general teacher | no KD | KD from regular | KD from general | "
                 "Δ regular | Δ general |", "|---|---|---|---|---|---|---|---|"]
        for p in points:
            a = p["accuracy"]
            lines.append(f"| {p['options']['shared']} | {pct(a['teacher'])} | {pct(a['general_teacher'])} | "
                         f"{pct(a['baseline'])} | {pct(a['distilled'])} | {pct(a['distilled_general'])} | "
                         f"{pct(delta(p, 'distilled'), True)} | {pct(delta(p, 'distilled_general'), True)} |")
        return "\n".join(lines)
    key, label = ("overlap", "overlap (γ)") if name == "gamma" else ("extra", "k (α)")
    rows = {json.dumps(r["setting"], sort_keys=True): r for r in (checked or validation(points)["rows"])}
    lines = [f"| {label} | teacher | student, no KD | student, KD | Δ | diagnose score | verdict | measured |",
             "|---|---|---|---|---|---|---|---|"]
    for p in points:
        a, r = p["accuracy"], rows[json.dumps(p["options"], sort_keys=True)]
        lines.append(f"| {p['options'][key]} ({p[name]:.2f}) | {pct(a['teacher'])} | {pct(a['baseline'])} | "
                     f"{pct(a['distilled'])} | {pct(delta(p, 'distilled'), True)} | {r['score']:+.3f} | "
                     f"{r['predicted']} | {r['measured']} |")
    return "\n".join(lines)


def doc_summary(payload: dict) -> str:
    check, s = payload["diagnose_validation"], payload["stamp"]
    both = check["gamma + alpha"]
    return (f"**The diagnosis against the measured gain over the {both['settings']} settings of experiments 1 and 2: "
            f"Spearman ρ = {both['spearman']:+.2f}** (p = {both['spearman_p']:.3f}; {check['gamma']['spearman']:+.2f} "
            f"for γ, {check['alpha']['spearman']:+.2f} for α). Its verdict equals the measured class in "
            f"{both['verdict_matches']} of {both['settings']} settings, and the sign in {both['sign_matches']} of the "
            f"{both['signed_settings']} where both call one. {payload['protocol']['folds']} draws per setting, "
            f"{payload['wall_seconds']:.0f} s on {payload['workers']} cores; rendered from "
            f"`benchmarks/results/mfh.json` (commit {(s['commit'] or '?')[:10]}, {s['date'][:10]}).")


def _figure() -> tuple:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    return plt, fig, ax


def _save(plt, fig, ax, xlabel: str, path: Path, legend_size: int) -> None:  # noqa: ANN001
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=legend_size)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot(points: list[dict], key: str, path: Path) -> None:
    plt, fig, ax = _figure()
    x = [p[key] for p in points]
    for model, label in (("teacher", "teacher (x1)"), ("baseline", "student, no KD"), ("distilled", "student, KD")):
        means = [100 * statistics.fmean(p["accuracy"][model]) for p in points]
        stds = [100 * statistics.pstdev(p["accuracy"][model]) for p in points]
        ax.errorbar(x, means, yerr=stds, marker="o", capsize=3, label=label)
    xlabel = {"gamma": "γ (modality-general / modality-specific decisive features)",
              "alpha": "α (share of the teacher's decisive features the student lacks)"}[key]
    _save(plt, fig, ax, xlabel, path, 8)


def plot_general(points: list[dict], path: Path) -> None:
    plt, fig, ax = _figure()
    x = [p["options"]["shared"] for p in points]
    for model, label in (("teacher", "regular teacher"), ("general_teacher", "modality-general teacher"),
                         ("distilled", "student, KD from regular"), ("distilled_general", "student, KD from general"),
                         ("baseline", "student, no KD")):
        ax.plot(x, [100 * statistics.fmean(p["accuracy"][model]) for p in points], marker="o", label=label)
    _save(plt, fig, ax, "shared decisive features (x1 has 10 more of its own)", path, 7)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="2 folds, 200 epochs: a smoke run")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    folds, epochs = (2, 200) if args.quick else (10, 1000)
    tic = time.perf_counter()
    with tempfile.TemporaryDirectory() as runs:
        jobs = [(options, folds, epochs, runs) for grid in GRIDS.values() for options in grid]
        with ProcessPoolExecutor(args.workers) as pool:  # (this process never imports torch: safe to fork)
            points = list(pool.map(run_setting, jobs))
    wall = time.perf_counter() - tic
    by_grid = {name: [p for p in points if p["options"]["experiment"] == name] for name in GRIDS}
    args.out.mkdir(parents=True, exist_ok=True)
    from crossdistill.rundir import stamp  # (after the pool: this process imports torch only now)

    payload = {"stamp": stamp(json.dumps([folds, epochs])).model_dump(),
               "protocol": {"folds": folds, "epochs": epochs, "n_train": 200, "n_test": 1000, "optimizer": "sgd",
                            "lr": 0.1, "kd": "CE + KL at T=1, weights 1, 1", "selection": "last epoch"},
               "wall_seconds": wall, "workers": args.workers, "quick": args.quick, "experiments": by_grid}
    payload["diagnose_validation"] = {"gamma + alpha": validation(by_grid["gamma"] + by_grid["alpha"]),
                                      "gamma": validation(by_grid["gamma"]), "alpha": validation(by_grid["alpha"])}
    (args.out / "mfh.json").write_text(json.dumps(payload, indent=1))
    plot(by_grid["gamma"], "gamma", args.out / "mfh_gamma.png")
    plot(by_grid["alpha"], "alpha", args.out / "mfh_alpha.png")
    plot_general(by_grid["general"], args.out / "mfh_general.png")
    for name, key in (("gamma", "gamma"), ("alpha", "alpha"), ("general", "shared")):
        print(f"\n## {name}\n" + "\n".join(table(by_grid[name], key)))
    print("\n## diagnose vs the measured KD gain")
    for name, check in payload["diagnose_validation"].items():
        print(f"{name}: Spearman {check['spearman']:+.2f} (p {check['spearman_p']:.3f}) over {check['settings']} "
              f"settings; verdict = measured class in {check['verdict_matches']} of {check['settings']}; sign "
              f"right in {check['sign_matches']} of {check['signed_settings']} where both call a sign")
    print(f"\n{len(points)} settings x {folds} draws in {wall:.0f} s on {args.workers} worker(s)")


if __name__ == "__main__":
    sys.exit(main())
