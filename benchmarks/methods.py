"""Every distillation method side by side, in the cross-modal settings, at the label budgets where it matters.

Settings (real data): av-digits image teacher -> audio student (test speaker lucas, fold 2); av-mnist
image+audio teacher -> audio student, and -> image student (fold 0; MNIST images keep 25% of their variance, the
audio is mixed with noise at 10 dB SNR). Student label budgets 0%, 10% and 100%; seeds 0, 1, 2; the same teacher,
student architecture, optimiser, epochs and batch size for every method; model selection on the validation
split only (its labels, or at 0% agreement with the teacher: no student-modality label is used anywhere).

Each method is one term added to the student's cross-entropy (L = CE + w * L_method). At 0% there is no CE;
methods that are not soft-label losses get Hinton KD beside them (else nothing trains the classifier), and the
reference row is KD alone. Weights and options are the papers' (as RepDistiller/mdistiller set them, whose loss
normalisations ours follow): at 1000, sp 3000, pkt 30000, rkd 1 (inside: 25 distance, 50 angle), crd 0.8,
fitnet 100 on the per-element MSE (here 200 / elements of the teacher map, as our hint loss sums), dkd with its
weight ramped in over the first 1/12 of training (20 of 240 epochs in the paper); 1 for the rest. Nothing is
tuned on these data.

Writes ``benchmarks/results/methods.json`` and ``benchmarks/results/methods.md``. Runs the (setting, budget)
jobs on ``--workers`` processes, one thread each. ``--quick``: one seed, 3 epochs, a few methods (a smoke run).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from crossdistill.atomic import write_text_atomic  # noqa: E402
from crossdistill.checkpoint import load_weights, save_weights  # noqa: E402
from crossdistill.config import Experiment  # noqa: E402
from crossdistill.data import open_dataset  # noqa: E402
from crossdistill.models import build_model  # noqa: E402
from crossdistill.pipeline import obtain_teacher, run  # noqa: E402
from crossdistill.plans import experiment_task  # noqa: E402
from crossdistill.rundir import stamp  # noqa: E402
from crossdistill.stats import holm, mean_of, paired_diff  # noqa: E402

RESULTS = Path(__file__).parent / "results"
BUDGETS = [0.0, 0.1, 1.0]
SEEDS = [0, 1, 2]
EPOCHS = 12
# methods that train the classifier from the teacher on their own (at 0% labels: no KD beside them)
SOFT_LABEL = {"kd", "dkd", "dist", "ls_kd", "mgkd", "mlld", "mlld_samples", "ofa", "mst"}
# Teachers a few times the student's size, as in C2KD's own setting (same backbone both sides), so the methods
# that run the teacher online (c2kd trains it) fit the time budget; no augmentation, so every frozen teacher is
# served from the cache.
IMAGE_CNN = {"name": "image_cnn", "channels": [16, 32, 64]}
SPEC_CNN = {"name": "spec_cnn", "channels": [8, 16, 32]}
SETTINGS = {
    "av-digits image->audio": {
        "data": {"dataset": "av-digits", "folds": [2]},
        "teacher": {"encoders": {"image": IMAGE_CNN}, "embed_dim": 128},
        "student": {"encoders": {"audio": {"name": "spec_cnn", "channels": [8, 16, 32]}}, "embed_dim": 32},
        "maps": ("feats.audio.stage1", "feats.image.stage1"),  # the image's stage 2 map is 1x1 (8x8 digits)
    },
    "av-mnist image+audio->audio": {
        "data": {"dataset": "av-mnist", "options": {"image_energy": 0.25, "snr_db": 10.0}, "folds": [0]},
        "teacher": {"encoders": {"image": IMAGE_CNN, "audio": SPEC_CNN}, "fusion": "gated", "embed_dim": 128},
        "student": {"encoders": {"audio": {"name": "spec_cnn", "channels": [8, 16, 32]}}, "embed_dim": 32},
        "maps": ("feats.audio.stage2", "feats.audio.stage2"),
    },
    "av-mnist image+audio->image": {
        "data": {"dataset": "av-mnist", "options": {"image_energy": 0.25, "snr_db": 10.0}, "folds": [0]},
        "teacher": {"encoders": {"image": IMAGE_CNN, "audio": SPEC_CNN}, "fusion": "gated", "embed_dim": 128},
        "student": {"encoders": {"image": {"name": "image_cnn", "channels": [8, 16, 32]}}, "embed_dim": 32},
        "maps": ("feats.image.stage2", "feats.image.stage2"),
    },
}
# Each method's term, options from its paper (or its authors' code) where they set one.
METHODS: dict[str, dict] = {
    "kd": {"loss": "kd", "kwargs": {"temperature": 4.0}},
    "dkd": {"loss": "dkd", "kwargs": {"alpha": 1.0, "beta": 8.0, "temperature": 4.0}, "warmup_epochs": EPOCHS / 12},
    "dist": {"loss": "dist"},
    "ls_kd": {"loss": "ls_kd"},
    "fitnet": {"loss": "fitnet"},
    "at": {"loss": "at"},
    "cosine": {"loss": "cosine"},
    "rkd": {"loss": "rkd"},
    "sp": {"loss": "sp"},
    "pkt": {"loss": "pkt"},
    "crd": {"loss": "crd", "kwargs": {"queue_size": 1024}},  # 1024 < the ~2000 training samples
    "infonce": {"loss": "infonce"},
    "c2kd": {"loss": "c2kd"},
    "mgkd": {"loss": "mgkd"},
    "mlld": {"loss": "mlld"},
    "mlld_samples": {"loss": "mlld", "kwargs": {"class_norm": "samples"}},  # class level per sample (docs/losses.md)
    "ofa": {"loss": "ofa"},  # reads: a branch on each stage map of the student (method_term)
    # the authors' stages are equally long (100 + 100 + 100 epochs): co-training and masking as long as the student's
    "mst": {"loss": "mst", "kwargs": {"cotrain_epochs": EPOCHS, "mask_epochs": EPOCHS}},
}
PAPER_WEIGHTS = {"at": 1000.0, "sp": 3000.0, "pkt": 30000.0, "rkd": 1.0, "crd": 0.8}
QUICK_METHODS = ["kd", "fitnet", "crd", "c2kd", "mgkd"]
ACCURACY = mean_of("correct")  # the headline statistic of classification's per-row test results


def method_term(method: str, setting: dict, weight: float, epochs: int = EPOCHS) -> dict:
    term = {**METHODS[method], "weight": weight}
    if method in ("fitnet", "at"):
        term |= {"reads": setting["maps"][0], "teacher_reads": setting["maps"][1]}
    if method == "ofa":  # as the paper: a branch from every stage of the student into the logit space
        (modality, encoder), = setting["student"]["encoders"].items()
        term |= {"reads": ["logits", *(f"feats.{modality}.stage{i}" for i in range(len(encoder["channels"])))]}
    if method == "mst":  # stages as long as the student's training (the authors' 1:1:1)
        term["kwargs"] = {"cotrain_epochs": epochs, "mask_epochs": epochs}
    return term


def base_experiment(name: str, setting: dict, epochs: int) -> dict:
    return {"name": name, "data": setting["data"], "teacher": {**setting["teacher"], "train": {"epochs": 15,
                                                                                            "patience": 6}},
            "student": setting["student"], "seeds": SEEDS,
            "train": {"epochs": epochs, "batch_size": 128, "lr": 0.004, "progress": False},
            "evaluate": {"latency_repeats": 3, "modality_ablation": False}}


def train_teacher(setting_name: str, out: Path, epochs: int) -> Path:
    """Phase 1: the setting's teacher, trained once on every training label; its weights for all jobs."""
    setting = SETTINGS[setting_name]
    exp = Experiment.model_validate(base_experiment("teacher", setting, epochs) | {"student_labels": 1.0})
    dataset = open_dataset(exp.data.dataset, None, exp.data.options, exp.data.seed, experiment_task(exp))
    fold = dataset.fold(exp.data.fold_ids[0])
    spec = json.dumps([setting["data"], setting["teacher"]], sort_keys=True).encode()
    path = out / "teachers" / f"{hashlib.sha256(spec).hexdigest()[:12]}.safetensors"  # shared by equal settings
    if not path.is_file():
        teacher = obtain_teacher(exp, "teacher", fold, out / "teachers" / path.stem)
        save_weights(teacher.state_dict(), path)
    return path


