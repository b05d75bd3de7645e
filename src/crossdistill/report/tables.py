"""``results.json`` -> tables (markdown, CSV) and plain-language verdicts. Reads files only."""

from __future__ import annotations

import csv
import io

from crossdistill.stats import MIN_RUNS

SELECTION = {"labels": "val labels", "teacher": "teacher agr.", "last": "last epoch"}
COST_COLUMNS = ["params", "MFLOPs", "latency b1 (ms)", "latency b64 (ms)", "size (kB)"]
def metric_names(results: dict) -> list[str]:
    """The run's test metrics, headline first (as its task named them)."""
    return results["metric_names"]


def headline(results: dict) -> str:
    return metric_names(results)[0]


def columns(results: dict) -> list[str]:
    return ["model", "modalities", "teacher", "labels", "selection", *metric_names(results), *COST_COLUMNS]


def describe_metrics(results: dict) -> str:
    return results["metrics_text"]


def metric_style(results: dict, name: str) -> tuple[float, int, str]:
    """(scale, decimals, unit) of a metric as its task prints it: a share in % or a number as it is."""
    scale, decimals, unit = results["metric_style"][name]
    return float(scale), int(decimals), str(unit)


def pm(stat: dict, scale: float = 100.0, decimals: int = 1) -> str:
    """"mean ± std", or "mean (n = 1)" for a single run (its spread is unknown, not 0)."""
    if len(stat.get("per_seed", [])) == 1:
        return f"{stat['mean'] * scale:.{decimals}f} (n = 1)"
    return f"{stat['mean'] * scale:.{decimals}f} ± {stat['std'] * scale:.{decimals}f}"


def metric_pm(results: dict, name: str, stat: dict) -> str:
    scale, decimals, _ = metric_style(results, name)
    return pm(stat, scale, decimals)


def metric_value(results: dict, name: str, value: float, unit: bool = True) -> str:
    scale, decimals, suffix = metric_style(results, name)
    return f"{value * scale:.{decimals}f}{suffix if unit else ''}"


def rows(results: dict) -> list[dict[str, str]]:
    out = []
    for name, m in results["models"].items():
        out.append({
            "model": name,
            "modalities": "+".join(m["modalities"]),
            "teacher": m.get("teacher") or (f"via {m['init_from']}" if m.get("init_from") else "-"),
            "labels": "all" if m["role"] == "teacher" else f"{m['student_labels']:.0%}",
            "selection": SELECTION[m.get("select_on", "labels")],
            **{metric: metric_pm(results, metric, m["metrics"][metric]) for metric in metric_names(results)},
            "params": f"{m['params']:,}",
            "MFLOPs": f"{m['flops'] / 1e6:.2f}",
            "latency b1 (ms)": f"{m['latency_ms']['batch1']:.2f}",
            "latency b64 (ms)": f"{m['latency_ms']['batch64']:.2f}",
            "size (kB)": f"{(m.get('size_bytes') or 0) / 1024:.0f}",
        })
    return out


def markdown(results: dict) -> str:
    names = columns(results)
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    lines += ["| " + " | ".join(r[c] for c in names) + " |" for r in rows(results)]
    return "\n".join(lines)


def csv_text(results: dict) -> str:
    """One row per model, numbers as numbers (a share as a fraction, counts as integers), for other tools."""
    buffer = io.StringIO()
    metrics = metric_names(results)
    names = ["model", "modalities", "teacher", "labels", "selection", "n_runs",
             *[f"{m}_{stat}" for m in metrics for stat in ("mean", "std")],
             "params", "flops", "latency_ms_batch1", "latency_ms_batch64", "size_bytes"]
    writer = csv.DictWriter(buffer, fieldnames=names)
    writer.writeheader()
    for name, m in results["models"].items():
        shown = rows(results)[list(results["models"]).index(name)]
        writer.writerow({
            "model": name, "modalities": shown["modalities"], "teacher": shown["teacher"],
            "labels": 1.0 if m["role"] == "teacher" else m["student_labels"], "selection": shown["selection"],
            "n_runs": len(m["runs"]),
            **{f"{metric}_{stat}": m["metrics"][metric][stat] for metric in metrics for stat in ("mean", "std")},
            "params": m["params"], "flops": int(m["flops"]), "latency_ms_batch1": m["latency_ms"]["batch1"],
            "latency_ms_batch64": m["latency_ms"]["batch64"], "size_bytes": m.get("size_bytes") or 0})
    return buffer.getvalue()


