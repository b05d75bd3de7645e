"""Render the numbers README.md publishes about the demo, and docs/methods.md's tables, from their committed
results files, between markers (``<!-- demo:quick -->`` ... ``<!-- /demo:quick -->``, ``<!-- methods -->``), so
that no published number is typed by hand; ``tests/test_published_numbers.py`` fails when a page differs from
what this renders.

    python benchmarks/published.py            # rewrite README.md's blocks from benchmarks/results/demo*.json
    python benchmarks/published.py --copy RUN_DIR [--full]   # first store a finished demo run's results.json

The results files are the demo runs' own ``results.json`` (stamped with version, commit, config hash, date and
machine by the run itself).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FILES = {"quick": ROOT / "benchmarks" / "results" / "demo.json",
         "full": ROOT / "benchmarks" / "results" / "demo_full.json"}
TIMES = {"quick": ROOT / "benchmarks" / "results" / "demo_time.json",
         "full": ROOT / "benchmarks" / "results" / "demo_time_full.json"}


def score(model: dict) -> str:
    """Accuracy in %, "mean ± std" or "mean (n = 1)", as the report prints it."""
    from crossdistill.report.tables import pm

    return pm(model["metrics"]["accuracy"])


def comparison_rows(results: dict) -> list[str]:
    """One table row per taught student, by budget: alone, distilled, paired difference with its 95% CI, verdict
    (a taught student with no reference, as at 0% labels, has no difference)."""
    models, rows = results["models"], []
    for c in results["comparisons"]:
        d = c["paired_diff"]
        alone, taught = score(models[c["reference"]]), score(models[c["model"]])
        rows.append((c["labels"], f"| {c['labels']:.0%} | {alone} | {taught} | {100 * d['mean']:+.1f} "
                     f"({100 * d['ci_low']:+.1f} to {100 * d['ci_high']:+.1f}) | {d['n_runs']} | **{d['verdict']}** |"))
    compared = {c["model"] for c in results["comparisons"]}
    for name, m in models.items():
        if m["role"] == "student" and m.get("teacher") and name not in compared:
            rows.append((m["student_labels"], f"| {m['student_labels']:.0%} | - | {score(m)} | - | {len(m['runs'])} | "
                         "no student alone to compare with |"))
    return [line for _, line in sorted(rows, key=lambda row: row[0])]


def warning_line(results: dict) -> str:
    """The run's undertraining warnings, counted (the report lists them in full)."""
    counts = [re.match(r"(\S+): its validation score was still rising at the last epoch in (\d+) of (\d+)", w)
              for w in results["warnings"]]
    said = [f"{m.group(1)} {m.group(2)}/{m.group(3)}" for m in counts if m]
    if not said:
        return ""
    return ("Runs still improving at their last epoch (the run's warning; more epochs than the demo's would "
            f"likely raise these numbers): {', '.join(said)}.")


def stamp_line(results: dict) -> str:
    s = results["stamp"]
    return (f"Rendered from `{{file}}`: crossdistill {s['package_version']}, commit {(s['commit'] or '?')[:10]}, "
            f"config hash {s['config_hash']}, {s['date'][:10]}, {s['machine'].split(',')[0]} "
            f"({results['latency_threads']} thread(s) for latency).")


def block(kind: str, results: dict) -> str:
    teacher = results["models"]["teacher"]
    student = next(m for m in results["models"].values() if m["role"] == "student")
    folds = len(results["folds"])
    lines = [f"Test accuracy in %, {folds} test speakers x seeds {results['seeds']} (mean ± std over runs); the "
             "difference is distilled minus alone, paired per (speaker, seed), with its 95% interval from the "
             "hierarchical bootstrap of docs/statistics.md. Teacher (image CNN, "
             f"{teacher['params']:,} parameters): {score(teacher)}; student: {student['params']:,} parameters.", "",
             "| labels | alone | distilled | difference (95% CI) | paired runs | verdict |",
             "|---|---|---|---|---|---|", *comparison_rows(results), "",
             *([warning_line(results), ""] if warning_line(results) else []),
             stamp_line(results).format(file=FILES[kind].relative_to(ROOT))]
    timing = json.loads(TIMES[kind].read_text()) if TIMES[kind].is_file() else None
    if timing and timing["stamp"]["config_hash"] == results["stamp"]["config_hash"]:  # (the same run)
        lines.append(f"Wall time {timing['wall_s']:.0f} s on {timing['stamp']['machine'].split(', ')[1]} with "
                     f"--jobs {timing['jobs']} (`{TIMES[kind].relative_to(ROOT)}`).")
    return "\n".join(lines)


