"""``results.json`` -> tables (markdown, CSV) and plain-language verdicts. Reads files only."""

from __future__ import annotations

import csv
import io

COLUMNS = ["model", "modalities", "teacher", "labels", "selection", "accuracy", "macro_f1", "params", "MFLOPs",
           "latency b1 (ms)", "latency b64 (ms)", "size (kB)"]


def pm(stat: dict, scale: float = 100.0) -> str:
    return f"{stat['mean'] * scale:.1f} ± {stat['std'] * scale:.1f}"


def rows(results: dict) -> list[dict[str, str]]:
    out = []
    for name, m in results["models"].items():
        out.append({
            "model": name,
            "modalities": "+".join(m["modalities"]),
            "teacher": m.get("teacher") or "-",
            "labels": "all" if m["role"] == "teacher" else f"{m['student_labels']:.0%}",
            "selection": {"labels": "val labels", "teacher": "teacher agr."}.get(m.get("select_on", "labels")),
            "accuracy": pm(m["metrics"]["accuracy"]),
            "macro_f1": pm(m["metrics"]["macro_f1"]),
            "params": f"{m['params']:,}",
            "MFLOPs": f"{m['flops'] / 1e6:.2f}",
            "latency b1 (ms)": f"{m['latency_ms']['batch1']:.2f}",
            "latency b64 (ms)": f"{m['latency_ms']['batch64']:.2f}",
            "size (kB)": f"{(m.get('size_bytes') or 0) / 1024:.0f}",
        })
    return out


def markdown(results: dict) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(r[c] for c in COLUMNS) + " |" for r in rows(results)]
    return "\n".join(lines)


def csv_text(results: dict) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows(results))
    return buffer.getvalue()


def compression(results: dict) -> str:
    """How much smaller and cheaper the student is than the teacher."""
    models = results["models"]
    students = [m for m in models.values() if m["role"] == "student"]
    if "teacher" not in models or not students:
        return ""
    teacher, student = models["teacher"], students[0]
    sizes = (f"The student has {teacher['params'] / student['params']:.0f}x fewer parameters than the teacher "
             f"({student['params']:,} vs {teacher['params']:,})")
    if teacher.get("frozen_pretrained_params"):
        return (f"{sizes}, counting the teacher's frozen pretrained encoder ({teacher['frozen_pretrained_params']:,}"
                " parameters), which runs once at preprocessing: its FLOPs are not counted, so none are compared.")
    # Below 0.1% of the teacher's FLOPs the count is dominated by what the counter skips (embedding lookups).
    if student["flops"] <= 0.001 * teacher["flops"]:
        return f"{sizes}; its FLOP count is too small to compare (embedding lookups are not counted)."
    return (f"{sizes} and {teacher['flops'] / student['flops']:.1f}x fewer FLOPs "
            f"({student['flops'] / 1e6:.2f} vs {teacher['flops'] / 1e6:.2f} MFLOPs per sample).")


def spread_within_fold(results: dict) -> list[str]:
    """Seed-to-seed standard deviation of accuracy on each fixed fold (the stability of training itself)."""
    lines = []
    for name, m in results["models"].items():
        stds = m.get("accuracy_std_within_fold", {})
        if m["role"] == "student" and len(m["runs"]) > len(stds):
            shown = ", ".join(f"fold {f}: {v * 100:.1f}" for f, v in stds.items())
            lines.append(f"`{name}`: {shown} points")
    return lines


def verdicts(results: dict) -> list[str]:
    """For each distilled student, compared with the student trained alone on the same label budget: helps,
    hurts, or no clear difference (the gap is within one pooled standard deviation)."""
    models = results["models"]
    alone = {m["student_labels"]: name for name, m in models.items()
             if m["role"] == "student" and not m.get("teacher")}
    lines = []
    for name, m in models.items():
        if m["role"] != "student" or not m.get("teacher"):
            continue
        reference = alone.get(m["student_labels"])
        ours = m["metrics"]["accuracy"]
        if reference is None:
            lines.append(f"`{name}` ({m['student_labels']:.0%} labels): {pm(ours)} accuracy; no student trained "
                         "alone on this budget to compare with.")
            continue
        theirs = models[reference]["metrics"]["accuracy"]
        gap = (ours["mean"] - theirs["mean"]) * 100
        spread = ((ours["std"] ** 2 + theirs["std"] ** 2) / 2) ** 0.5 * 100
        word = "helps" if gap > spread else "hurts" if gap < -spread else "makes no clear difference"
        runs = min(len(ours["per_seed"]), len(theirs["per_seed"]))
        caveat = " Single run: indicative only (more seeds, or --full, give a spread)." if runs < 2 else ""
        lines.append(f"`{name}` vs `{reference}` ({m['student_labels']:.0%} labels): distillation {word} "
                     f"({gap:+.1f} points; {pm(ours)} vs {pm(theirs)}).{caveat}")
    return lines