def paper_weights(setting_name: str, teacher_path: Path, methods: list[str]) -> dict[str, float]:
    """Each method's weight as its paper sets it; fitnet's 100 x per-element MSE rescaled to our summed hint loss
    (so it depends on the size of the teacher's map, read from one sample)."""
    setting = SETTINGS[setting_name]
    exp = Experiment.model_validate(base_experiment("w", setting, 1))
    dataset = open_dataset(exp.data.dataset, None, exp.data.options, exp.data.seed, experiment_task(exp))
    fold = dataset.fold(exp.data.fold_ids[0])
    teacher = build_model(exp.teacher, fold.info, role="teacher")
    load_weights(teacher, teacher_path)
    with torch.no_grad():
        elements = teacher.eval()(fold["train"].batch(torch.arange(1))).read(setting["maps"][1]).numel()
    return {m: 200.0 / elements if m == "fitnet" else PAPER_WEIGHTS.get(m, 1.0) for m in methods}


def job(setting_name: str, budget: float, teacher_path: str, weights: dict[str, float], methods: list[str],
        out: str, epochs: int, seeds: list[int]) -> dict:
    """Phase 2: one (setting, budget): the baseline and every method, through the normal pipeline."""
    torch.set_num_threads(1)
    setting = SETTINGS[setting_name]
    pct = round(budget * 100)
    no_labels = budget == 0
    kd = method_term("kd", setting, 1.0)
    variants = {}
    for method in methods:
        if method == "kd":
            continue  # the experiment's own "distilled" row
        term = method_term(method, setting, weights[method], epochs)
        with_labels = [{"loss": "ce"}, term]
        variants[method] = {"terms": with_labels if not no_labels else [term] if method in SOFT_LABEL else [kd, term]}
    exp = Experiment.model_validate(base_experiment(f"{slug(setting_name)}-{pct}", setting, epochs) | {
        "teacher": {**setting["teacher"], "checkpoint": teacher_path},
        "student_labels": budget, "seeds": seeds,
        "distill": {"terms": [kd] if no_labels else [{"loss": "ce"}, kd], "cache": True},
        "train": {"epochs": epochs, "batch_size": 128, "lr": 0.004, "progress": False,
                  "select_on": "teacher" if no_labels else "labels"},
        "variants": variants})
    tic = time.perf_counter()
    run_dir = run(exp, Path(out))
    results = json.loads((run_dir / "results.json").read_text())
    rows, test_rows = {}, {}
    fold = exp.data.fold_ids[0]
    for name, model in results["models"].items():
        if model["role"] != "student":
            continue
        folders = [run_dir / "models" / name / f"fold{fold}-seed{seed}" for seed in seeds]
        epoch_s = [json.loads(line)["seconds"] for f in folders for line in (f / "metrics.jsonl").read_text()
                   .splitlines()]
        fits = [json.loads((f / "fit.json").read_text()) for f in folders]
        method = {"baseline": "alone", "distilled": "kd"}.get(name, name)
        test_rows[method] = {(fold, seed): dict(np.load(f / "test_rows.npz")) for seed, f in zip(seeds, folders,
                                                                                                 strict=True)}
        # cost: every second this method's student runs took (epochs, and any preparation such as mgkd's mimic)
        rows[method] = {"accuracy": model["metrics"]["accuracy"]["per_seed"], "epoch_s": statistics.mean(epoch_s),
                        "val_score": [f["best_score"] for f in fits],
                        "train_s": sum(epoch_s) + sum(f.get("prepare_s", 0.0) for f in fits)}
    reference = "kd" if budget == 0 else "alone"
    for method, row in rows.items():  # the one statistical rule (docs/statistics.md), paired per seed
        if method != reference:
            row["paired_diff"] = paired_diff(test_rows[method], test_rows[reference], ACCURACY, seed=0).model_dump()
    teacher_acc = results["models"]["teacher"]["metrics"]["accuracy"]["mean"]
    return {"setting": setting_name, "budget": budget, "teacher_accuracy": teacher_acc, "rows": rows,
            "wall_s": time.perf_counter() - tic}