INT8_JSON = ROOT / "benchmarks" / "results" / "int8.json"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"


def change(points_lost: float) -> str:
    """int8's accuracy change in points, signed, without a negative zero."""
    return f"{round(-points_lost, 2) + 0.0:+.2f}"


def int8_short(r: dict) -> str:
    s = r["summary"]
    return (f"{s['size_ratio']:.1f}x smaller on disk ({s['weights_ratio']:.1f}x for the weights alone), changes "
            f"accuracy by {change(s['points_lost_mean'])} points on average over the six test speakers (worst "
            f"speaker {change(s['points_lost_worst_fold'])}), and runs at {s['latency_ratio_batch1']:.1f}x / "
            f"{s['latency_ratio_batch64']:.1f}x float32's CPU time at batch 1 / 64 (`benchmarks/int8.py`):")


def int8_section(r: dict) -> str:
    s, g, stamp = r["summary"], r["goals"], r["stamp"]
    met = lambda ok: "met" if ok else "**not met**"  # noqa: E731
    rows = ["| graph | size on disk | weights | test accuracy (mean over folds) | latency batch 1 | latency batch 64 |",
            "|---|---|---|---|---|---|"]
    for graph in ("fp32", "int8"):
        weights = r["folds"][0][f"{graph}_weights_bytes"] / 1024
        rows.append(f"| {graph} | {s[f'{graph}_size_kb']:.1f} kB | {weights:.1f} kB | {s[f'{graph}_accuracy']:.1f}% | "
                    f"{s[f'{graph}_latency_ms_batch1']:.3f} ms | {s[f'{graph}_latency_ms_batch64']:.2f} ms |")
    faster = s["latency_ratio_batch1"] < 1 and s["latency_ratio_batch64"] < 1
    return "\n".join([
        *rows, "",
        f"- Size: {s['size_ratio']:.1f}x smaller on disk (goal at least {g['size_ratio_at_least']:.0f}x: "
        f"{met(s['goals_met']['size'])}); the weights alone shrink {s['weights_ratio']:.1f}x, the rest of the file "
        "(node and tensor names, quantisation scales and zero points, the graph itself) does not, and on a "
        "student this small it is a large share.",
        f"- Accuracy: int8 minus float32 {change(s['points_lost_mean'])} points on average, "
        f"{change(s['points_lost_worst_fold'])} on the worst fold (goal: at most "
        f"{g['accuracy_points_lost_at_most']:.0f} lost: {met(s['goals_met']['accuracy'])}); "
        f"each fold's whole test speaker ({r['folds'][0]['test_rows']} clips), "
        f"{'static' if all(f['mode'] == 'static' for f in r['folds']) else 'static or dynamic'} quantisation.",
        f"- Latency (onnxruntime, one thread, median over the folds): int8 takes {s['latency_ratio_batch1']:.2f}x "
        f"float32's time at batch 1 and {s['latency_ratio_batch64']:.2f}x at batch 64"
        + (": faster." if faster else ": not faster for a model this small, whose time goes to quantising and "
           "dequantising activations rather than to arithmetic: here int8 pays in size only (larger models were not "
           "measured)."),
        f"- Rendered from `benchmarks/results/int8.json` (version {stamp['package_version']}, commit "
        f"{(stamp['commit'] or '?')[:10]}, config hash {stamp['config_hash']}, {stamp['date'][:10]})."])


