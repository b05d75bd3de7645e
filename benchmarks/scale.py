"""Data larger than memory: the decoded store against rows held in memory, side by side in one run.

Rows made by the benchmark itself (a 64x64 PNG, a 1 s 16 kHz wav and a short text per row, 10 classes; the image
and the text carry the class, the audio a noisy tone of it), then for each N: the store's build time with 1 and 2
decoding workers, two ways: the store's own time as its log gives it (starting the workers, decoding, writing,
syncing, finishing), and around opening the data set in a process that has imported the package (fingerprinting
every file and reading the table as well). 1- and 2-worker builds alternate over ``--build-rounds`` rounds, and
each ratio is the median of the rounds' ratios, since two builds of the same code differ by up to a third on this
machine; a build's memory is sampled once a second (a sample's CPU would otherwise slow the 2-worker build, whose
workers keep both cores busy, and not the 1-worker one). And a whole ``crossdistill run``
(image+text teacher, audio student, one epoch each, one seed) with the decoded rows held in memory and read from
the store, each in a child process whose peak anonymous memory (Pss_Anon of every process of the run, summed:
forked workers' shared pages counted once) is sampled. With ``--cgroup-mb`` the store run is also made inside a
memory cgroup of that size (cgroup v1, root), smaller than the decoded data: does it finish?

Writes ``benchmarks/results/scale.json`` and ``scale.png`` (cost against N, log axes); prints the ratios;
``--render`` prints the docs' table from the results file (and redraws the plot).
    python benchmarks/scale.py [--rows 2000 8000] [--cgroup-mb 1500]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.io import wavfile

ROOT = Path(__file__).resolve().parents[1]
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
CONFIG = """
data:
  dataset: manifest
  workers: {workers}
  in_memory: {in_memory}
  options:
    path: {path}
    label: label
    ratios: [0.8, 0.1, 0.1]
    modalities:
      image: {{kind: image, column: image, size: 64}}
      audio: {{kind: audio, column: audio, sample_rate: 16000, seconds: 1.0}}
      text: {{kind: text, column: text, max_length: 8}}
student_labels: 0.1
seeds: [0]
teacher:
  encoders:
    image: {{name: image_cnn, channels: [8, 16]}}
    text: {{name: text_bag, dim: 16}}
  embed_dim: 16
  train: {{epochs: 1}}
student:
  encoders:
    audio: {{name: spec_cnn, channels: [4, 8]}}
  embed_dim: 8
distill:
  terms: [{{loss: ce}}, {{loss: kd}}]
train: {{epochs: 1, batch_size: 128, progress: false}}
evaluate: {{latency_repeats: 1, modality_ablation: false}}
"""


# The store's build, timed inside a process that has imported the package (the import is no part of a build):
# opening the data set as a run does (fingerprint of every file, reading the table, decoding, writing, checks).
BUILD = """
import json, logging, sys, time
logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)  # (the store's "built in" line)
from crossdistill import config
from crossdistill.data import open_dataset
from crossdistill.plans import experiment_task
exp = config.load(sys.argv[1])
start = time.perf_counter()
open_dataset(exp.data.dataset, exp.data.root, exp.data.options, exp.data.seed, experiment_task(exp),
             **exp.data.reading())
print("BUILD_SECONDS", time.perf_counter() - start)
"""


def make_rows(folder: Path, count: int, seed: int = 0) -> Path:
    """``count`` rows of files under ``folder``; returns the manifest's path."""
    rng = np.random.default_rng(seed)
    (folder / "png").mkdir(parents=True, exist_ok=True)
    (folder / "wav").mkdir(exist_ok=True)
    lines = ["image,audio,text,label"]
    t = np.arange(16000) / 16000
    for i in range(count):
        label = int(rng.integers(10))
        pixels = rng.integers(0, 60, size=(64, 64, 3), dtype=np.uint8)
        pixels[label * 6 : label * 6 + 6] += 150  # a bright band where the class says
        Image.fromarray(pixels).save(folder / "png" / f"{i}.png")
        tone = np.sin(2 * np.pi * (300 + 80 * label) * t) + rng.normal(0, 1.0, t.size)
        wavfile.write(folder / "wav" / f"{i}.wav", 16000, (tone * 8000).astype(np.int16))
        lines.append(f"png/{i}.png,wav/{i}.wav,a picture of {WORDS[label]} things,{label}")
    (folder / "rows.csv").write_text("\n".join(lines) + "\n")
    return folder / "rows.csv"