def slug(name: str) -> str:
    return name.replace(" ", "_").replace("->", "-to-").replace("+", "")


def summarise(jobs: list[dict]) -> dict:
    """Per (setting, budget): every method's accuracy over seeds, its gain over the reference row and its epoch
    time relative to the reference's."""
    table = {}
    for result in sorted(jobs, key=lambda j: (list(SETTINGS).index(j["setting"]), j["budget"])):
        rows = result["rows"]
        reference = "kd" if result["budget"] == 0 else "alone"
        ref_mean = statistics.mean(rows[reference]["accuracy"])
        entries = {}
        for method, row in rows.items():
            acc = row["accuracy"]
            entries[method] = {"mean": statistics.mean(acc), "std": statistics.stdev(acc) if len(acc) > 1 else 0.0,
                               "per_seed": acc, "gain": statistics.mean(acc) - ref_mean,
                               "val_mean": statistics.mean(row["val_score"]),
                               "epoch_time_ratio": row["epoch_s"] / rows[reference]["epoch_s"],
                               "cost_ratio": row["train_s"] / rows[reference]["train_s"],
                               **({"paired_diff": row["paired_diff"]} if "paired_diff" in row else {})}
        key = f"{result['setting']} @ {round(result['budget'] * 100)}% labels"
        table[key] = {"reference": reference, "teacher_accuracy": result["teacher_accuracy"], "methods": entries,
                      "wall_s": result["wall_s"]}
    return table