def rendered_deploy_doc() -> str:
    return replace_block(DEPLOY_DOC.read_text(), "int8", int8_section(json.loads(INT8_JSON.read_text())))


def rendered_readme() -> str:
    text = README.read_text()
    for kind, path in FILES.items():
        if path.is_file():
            text = replace_block(text, f"demo:{kind}", block(kind, json.loads(path.read_text())))
    text = replace_block(text, "peer", peer_sentence(json.loads(PEER_JSON.read_text())), inline=True)
    text = replace_block(text, "overhead", overhead_sentence(json.loads(OVERHEAD_JSON.read_text())), inline=True)
    text = replace_block(text, "mst-cost", mst_cost_range(json.loads(METHODS_JSON.read_text())), inline=True)
    return replace_block(text, "int8-short", int8_short(json.loads(INT8_JSON.read_text()))) if INT8_JSON.is_file() \
        else text


PEER_JSON = ROOT / "benchmarks" / "results" / "peer.json"
PERFORMANCE_DOC = ROOT / "docs" / "performance.md"


def peer_sentence(peer: dict) -> str:
    return (f"on the same Hinton-KD experiment crossdistill is {peer['speedup']:.2f}x faster than torchdistill 1.1.5 "
            f"with its teacher cache and {peer['speedup_cache_off']:.2f}x with the cache off (library overhead "
            f"alone), at an accuracy gap of {peer['accuracy_gap_points']:+.1f} points over 3 seeds "
            "(`benchmarks/peer.py`, docs/performance.md)")


def peer_table(peer: dict) -> str:
    names = {"crossdistill": "crossdistill (teacher cache)", "crossdistill_cache_off": "crossdistill (cache off)",
             "torchdistill": "torchdistill (teacher online)"}
    lines = ["| | time, 3 students | test accuracy per seed | mean ± std |", "|---|---|---|---|"]
    for key, name in names.items():
        r = peer[key]
        lines.append(f"| {name} | {r['seconds']:.1f} s | {', '.join(f'{100 * a:.1f}' for a in r['accuracy_per_seed'])}"
                     f" | {100 * r['accuracy_mean']:.1f} ± {100 * r['accuracy_std']:.1f} |")
    s = peer["stamp"]
    lines += ["", f"Speed-up over torchdistill: {peer['speedup']:.2f}x with the cache, "
              f"{peer['speedup_cache_off']:.2f}x without (target ≥ 2x); accuracy gap "
              f"{peer['accuracy_gap_points']:+.1f} points (target ± 0.5). Rendered from "
              f"`benchmarks/results/peer.json` (commit {(s['commit'] or '?')[:10]}, {s['date'][:10]})."]
    return "\n".join(lines)


def replace_block(text: str, name: str, content: str, inline: bool = False) -> str:
    """``text`` with the content between ``<!-- name -->`` and ``<!-- /name -->`` replaced."""
    sep = "" if inline else "\n"
    pattern = re.compile(rf"(<!-- {name} -->{sep}).*?({sep}<!-- /{name} -->)", re.S)
    if not pattern.search(text):
        raise ValueError(f"no <!-- {name} --> block")
    return pattern.sub(lambda m: m.group(1) + content + m.group(2), text)


OVERHEAD_JSON = ROOT / "benchmarks" / "results" / "overhead.json"


def overhead_sentence(o: dict) -> str:
    return (f"av-mnist, a teacher {o['teacher_params'] / o['student_params']:.0f}x the student: "
            f"{o['cached_over_alone']:.2f}x; with the teacher online: {o['online_over_alone']:.2f}x; building the "
            f"cache: {o['cache_build_s']:.1f} s")


