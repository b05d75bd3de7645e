"""Report of a run directory: ``report.md``, ``report.html`` (self-contained), ``results.csv``, plots.

Reads ``results.json`` (through ``RunDir``) and ``models/*/*/metrics.jsonl`` only; never imports training code.
"""

from __future__ import annotations

import base64
import html
import re
import shutil
from pathlib import Path

from crossdistill.report.deployment import deployment_section
from crossdistill.report.plots import confusion_matrices, score_vs_budget, score_vs_latency, training_curves
from crossdistill.report.tables import (
    compression,
    csv_text,
    describe_metrics,
    headline,
    markdown,
    metric_style,
    metric_value,
    rows,
    spread_within_fold,
    towers_table,
    verdicts,
)
from crossdistill.rundir import RunDir

SELECTION_TEXT = {"labels": "Model selection on the validation split (labels)",
                  "teacher": "Model selection on the validation split (agreement with the teacher)",
                  "last": "No model selection (the last epoch's weights)"}


def _selection(results: dict) -> str:
    if results["select_on"] == "labels":
        return results["selection_text"]  # (the task's own words)
    return SELECTION_TEXT[results["select_on"]]


def _header(results: dict) -> list[str]:
    folds = "; ".join(f"fold {f['fold']}: {f['description']}" for f in results["folds"])
    return [f"# crossdistill report: {results['name']}", "",
            f"Dataset `{results['dataset']}` ({folds}). Test {describe_metrics(results)}, mean ± std over "
            f"seeds {results['seeds']} x {len(results['folds'])} fold(s). {_selection(results)}; "
            "the test split is used only for the numbers below. CPU latency: median forward time with "
            f"{results['latency_threads']} thread(s).", ""]


def _ablation(results: dict) -> list[str]:
    """Robustness: each multimodal model's headline score with all its modalities, then with each one removed."""
    models = {n: m for n, m in results["models"].items() if m.get("modality_ablation")}
    if not models:
        return []
    metric = headline(results)
    removed = sorted({mod for m in models.values() for mod in m["modality_ablation"]})
    lines = ["| model | all present | " + " | ".join(f"without {mod}" for mod in removed) + " |",
             "|---|---|" + "---|" * len(removed)]
    for name, m in models.items():
        cells = [metric_value(results, metric, m["modality_ablation"][mod][metric], unit=False)
                 if mod in m["modality_ablation"] else "-" for mod in removed]
        lines.append(f"| {name} | {metric_value(results, metric, m['metrics'][metric]['mean'], unit=False)} | "
                     + " | ".join(cells) + " |")
    unit = " %" if metric_style(results, metric)[2] == "%" else ""
    return [f"## What each modality carries (test {metric}{unit}, a modality removed at test time)", "", *lines, ""]


def _ablation_sentences(results: dict) -> list[str]:
    """The robustness table as one "- " line per model (for the HTML list)."""
    lines, metric = [], headline(results)
    for name, m in results["models"].items():
        if m.get("modality_ablation"):
            removed = "; ".join(f"without {mod} {metric_value(results, metric, score[metric])}"
                                for mod, score in m["modality_ablation"].items())
            lines.append(f"- {name}: {metric} {metric_value(results, metric, m['metrics'][metric]['mean'])} with every "
                         f"modality; {removed}")
    return lines


def _soft_labels(results: dict) -> list[str]:
    """Each teacher's soft labels on the training split (mean top probability and entropy at T = 1)."""
    lines = []
    for name, m in results["models"].items():
        for soft in m.get("soft_labels", []):
            lines.append(f"- `{name}` (fold {soft['fold']}): mean top probability {soft['mean_top_probability']:.2f}, "
                         f"entropy {soft['normalised_entropy']:.2f} of the maximum ({soft['rows']} training rows)"
                         + (" — nearly uniform: distillation from it can do little" if soft["flat"] else ""))
    return ["## What the teachers' soft labels carry (T = 1, training split)", "", *lines, ""] if lines else []


def _warnings(results: dict) -> list[str]:
    return ["## Warnings", "", *[f"- **{w}**" for w in results["warnings"]], ""] if results["warnings"] else []