def adjust(report: dict) -> None:
    """Each comparison's verdict under the one statistical rule, with Holm's adjustment over every comparison of
    the benchmark (docs/statistics.md): "helps"/"hurts" only when its 95% interval excludes 0 and Holm rejects."""
    compared = [(block, method) for block in report["settings"].values() for method in block["methods"]
                if "paired_diff" in block["methods"][method]]
    rejected = holm([block["methods"][m]["paired_diff"]["p_value"] for block, m in compared])
    for (block, method), reject in zip(compared, rejected, strict=True):
        d = block["methods"][method]["paired_diff"]
        block["methods"][method]["verdict"] = d["verdict"] if (reject or d["verdict"] == "no verdict") else (
            "no clear difference")
    for block in report["settings"].values():
        block["methods"][block["reference"]]["verdict"] = "reference"


def render(report: dict) -> str:
    """The Markdown of ``methods.json``: the method chosen on validation per setting, then one table each."""
    adjust(report)
    comparisons = sum("paired_diff" in e for b in report["settings"].values() for e in b["methods"].values())
    head = [f"# Methods benchmark: {report['epochs']} epochs, seeds {report['seeds']}, wall "
            f"{report['wall_s'] / 60:.1f} min on {report['workers']} processes x 1 thread\n",
            "Gain: points of test accuracy over the reference row (the student alone; KD alone at 0% labels), "
            "with the 95% interval of the paired difference over the seeds and the test rows (hierarchical "
            "bootstrap, docs/statistics.md). Verdict: helps / hurts only when that interval excludes 0 and Holm's "
            f"adjustment over all {comparisons} comparisons of the benchmark agrees. The chosen method is the one "
            "with the best mean *validation* score (never test). Cost: all training seconds of the method's student "
            "runs (preparation such as mgkd's mimic included; c2kd's teacher fine-tuning is inside its epochs) "
            "over the reference's.\n",
            *[f"Rows of {', '.join(m['methods'])} were added by a later `--merge` run (commit {m['commit'][:10]}, "
              f"{m['wall_s'] / 60:.1f} min), whose re-trained reference rows equal the published ones seed by "
              "seed.\n" for m in report.get("merges", [])],
            "| setting | teacher % | reference % | chosen on validation | its gain (95% CI) | verdict | cost |",
            "|---|---|---|---|---|---|---|"]
    body: list[str] = []
    for key, block in report["settings"].items():
        entries, ref = block["methods"], block["methods"][block["reference"]]
        chosen = chosen_method(block)
        head.append(f"| {key} | {100 * block['teacher_accuracy']:.1f} | {100 * ref['mean']:.1f} ± "
                    f"{100 * ref['std']:.1f} | {chosen} | {interval(entries[chosen])} | {entries[chosen]['verdict']}"
                    f" | {entries[chosen]['cost_ratio']:.2f}x |")
        body += [f"\n### {key}\n", "| method | validation % | test accuracy % | gain (95% CI) | verdict | "
                 "epoch time | cost |", "|---|---|---|---|---|---|---|"]
        for method, e in sorted(entries.items(), key=lambda kv: -kv[1]["val_mean"]):
            body.append(f"| {method} | {100 * e['val_mean']:.1f} | {100 * e['mean']:.1f} ± {100 * e['std']:.1f} | "
                        f"{interval(e)} | {e['verdict']} | {e['epoch_time_ratio']:.2f}x | {e['cost_ratio']:.2f}x |")
    return "\n".join(head + gain_matrix(report) + body) + "\n"