def overhead_section(o: dict) -> str:
    """docs/performance.md's speed section, from overhead.json."""
    e, w, s = o["epoch_s"], o["data_wait_share"], o["stamp"]
    rows = [("(a) student alone", e["a_student_alone"], "1.00", w["a"]),
            ("(b) distillation, teacher online", e["b_kd_online"], f"{o['online_over_alone']:.2f}", w["b"]),
            ("(c) distillation, teacher cache", e["c_kd_cached"],
             f"**{o['cached_over_alone']:.2f}** (target ≤ {o['target_cached_over_alone']:.2f})", w["c"])]
    lines = [f"av-mnist (`configs/av_mnist/kd.yaml`): an image teacher of {o['teacher_params']:,} parameters and "
             f"{o['teacher_flops'] / 1e6:.1f} MFLOPs, **{o['teacher_params'] / o['student_params']:.0f}x** the audio "
             f"student ({o['student_params']:,}; {o['student_flops'] / 1e6:.1f} MFLOPs); {o['samples']:,} training "
             f"pairs, batch 64, audio augmented on the fly; each through the library's own `fit`, median epoch over "
             f"the {o['epochs_timed']} epochs after the first, {o['threads']} threads, measured side by side in one "
             "run:", "", "| | epoch (s) | vs alone | waiting for data |", "|---|---|---|---|"]
    lines += [f"| {name} | {epoch:.3f} | {ratio} | {100 * wait:.1f}% |" for name, epoch, ratio, wait in rows]
    lines += ["", f"Building the cache: {o['cache_build_s']:.2f} s (once per teacher and data; reused by every "
              f"student, seed and later run); memory-mapped: {o['cache_memory_mapped']}. Peak resident memory of a "
              f"whole `crossdistill run` of the config: {o['peak_rss_mb_of_a_run']:.0f} MB. Rendered from "
              f"`benchmarks/results/overhead.json` (commit {(s['commit'] or '?')[:10]}, {s['date'][:10]})."]
    return "\n".join(lines)


SIDE_JSON = ROOT / "benchmarks" / "results" / "demo_side_by_side.json"


def side_by_side_sentence(r: dict) -> str:
    """The av-digits demo's wall time now against before the decoded store (``benchmarks/demo_side_by_side.py``)."""
    seconds = "; ".join(f"{name}: {', '.join(f'{s:.0f}' for s in values)} s" for name, values in r["seconds"].items())
    spread = max(100 * (max(v) / min(v) - 1) for v in r["seconds"].values())
    return (f"The av-digits demo (its quick rows, six folds, one process) takes {r['head_over_base']:.2f}x the "
            f"time it took before the decoded store (commit {r['base_commit']}; goal at most {r['target']:.2f}x: "
            f"{'met' if r['met'] else '**not met**'}); {r['rounds']} alternating rounds, {seconds}: two rounds of "
            f"the same code differ by up to {spread:.0f}%, so the ratio is within that noise "
            f"(`benchmarks/results/demo_side_by_side.json`, commit {(r['stamp']['commit'] or '?')[:10]}).")


def rendered_performance_doc() -> str:
    text = replace_block(PERFORMANCE_DOC.read_text(), "peer", peer_table(json.loads(PEER_JSON.read_text())))
    if SIDE_JSON.is_file():
        text = replace_block(text, "demo-side", side_by_side_sentence(json.loads(SIDE_JSON.read_text())),
                             inline=True)
    return replace_block(text, "overhead", overhead_section(json.loads(OVERHEAD_JSON.read_text())))


DIAGNOSE_JSON = ROOT / "benchmarks" / "results" / "diagnose_real.json"
DIAGNOSE_DOC = ROOT / "docs" / "diagnose.md"