def build(run_dir: Path) -> dict[str, Path]:
    """Write the report of ``run_dir`` into ``run_dir/report/``; returns the paths written."""
    run = RunDir(run_dir)
    run_dir = run.root
    results = run.load_results().model_dump()
    out = run.report
    (out / "plots").mkdir(parents=True, exist_ok=True)
    plots = {
        "Training curves (validation)": training_curves(run_dir, results, out / "plots" / "curves.png"),
        f"Test {headline(results)} vs latency": score_vs_latency(results, out / "plots" / "score_latency.png"),
    }
    budget = score_vs_budget(results, out / "plots" / "budget.png")
    if budget is not None:
        plots[f"Test {headline(results)} vs the student's label budget (95% interval of each mean)"] = budget
    if any(sum(map(sum, m["confusion"])) for m in results["models"].values()):  # tasks with classes
        plots["Confusion matrices (summed over seeds and folds)"] = confusion_matrices(
            results, out / "plots" / "confusion.png")
    notes = [f"- {line}" for line in verdicts(results)]
    spread = [f"- {line}" for line in spread_within_fold(results)]
    diagnosis = (run_dir / "diagnose.md").read_text().splitlines() if (run_dir / "diagnose.md").is_file() else []
    diagnosis += deployment_section(run_dir)  # (what `crossdistill export` measured, once it has run)
    tuning = run_dir / "tune" / "tune.md"  # written by `crossdistill tune` into the same run directory
    if tuning.is_file():
        diagnosis += ["", *tuning.read_text().splitlines()]
        if (run_dir / "tune" / "history.png").is_file():  # (copied beside the others: report.md links plots/)
            shutil.copy(run_dir / "tune" / "history.png", out / "plots" / "tuning.png")
            plots["Tuning: validation score of each trial, per fold"] = out / "plots" / "tuning.png"
    md = [*_header(results), *_warnings(results), markdown(results), "", compression(results), "",
          *towers_table(results), *_soft_labels(results),
          "## Does distillation help?", "",
          *notes, "", *([f"## Seed-to-seed spread on a fixed fold ({headline(results)} std)", "", *spread, ""]
            if spread else []),
          *_ablation(results), *diagnosis, *[f"![{title}](plots/{p.name})" for title, p in plots.items()]]
    (out / "report.md").write_text("\n".join(md) + "\n")
    (out / "results.csv").write_text(csv_text(results))
    (out / "report.html").write_text(_html(results, notes + _ablation_sentences(results), plots,
                                           _soft_labels(results) + diagnosis))
    return {"markdown": out / "report.md", "html": out / "report.html", "csv": out / "results.csv"}


def inline(text: str) -> str:
    """One line of our Markdown as HTML: escaped, `code` and **bold** rendered (no raw Markdown reaches the page)."""
    out = html.escape(text)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", out)


STYLE = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
         "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right;"
         "white-space:nowrap}"
         "th{background:#f0f3f7}tr:nth-child(even) td{background:#fafafa}td:first-child{text-align:left}"
         "code{background:#f3f3f3;padding:0 3px;border-radius:3px}img{max-width:100%}"
         ".warnings{border:2px solid #d97706;background:#fff7e6;padding:.5em 1em;border-radius:6px}")


def _html(results: dict, notes: list[str], plots: dict[str, Path], diagnosis: list[str]) -> str:
    table = rows(results)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in r.values()) + "</tr>" for r in table)
    images = "".join(
        f"<h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' "
        f"src='data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}'/>" for title, p in plots.items())
    title, *intro_lines = [line for line in _header(results) if line]
    intro = "".join(f"<p>{inline(line)}</p>" for line in intro_lines)
    warnings = ("<div class='warnings'><h2>Warnings</h2><ul>" + "".join(f"<li>{inline(w)}</li>" for w in
                results["warnings"]) + "</ul></div>") if results["warnings"] else ""
    verdict = "".join(f"<li>{inline(n[2:])}</li>" for n in notes)
    verdict += "".join(f"<li>seed spread, {inline(n)}</li>" for n in spread_within_fold(results))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>crossdistill report: "
            f"{html.escape(results['name'])}</title><style>{STYLE}</style></head><body>"
            f"<h1>{inline(title.lstrip('# '))}</h1>{intro}{warnings}<table><tr>{head}</tr>{body}</table>"
            f"<p>{inline(compression(results))}</p>"
            f"<h2>Does distillation help?</h2><ul>{verdict}</ul>{_diagnosis_html(diagnosis)}{images}</body></html>")


def _diagnosis_html(lines: list[str]) -> str:
    """The sections other commands write in Markdown (``diagnose``, ``tune``) as HTML: headings, paragraphs,
    lists, tables and fenced code."""
    parts, open_tag = [], ""
    for line in lines:
        if open_tag == "pre":  # inside a fenced block: verbatim until its closing fence
            parts.append("</pre>" if line.startswith("```") else html.escape(line) + "\n")
            open_tag = "" if line.startswith("```") else "pre"
            continue
        tag = "ul" if line.startswith("- ") else "table" if line.startswith("|") else ""
        if tag != open_tag:
            parts.append((f"</{open_tag}>" if open_tag else "") + (f"<{tag}>" if tag else ""))
            open_tag = tag
        if line.startswith("```"):
            parts.append("<pre>")
            open_tag = "pre"
        elif line.startswith("### "):
            parts.append(f"<h3>{inline(line[4:])}</h3>")
        elif line.startswith("## "):
            parts.append(f"<h2>{inline(line[3:])}</h2>")
        elif tag == "ul":
            parts.append(f"<li>{inline(line[2:])}</li>")
        elif tag == "table" and not line.startswith("|---"):
            parts.append("<tr>" + "".join(f"<td>{inline(c.strip())}</td>" for c in line.strip("|").split("|"))
                         + "</tr>")
        elif line.strip() and not tag:
            parts.append(f"<p>{inline(line)}</p>")
    return "".join(parts) + (f"</{open_tag}>" if open_tag else "")