def chosen_method(block: dict) -> str:
    """The method a user would pick in one setting: the best mean validation score (never test)."""
    entries = block["methods"]
    return max((m for m in entries if m != block["reference"]), key=lambda m: entries[m]["val_mean"])


def interval(entry: dict) -> str:
    d = entry.get("paired_diff")
    if d is None:
        return "-"
    return f"{100 * d['mean']:+.1f} ({100 * d['ci_low']:+.1f} to {100 * d['ci_high']:+.1f})"


def gain_matrix(report: dict) -> list[str]:
    """Methods x settings: gain in points over each setting's reference, with + (helps) / - (hurts)."""
    keys = list(report["settings"])
    methods = sorted({m for block in report["settings"].values() for m in block["methods"]} - {"alone"})
    short = [k.replace(" labels", "").replace("image+audio", "i+a").replace("image", "img") for k in keys]
    lines = ["\nGain over the reference (points); + helps, - hurts (the rule above, Holm-adjusted), blank: no clear "
             "difference:\n",
             "| method | " + " | ".join(short) + " |", "|---|" + "---|" * len(keys)]
    mark = {"helps": " +", "hurts": " -"}
    for method in methods:
        cells = []
        for key in keys:
            entry = report["settings"][key]["methods"].get(method)
            cells.append("ref" if entry and entry["verdict"] == "reference" else
                         f"{100 * entry['gain']:+.1f}{mark.get(entry['verdict'], '')}" if entry else "")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def merge(stored: dict, new: dict, added: list[str]) -> dict:
    """``stored`` (a full run) with the ``added`` methods of ``new`` (a run of only those, same settings, epochs and
    seeds). The reference rows every job re-trains (alone, kd) must equal the stored ones seed by seed: the same
    teachers, data, seeds and code give the same students, so the new rows are compared with the very runs
    already published; any difference refuses the merge (run the whole benchmark)."""
    if (new["epochs"], new["seeds"]) != (stored["epochs"], stored["seeds"]):
        raise SystemExit(f"merge: epochs/seeds {new['epochs']}/{new['seeds']} differ from the stored "
                         f"{stored['epochs']}/{stored['seeds']}")
    for key, block in new["settings"].items():
        kept = stored["settings"][key]["methods"]
        for reference in ("alone", "kd"):
            if reference in block["methods"] and block["methods"][reference]["per_seed"] != kept[reference]["per_seed"]:
                raise SystemExit(f"merge refused: {key}: re-run {reference} {block['methods'][reference]['per_seed']} "
                                 f"differs from the stored {kept[reference]['per_seed']}; run the whole benchmark")
        kept.update({m: block["methods"][m] for m in added if m not in ("alone", "kd")})
    all_methods = list(dict.fromkeys([*(m for b in stored["settings"].values() for m in b["methods"]), *added]))
    config = json.dumps([[m for m in all_methods if m in METHODS], stored["epochs"], stored["seeds"],
                         list(stored["settings"])])
    merged = {**stored, "stamp": stamp(config).model_dump(), "wall_s": stored["wall_s"] + new["wall_s"],
              "weights": {k: {**stored["weights"][k], **v} for k, v in new["weights"].items()}}
    merged["merges"] = [*stored.get("merges", []), {"methods": added, "wall_s": new["wall_s"],
                                                     "commit": new["stamp"]["commit"]}]
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/methods-benchmark"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--settings", nargs="*", default=list(SETTINGS))
    parser.add_argument("--render", type=Path, help="only rewrite the Markdown of an existing methods JSON")
    parser.add_argument("--methods", nargs="*", choices=list(METHODS), help="run only these (default: all)")
    parser.add_argument("--merge", action="store_true", help="add --methods to the committed methods.json: refused "
                        "unless the re-run reference rows (alone, kd) match its per-seed accuracies exactly")
    args = parser.parse_args()
    if args.render:
        report = json.loads(args.render.read_text())
        write_text_atomic(args.render.with_suffix(".md"), render(report))
        write_text_atomic(args.render, json.dumps(report, indent=1))  # now with the verdicts
        return
    methods = args.methods or (QUICK_METHODS if args.quick else list(METHODS))
    if args.merge and (args.quick or not args.methods or args.settings != list(SETTINGS)):
        parser.error("--merge adds --methods, over every setting, to the full benchmark's results")
    epochs, seeds = (3, [0]) if args.quick else (EPOCHS, SEEDS)
    tic = time.perf_counter()
    torch.set_num_threads(max(1, args.workers))
    teachers = {name: train_teacher(name, args.out, epochs) for name in args.settings}
    weights = {name: paper_weights(name, teachers[name], methods) for name in args.settings}
    print("term weights (the papers'):", json.dumps(weights, indent=1), file=sys.stderr)
    jobs = [(name, budget) for name in args.settings for budget in BUDGETS]
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        futures = [pool.submit(job, name, budget, str(teachers[name]), weights[name], methods, str(args.out),
                               epochs, seeds) for name, budget in jobs]
        done = [f.result() for f in futures]
    report = {"stamp": stamp(json.dumps([methods, epochs, seeds, args.settings])).model_dump(),
              "epochs": epochs, "seeds": seeds, "batch_size": 128, "workers": args.workers, "threads_per_worker": 1,
              "weights": weights, "wall_s": time.perf_counter() - tic, "settings": summarise(done)}
    if args.merge:
        report = merge(json.loads((RESULTS / "methods.json").read_text()), report, methods)
    markdown = render(report)
    RESULTS.mkdir(exist_ok=True)
    stem = "methods-quick" if args.quick else "methods"
    write_text_atomic(RESULTS / f"{stem}.json", json.dumps(report, indent=1))
    write_text_atomic(RESULTS / f"{stem}.md", markdown)
    print(markdown)
    print(f"wall {report['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