def compression(results: dict) -> str:
    """How much smaller and cheaper the student is than the teacher."""
    models = results["models"]
    students = [m for m in models.values() if m["role"] == "student"]
    if "teacher" not in models or not students:
        return ""
    teacher, student = models["teacher"], students[0]
    fewer = teacher["params"] >= student["params"]
    ratio = teacher["params"] / student["params"] if fewer else student["params"] / teacher["params"]
    sizes = (f"The student has {ratio:.1f}x {'fewer' if fewer else 'more'} parameters than the teacher "
             f"({student['params']:,} vs {teacher['params']:,})")
    if teacher.get("frozen_pretrained_params"):
        return (f"{sizes}, counting the teacher's frozen pretrained encoder ({teacher['frozen_pretrained_params']:,}"
                " parameters, and its float32 weights in the size on disk), which runs once at preprocessing: its "
                "FLOPs and latency are not measured, so no FLOPs are compared and the teacher's latency leaves it "
                "out.")
    # Below 0.1% of the teacher's FLOPs the count is dominated by what the counter skips (embedding lookups).
    if student["flops"] <= 0.001 * teacher["flops"]:
        return f"{sizes}; its FLOP count is too small to compare (embedding lookups are not counted)."
    ratio = (f"{teacher['flops'] / student['flops']:.1f}x fewer" if teacher["flops"] >= student["flops"]
             else f"{student['flops'] / teacher['flops']:.1f}x more")
    return (f"{sizes} and {ratio} FLOPs ({student['flops'] / 1e6:.2f} vs {teacher['flops'] / 1e6:.2f} MFLOPs per "
            "sample).")


def spread_within_fold(results: dict) -> list[str]:
    """Seed-to-seed standard deviation of the headline metric on each fixed fold (the stability of training)."""
    lines, metric = [], headline(results)
    for name, m in results["models"].items():
        stds = m.get("std_within_fold", {})
        if m["role"] == "student" and len(m["runs"]) > len(stds):
            shown = ", ".join(f"fold {f}: {metric_value(results, metric, v)}" for f, v in stds.items())
            lines.append(f"`{name}`: {shown}")
    return lines


def verdicts(results: dict) -> list[str]:
    """Each taught student vs the student trained alone on the same label budget, under the one statistical
    rule (``results["comparisons"]``, docs/statistics.md): the paired difference on the headline metric with its
    95% interval; "helps"/"hurts" only when the interval excludes 0, no verdict below 3 paired runs."""
    lines = []
    models = results["models"]
    compared = {c["model"] for c in results.get("comparisons", [])}
    for c in results.get("comparisons", []):
        d, metric = c["paired_diff"], c["metric"]
        scale, decimals, unit = metric_style(results, metric)
        points = "points" if unit == "%" else metric
        interval = (f"{d['mean'] * scale:+.{decimals}f} {points}, 95% CI {d['ci_low'] * scale:+.{decimals}f} to "
                    f"{d['ci_high'] * scale:+.{decimals}f}, {d['n_runs']} paired run{'s' * (d['n_runs'] != 1)}")
        said = {"helps": "distillation helps", "hurts": "distillation hurts",
                "no clear difference": "no clear difference (the interval includes 0)",
                "no verdict": f"no verdict (fewer than {MIN_RUNS} paired runs: run more seeds, or --full)"}
        ours, theirs = models[c["model"]]["metrics"][metric], models[c["reference"]]["metrics"][metric]
        lines.append(f"`{c['model']}` vs `{c['reference']}` ({c['labels']:.0%} labels): {said[d['verdict']]} "
                     f"({interval}; {metric_pm(results, metric, ours)} vs {metric_pm(results, metric, theirs)}).")
    metric = headline(results)
    for name, m in models.items():
        if m["role"] == "student" and (m.get("teacher") or m.get("init_from")) and name not in compared:
            score = metric_pm(results, metric, m["metrics"][metric])
            lines.append(f"`{name}` ({m['student_labels']:.0%} labels): {score} {metric}; no student trained alone "
                         "on this budget to compare with.")
    return lines


def towers_table(results: dict) -> list[str]:
    """Retrieval: what each tower of each model costs (each is deployed and exported on its own)."""
    models = {n: m for n, m in results["models"].items() if m.get("towers")}
    if not models:
        return []
    lines = ["| model | tower | params | MFLOPs | latency b1 (ms) |", "|---|---|---|---|---|"]
    for name, m in models.items():
        for modality, cost in m["towers"].items():
            lines.append(f"| {name} | {modality} | {cost['params']:,} | {cost['flops'] / 1e6:.2f} | "
                         f"{cost['latency_ms_batch1']:.2f} |")
    return ["## Towers", "", *lines, ""]