def _tree(pid: int) -> list[int]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return [pid]
    return [pid] + [p for c in children for p in _tree(int(c))]


def _pss_anon(pid: int) -> int:
    total = 0
    for member in _tree(pid):
        try:
            for line in Path(f"/proc/{member}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss_Anon:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def measured(command: list[str], env: dict[str, str], cgroup: Path | None = None, every: float = 0.1) -> dict:
    """Wall time, exit status and peak summed Pss_Anon of ``command`` and its children, sampled every ``every`` s
    (a sample costs ~3 ms of CPU a process: the builds, which keep both cores busy, are sampled every second)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if cgroup is not None:
        (cgroup / "cgroup.procs").write_text(str(process.pid))
    peak = [0]

    def sample() -> None:
        while process.poll() is None:
            peak[0] = max(peak[0], _pss_anon(process.pid))
            time.sleep(every)

    sampler = threading.Thread(target=sample)
    sampler.start()
    output = process.communicate()[0].decode(errors="replace")
    sampler.join()
    result = {"seconds": round(time.perf_counter() - start, 2), "returncode": process.returncode,
              "peak_pss_anon_mb": round(peak[0] / 2**20, 1)}
    timed = [line.split()[1] for line in output.splitlines() if line.startswith("BUILD_SECONDS ")]
    if timed:
        result["build_seconds"] = round(float(timed[0]), 2)
    built = re.search(r"decoded store of \d+ rows built in ([0-9.]+) s", output)
    if built:  # (the store's own time, as its log says: no fingerprint, no table read)
        result["store_seconds"] = float(built.group(1))
    if process.returncode:
        result["output_tail"] = output[-1500:]
    return result


def memory_cgroup(megabytes: int) -> Path | None:
    group = Path("/sys/fs/cgroup/memory/crossdistill-scale")
    try:
        group.mkdir(exist_ok=True)
        (group / "memory.limit_in_bytes").write_text(str(megabytes * 2**20))
    except OSError as error:
        print(f"no memory cgroup ({error}): the capped run is skipped")
        return None
    return group


def memory_gb() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


def one_size(count: int, work: Path, cgroup_mb: int | None, build_only: bool = False, store_only: bool = False,
             build_rounds: int = 3) -> dict:
    path = make_rows(work / f"rows-{count}", count)
    decoded_mb = count * (3 * 64 * 64 + 16000) * 4 / 2**20
    result: dict = {"rows": count, "decoded_mb": round(decoded_mb, 1)}

    def env_for(cache: str) -> dict[str, str]:
        return {**os.environ, "OMP_NUM_THREADS": "2", "CROSSDISTILL_CACHE": str(work / cache)}

    def config(workers: int, in_memory: str) -> Path:
        file = work / f"run-{count}-{workers}-{in_memory}.yaml"
        file.write_text(CONFIG.format(workers=workers, in_memory=in_memory, path=path))
        return file

    cli = [sys.executable, "-m", "crossdistill"]
    builds: dict[int, list[dict]] = {1: [], 2: []}
    for _ in range(build_rounds):  # (alternating: a drift of this machine's speed falls on both alike)
        for workers in (1, 2):
            cache = f"cache-{count}-w{workers}"
            shutil.rmtree(work / cache, ignore_errors=True)  # (a cold cache: every build decodes every row)
            os.sync()  # (no build pays for the write-back of the one before it)
            builds[workers].append(measured([sys.executable, "-c", BUILD, str(config(workers, "false"))],
                                            env_for(cache), every=1.0))
    shutil.rmtree(work / f"cache-{count}-w1", ignore_errors=True)  # (only the other store is read below)
    result["store_mb"] = round(sum(f.stat().st_size for f in (work / f"cache-{count}-w2").rglob("*.npy")) / 2**20, 1)
    result["ratios"] = {}
    for timed, name in (("build_seconds", "build"), ("store_seconds", "store_build")):
        paired = [one[timed] / two[timed] for one, two in zip(builds[1], builds[2], strict=True)]
        result["ratios"][f"{name}_1_over_2_workers"] = round(float(np.median(paired)), 2)
        result["ratios"][f"{name}_1_over_2_workers_by_round"] = [round(r, 2) for r in paired]
    for workers, runs in builds.items():  # (the median build, with every round's times)
        median_run = sorted(runs, key=lambda run: run["build_seconds"])[len(runs) // 2]
        result[f"build_{workers}_workers"] = {**median_run, "rounds": [run["build_seconds"] for run in runs],
                                              "store_rounds": [run["store_seconds"] for run in runs],
                                              "store_seconds": float(np.median([r["store_seconds"] for r in runs]))}
    if build_only:
        shutil.rmtree(path.parent)
        return result
    shared = f"cache-{count}-w2"  # the store built above: the runs below decode nothing
    # --store-only: no run holding the rows in memory (one that cannot fit this machine), and with a cgroup only
    # the capped run from the store (its time and memory are the store run's)
    held_gb = decoded_mb * 4.2 / 1024  # (resident memory held per decoded MB at 8k and 32k: 4.2x and 4.0x)
    modes = ("false",) if store_only else ("true", "false")
    if store_only and cgroup_mb:
        modes = ()
    for in_memory in modes:
        result[f"run_in_memory_{in_memory}"] = measured(
            [*cli, "run", str(config(2, in_memory)), "--out", str(work / f"out-{count}-{in_memory}")],
            env_for(shared))
    if store_only:
        result["run_in_memory_true"] = {"not_run": f"held in memory it needs about {held_gb:.0f} GB; this machine "
                                                   f"has {memory_gb():.0f} GB"}
    if cgroup_mb:
        group = memory_cgroup(cgroup_mb)
        if group is not None:
            result["run_store_in_cgroup"] = {"cgroup_mb": cgroup_mb, **measured(
                [*cli, "run", str(config(2, "false")), "--out", str(work / f"out-{count}-capped")],
                env_for(shared), group)}
    if "seconds" in result["run_in_memory_true"]:
        run = result["run_in_memory_false"]["seconds"] / max(result["run_in_memory_true"]["seconds"], 1e-9)
        result["ratios"]["run_store_over_memory"] = round(run, 2)
    shutil.rmtree(path.parent)
    return result


def render_table(results: dict) -> str:
    """The markdown table docs/performance.md shows (checked against the results file by a test)."""
    lines = ["| rows | decoded (the store on disk) | store build, 1 → 2 workers (each round's ratio) | the same with "
             "the fingerprint and table read | run, held in memory | run, from the store | run from the store in a "
             "memory cgroup |", "|---|---|---|---|---|---|---|"]
    for size in results["sizes"]:
        held, capped = size["run_in_memory_true"], size.get("run_store_in_cgroup", {})
        stored = size.get("run_in_memory_false", capped)  # (--store-only with a cgroup: the capped run is it)
        cap = f"{capped.get('cgroup_mb', 0):,} MB"
        verdict = ("not run" if not capped else f"{cap}: finished, {capped['seconds']:.0f} s"
                   if capped["returncode"] == 0 else f"{cap}: killed (exit {capped['returncode']})")
        ratio = size["ratios"].get("run_store_over_memory")
        builds = [_builds(size, timed, name) for timed, name in (("store_seconds", "store_build"),
                                                                 ("build_seconds", "build"))]
        lines.append(f"| {size['rows']:,} | {size['decoded_mb'] / 1024:.2f} GB ({size['store_mb'] / 1024:.2f} GB) "
                     f"| {builds[0]} | {builds[1]}"
                     + (f" | {held['seconds']:.0f} s, {held['peak_pss_anon_mb']:,.0f} MB" if "seconds" in held
                        else f" | not run: {held['not_run']}")
                     + f" | {stored['seconds']:.0f} s, {stored['peak_pss_anon_mb']:,.0f} MB"
                     + (f" ({ratio:.2f}x the time)" if ratio is not None else "") + f" | {verdict} |")
    return "\n".join(lines)


def _builds(size: dict, timed: str, name: str) -> str:
    """'1-worker s → 2-worker s: **median ratio** (each round's)' (medians over the rounds)."""
    one, two = size["build_1_workers"][timed], size["build_2_workers"][timed]
    rounds = ", ".join(f"{r:.2f}" for r in size["ratios"][f"{name}_1_over_2_workers_by_round"])
    return f"{one:.1f} s → {two:.1f} s: **{size['ratios'][f'{name}_1_over_2_workers']:.2f}x** ({rounds})"