def diagnose_table(report: dict) -> str:
    """docs/diagnose.md's real-data table and summary, from diagnose_real.json."""
    lines = ["| setting | student labels | reach of teacher | reach of label | general share | score | verdict | "
             "KD gain measured | measured verdict |", "|---|---|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        lines.append(f"| {r['setting']} | {r['budget']:.0%} | {r['teacher_reach']:.3f} | {r['label_reach']:.3f} | "
                     f"{r['general_share']:.2f} | {r['score']:+.3f} | {r['verdict'].replace('distillation ', '')} | "
                     f"{100 * r['kd_gain']:+.1f} | {r['kd_measured']} |")
    m, s = report["summary"], report["stamp"]
    lines += ["", f"Spearman ρ of score and measured gain {m['spearman']:+.2f} (p = {m['spearman_p']:.2f}, "
              f"{m['settings']} settings); the sign is right in {m['sign_right']} of the {m['called']} settings it "
              f"calls; its verdict matches the measured one in {m['verdict_matches_measured']} of {m['settings']}. "
              f"{report['wall_seconds']:.0f} s on 2 cores. Rendered from `benchmarks/results/diagnose_real.json` "
              f"(commit {(s['commit'] or '?')[:10]}, {s['date'][:10]})."]
    return "\n".join(lines)


MFH_JSON = ROOT / "benchmarks" / "results" / "mfh.json"


def rendered_diagnose_doc() -> str:
    """docs/diagnose.md: the synthetic study's tables and summary (mfh.json), and the real-data table."""
    from mfh import doc_summary, doc_table

    mfh = json.loads(MFH_JSON.read_text())
    text = DIAGNOSE_DOC.read_text()
    checked = mfh["diagnose_validation"]["gamma + alpha"]["rows"]
    for name in ("gamma", "alpha", "general"):
        text = replace_block(text, f"mfh:{name}", doc_table(mfh["experiments"][name], name, checked))
    text = replace_block(text, "mfh:summary", doc_summary(mfh))
    table = diagnose_table(json.loads(DIAGNOSE_JSON.read_text()))
    return replace_block(text, "diagnose-real", table)


CASES = ROOT / "benchmarks" / "results" / "cases"
CASE_DOCS = [ROOT / "docs" / "real_cases.md", ROOT / "docs" / "retrieval.md"]


def case_block(results: dict, path: Path) -> str:
    """One shipped config's run as its report prints it: the table, the paired verdicts, the sizes, the stamp."""
    from crossdistill.report.tables import compression, markdown, towers_table, verdicts

    s = results["stamp"]
    towers = [line for line in towers_table(results) if not line.startswith("## ")]  # (retrieval: per tower)
    return "\n".join([markdown(results), "", *[f"- {line}" for line in verdicts(results)], "",
                      *(["Each tower on its own:", "", *towers] if towers else []),
                      *([compression(results), ""] if compression(results) else []),
                      f"Seeds {results['seeds']}; rendered from `{path.relative_to(ROOT)}` (crossdistill "
                      f"{s['package_version']}, commit {(s['commit'] or '?')[:10]}, {s['date'][:10]})."])


def rendered_case_docs() -> dict[Path, str]:
    """docs/real_cases.md and docs/retrieval.md with every ``<!-- case:NAME -->`` block rendered from
    ``benchmarks/results/cases/NAME.json``."""
    out = {}
    for doc in CASE_DOCS:
        text = doc.read_text()
        for name in re.findall(r"<!-- case:(\S+) -->", text):
            path = CASES / f"{name}.json"
            text = replace_block(text, f"case:{name}", case_block(json.loads(path.read_text()), path))
        out[doc] = text
    return out


METHODS_DOC = ROOT / "docs" / "methods.md"
METHODS_JSON = ROOT / "benchmarks" / "results" / "methods.json"


def rendered_methods_doc() -> str:
    """docs/methods.md with its ``<!-- methods -->`` block: the tables ``benchmarks/methods.py`` renders from
    ``methods.json`` (its first heading left out), with the file's stamp."""
    from methods import render as render_methods

    report = json.loads(METHODS_JSON.read_text())
    tables = render_methods(report).split("\n", 1)[1].strip()
    s = report["stamp"]
    tables += (f"\n\nRendered from `benchmarks/results/methods.json`: crossdistill {s['package_version']}, commit "
               f"{(s['commit'] or '?')[:10]}, {s['date'][:10]}, {s['machine'].split(',')[0]}.")
    text = replace_block(METHODS_DOC.read_text(), "methods", tables)
    return replace_block(text, "methods-recent", recent_methods_section(report))