def plot(results: dict, path: Path) -> None:
    """Cost against N on log axes: peak memory and run time, held in memory vs from the store."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [size["rows"] for size in results["sizes"]]
    figure, (memory, seconds) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("run_in_memory_true", "held in memory"), ("run_in_memory_false", "from the store")):
        runs = [(size["rows"], size.get(key, size.get("run_store_in_cgroup", {}))) for size in results["sizes"]]
        runs = [(n, run) for n, run in runs if "seconds" in run]  # (a run this machine could not hold: absent)
        memory.plot([n for n, _ in runs], [run["peak_pss_anon_mb"] for _, run in runs], "o-", label=label)
        seconds.plot([n for n, _ in runs], [run["seconds"] for _, run in runs], "o-", label=label)
    memory.plot(rows, [size["decoded_mb"] for size in results["sizes"]], "k:", label="decoded data")
    for axis, title in ((memory, "peak anonymous memory (MB)"), (seconds, "whole run (s)")):
        axis.set(xscale="log", yscale="log", xlabel="rows", title=title)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[2000, 8000])
    parser.add_argument("--cgroup-mb", type=int, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "scale.json")
    parser.add_argument("--render", action="store_true", help="print the docs' table from the results file")
    parser.add_argument("--build-only", action="store_true", help="only the store builds (1 and 2 workers)")
    parser.add_argument("--store-only", action="store_true", help="no run holding the rows in memory (sizes this "
                        "machine cannot hold); with --cgroup-mb, only the capped run from the store")
    parser.add_argument("--build-rounds", type=int, default=3, help="alternating 1- and 2-worker builds per size "
                        "(the ratio reported: the median of the rounds' ratios)")
    parser.add_argument("--merge", action="store_true", help="add these sizes to the results file (each size "
                        "stamped), replacing any of the same N")
    args = parser.parse_args()
    if args.render:
        print(render_table(json.loads(args.out.read_text())))
        plot(json.loads(args.out.read_text()), args.out.with_suffix(".png"))
        return
    with tempfile.TemporaryDirectory() as tmp:
        sizes = [one_size(count, Path(tmp), args.cgroup_mb, args.build_only, args.store_only, args.build_rounds)
                 for count in args.rows]
    if args.build_only:
        print(json.dumps([{"rows": s["rows"], **s["ratios"], "seconds": [s[f"build_{w}_workers"]["rounds"]
                                                                          for w in (1, 2)]} for s in sizes]))
        return
    for size in sizes:
        print(f"N={size['rows']}: decoded {size['decoded_mb']} MB; " + json.dumps({k: v for k, v in size.items()
                                                                                   if k.startswith(("run", "ratios"))}))
    from crossdistill.rundir import stamp

    now = stamp(CONFIG).model_dump()
    if args.merge and args.out.is_file():  # the new sizes carry their own stamp; the others keep the file's
        payload = json.loads(args.out.read_text())
        new = {s["rows"] for s in sizes}
        payload["sizes"] = sorted([s for s in payload["sizes"] if s["rows"] not in new]
                                  + [{**s, "stamp": now} for s in sizes], key=lambda s: s["rows"])
    else:
        payload = {"stamp": now, "cpus": os.cpu_count(), "cgroup_mb": args.cgroup_mb, "sizes": sizes}
    args.out.write_text(json.dumps(payload, indent=1) + "\n")
    plot(payload, args.out.with_suffix(".png"))


if __name__ == "__main__":
    main()