TUNE_DOC = ROOT / "docs" / "tune.md"
TUNE_JSON = ROOT / "benchmarks" / "results" / "tune.json"
LABELLED_METHODS_SETTINGS = 6  # the methods benchmark's settings where the student has labels (10%, 100%)


def _ci(d: dict) -> str:
    return f"{100 * d['mean']:+.1f} ({100 * d['ci_low']:+.1f} to {100 * d['ci_high']:+.1f})"


def chosen_recipe(r: dict) -> str:
    """Each fold's chosen term, weight, temperature and learning rate, briefly."""
    parts = []
    for p in r["chosen"].values():
        short = {"weight": "w", "temperature": "T", "lr": "lr"}
        extra = "".join(f", {short[k]} {p[k]:.2g}" for k in short if k in p)
        parts.append(f"{p['term']}{extra}")
    return "; ".join(parts)


def tune_section(t: dict) -> str:
    """docs/tune.md's measured block, from tune.json: per setting, then the issue's goals, met or missed."""
    settings, s = t["settings"], t["stamp"]
    lines = ["| setting | chosen (on validation) | tuned vs reference (95% CI) | verdict (Holm) | vs the reference at "
             "the tuned lr | tuned vs KD defaults | best fixed method (on validation) | tuned vs it | trials | cost "
             "(trainings) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for key, r in settings.items():
        fixed = r.get("best_fixed")
        versus = f"{_ci(fixed['tuned_vs_best_fixed'])}, {fixed['tuned_vs_best_fixed']['verdict']}" if fixed else "-"
        same_lr = r["tuned_vs_reference_same_lr"]
        lines.append(f"| {key} | {chosen_recipe(r)} | {_ci(r['tuned_vs_reference'])} vs {r['reference']} | "
                     f"{r['tuned_vs_reference_holm']} | {_ci(same_lr)}, {same_lr['verdict']} | "
                     f"{_ci(r['tuned_vs_kd_default'])}, {r['tuned_vs_kd_default']['verdict']} | "
                     f"{fixed['method'] if fixed else '-'} | {versus} | {r['trials']} | {r['cost_trainings']:.1f} |")
    hurts = [k for k, r in settings.items() if r["tuned_vs_reference_holm"] == "hurts"]
    labelled = [k for k, r in settings.items() if "best_fixed" in r and r["reference"] == "student alone"]
    helps = [k for k in labelled if settings[k]["tuned_vs_reference_holm"] == "helps"]
    with_fixed = [r for r in settings.values() if "best_fixed" in r]
    tuned_gain = sum(r["tuned_vs_reference"]["mean"] for r in with_fixed) / len(with_fixed)
    fixed_gain = sum((r["best_fixed"]["gain_over_reference"] or {"mean": 0.0})["mean"] for r in with_fixed) / len(
        with_fixed)
    all_gain = sum(r["tuned_vs_reference"]["mean"] for r in settings.values()) / len(settings)
    pooled = t["tuned_vs_best_fixed_pooled"]
    trials = sum(r["trials"] for r in settings.values())
    trial_cost = sum(r["cost_trainings"] for r in settings.values()) / trials
    met = {True: "met", False: "missed"}
    same = [k for k, r in settings.items() if r["tuned_vs_reference_same_lr"]["verdict"] == "helps"]
    lines += ["", f"Each tuned recipe carries its own learning rate: against its reference trained at that same "
              f"rate (the term's own share of the gain), it helps in {len(same)} of {len(settings)} settings.",
              "", "Against the goals set for `tune`:",
              f"- never significantly below its reference: {met[not hurts]}"
              + (f" (below in {', '.join(hurts)})" if hurts else "") + ";",
              f"- significantly above the student alone in at least 4 of the {LABELLED_METHODS_SETTINGS} labelled "
              f"methods-benchmark settings: {met[len(helps) >= 4]} ({len(helps)} of {len(labelled)});",
              f"- mean gain over the reference higher than the best fixed method's (chosen on validation): over the "
              f"{len(with_fixed)} settings where the methods benchmark has that method, tuned {100 * tuned_gain:+.1f} "
              f"points vs fixed {100 * fixed_gain:+.1f} ({met[tuned_gain > fixed_gain]}); paired per seed, tuned minus "
              f"fixed {_ci(pooled)}, {pooled['verdict']}; over all {len(settings)} settings the tuned recipe gains "
              f"{100 * all_gain:+.1f} points on average;",
              moonshot_line(),
              f"- mean trial cost at most 0.7 student trainings with pruning: {met[trial_cost <= 0.7]} "
              f"({trial_cost:.2f}, {trials} trials).",
              "", f"{t['trials']} trials at most per setting; final runs over seeds 0-4 (the fixed method's over the "
              f"methods benchmark's seeds 0-2, paired on those). The run that wrote this file took "
              f"{t['wall_s'] / 60:.0f} min on {t['workers']} processes (a study that already holds its trials is "
              f"continued, not redone: every trial's seconds are in the cost column). Rendered from "
              f"`benchmarks/results/tune.json` (commit {(s['commit'] or '?')[:10]}, {s['date'][:10]})."]
    return "\n".join(lines)


def moonshot_line() -> str:
    """The moonshot goal, from tune_moonshot.json when it has run."""
    path = TUNE_JSON.with_name("tune_moonshot.json")
    if not path.is_file():
        return "- the moonshot (av-digits with every label, all six speakers): not run;"
    m = json.loads(path.read_text())
    met = m["tuned_vs_alone"]["verdict"] == "helps"
    return (f"- the moonshot, av-digits with every label over all {m['folds']} speakers: tuned vs the student alone "
            f"{_ci(m['tuned_vs_alone'])}, {m['tuned_vs_alone']['verdict']} ({'met' if met else 'missed'}); KD's "
            f"defaults vs alone {_ci(m['kd_default_vs_alone'])}, {m['kd_default_vs_alone']['verdict']} "
            f"({m['trials']} trials, {m['wall_s'] / 60:.0f} min; `tune_moonshot.json`);")


def rendered_tune_doc() -> str:
    return replace_block(TUNE_DOC.read_text(), "tune", tune_section(json.loads(TUNE_JSON.read_text())))


def _where(report: dict, method: str, verdict: str) -> list[tuple[str, float]]:
    """(setting, gain in points) of every setting where ``method``'s Holm-adjusted verdict is ``verdict``."""
    return [(key, 100 * b["methods"][method]["gain"]) for key, b in report["settings"].items()
            if b["methods"][method]["verdict"] == verdict]


def _listed(cases: list[tuple[str, float]]) -> str:
    return "; ".join(f"{key.replace(' labels', '')} ({gain:+.1f})" for key, gain in cases) or "none"


def recent_methods_section(report: dict) -> str:
    """docs/methods.md's paragraph on the methods added by a merge (mlld, mlld_samples, ofa, mst), every number
    from methods.json (the tables' verdicts: the paired rule, Holm-adjusted)."""
    settings = report["settings"]
    cost = {k: b["methods"]["mst"]["cost_ratio"] for k, b in settings.items()}
    audio = [c for k, c in cost.items() if "->audio" in k]
    image = [c for k, c in cost.items() if "->image" in k]
    from methods import chosen_method

    chosen = [(k, 100 * b["methods"]["mst"]["gain"]) for k, b in settings.items() if chosen_method(b) == "mst"]
    labelled_clear = [k for k, b in settings.items() if "@ 0%" not in k
                      and b["methods"]["mst"]["verdict"] in ("helps", "hurts")]
    unlabelled = [100 * b["methods"]["mst"]["gain"] for k, b in settings.items() if "@ 0%" in k]
    ofa_cost = [b["methods"]["ofa"]["cost_ratio"] for b in settings.values()]
    dist_full = [(k, 100 * b["methods"]["dist"]["gain"], b["methods"]["dist"]["cost_ratio"]) for k, b in
                 settings.items() if k in dict(chosen)]
    return "\n".join([
        f"  - *MLLD as the paper writes it* hurts in {len(_where(report, 'mlld', 'hurts'))} of {len(settings)} "
        "settings: its class-level term (class correlations summed over the batch, divided by K) grows as B²/K; at "
        "our batch of 128 with 10 classes it outweighs everything else and the student stays near chance. The paper "
        "trains at batch 64 with 100 classes, where that term is small. With `class_norm: samples` (the correlations "
        f"divided by B first) it helps in: {_listed(_where(report, 'mlld_samples', 'helps'))}; hurts in: "
        f"{_listed(_where(report, 'mlld_samples', 'hurts'))}; elsewhere no clear difference.",
        f"  - *OFA* helps in: {_listed(_where(report, 'ofa', 'helps'))}; hurts in: "
        f"{_listed(_where(report, 'ofa', 'hurts'))}; its branches cost {min(ofa_cost):.1f}-{max(ofa_cost):.1f}x the "
        "reference's training time.",
        f"  - *MST-Distill* is the method chosen on validation in: {_listed(chosen)} (test gains in points); it is "
        f"clearly different from the student alone in {len(labelled_clear)} of the labelled settings, and collapses "
        f"without labels ({max(unlabelled):+.0f} to {min(unlabelled):+.0f} points: its co-training is then mutual "
        "distillation of three models with no label to anchor them, the same failure as C2KD's). It is by far the "
        f"most expensive: {min(audio):.0f}-{max(audio):.0f}x the student-alone training on the audio students and "
        f"{min(image):.0f}-{max(image):.0f}x on the image student, whose co-trained teacher copy and auxiliary are "
        f"large next to it. That is its cost at the same student epochs as every other method ({report['epochs']}) "
        "with co-training and masking as long as the student's training, the authors' 1:1:1 proportion; at the "
        f"authors' own schedule (100 epochs per stage) every stage is {100 / report['epochs']:.1f}x longer, the "
        "same ratio to the student alone trained 100 epochs. Where it is chosen, DIST's gains are "
        + ", ".join(f"{g:+.1f} ({c:.1f}x the cost)" for _, g, c in dist_full) + "."])


def mst_cost_range(report: dict) -> str:
    costs = [b["methods"]["mst"]["cost_ratio"] for b in report["settings"].values()]
    return f"{min(costs):.0f}-{max(costs):.0f}x"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copy", type=Path, help="a finished demo run directory whose results.json to store")
    parser.add_argument("--full", action="store_true", help="(with --copy) it is the --full run")
    args = parser.parse_args()
    if args.copy:
        shutil.copy(args.copy / "results.json", FILES["full" if args.full else "quick"])
    README.write_text(rendered_readme())
    print(f"README.md rendered from {', '.join(str(p.name) for p in FILES.values() if p.is_file())}")
    PERFORMANCE_DOC.write_text(rendered_performance_doc())
    for doc, text in rendered_case_docs().items():
        doc.write_text(text)
    if "stamp" in json.loads(DIAGNOSE_JSON.read_text()):
        DIAGNOSE_DOC.write_text(rendered_diagnose_doc())
    if "stamp" in json.loads(METHODS_JSON.read_text()):  # (a methods run made under the one statistical rule)
        METHODS_DOC.write_text(rendered_methods_doc())
        print("docs/methods.md rendered from methods.json")
    if INT8_JSON.is_file():
        DEPLOY_DOC.write_text(rendered_deploy_doc())
        print("docs/deploy.md rendered from int8.json")
    if TUNE_JSON.is_file():
        TUNE_DOC.write_text(rendered_tune_doc())
        print("docs/tune.md rendered from tune.json")


if __name__ == "__main__":
    main()
