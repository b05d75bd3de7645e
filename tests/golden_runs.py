"""Golden runs: a few short configs (classification, regression, retrieval, several teachers) whose test metrics
and trained-weight digests were recorded right after the pooling fix, so that a refactor can prove it changes
nothing. ``python tests/golden_runs.py --record`` rewrites ``tests/golden/golden_runs.json``;
``tests/test_golden_runs.py`` re-runs them and compares.

Digests are only comparable on the same software and processor (float arithmetic differs across kernels: two
"AMD EPYC" machines, one with AVX-512 and one without, give the same metrics from different weight bits), so the
file records where it was made, the vector instructions included; elsewhere the test compares the metrics to a
tolerance instead.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent / "golden" / "golden_runs.json"

_COMMON = """
seeds: [0]
train: {epochs: 2, batch_size: 128, progress: false}
evaluate: {latency_repeats: 1, modality_ablation: false}
"""
CONFIGS = {
    "classification": """
data: {dataset: av-digits, augment: {audio: {time_shift: 4, freq_masks: 1, freq_width: 3}}}
student_labels: 0.1
teacher: {encoders: {image: {name: image_cnn, channels: [16, 32]}}, embed_dim: 32, train: {epochs: 2}}
student: {encoders: {audio: {name: spec_cnn, channels: [4, 8]}}, embed_dim: 16}
distill: {terms: [{loss: ce}, {loss: kd, kwargs: {temperature: 4.0}}, {loss: fitnet, reads: embed}]}
""",
    "regression": """
task: regression
data:
  dataset: manifest
  options:
    path: vader_sentiment_groundtruth/tweets_GroundTruth.txt
    format: tsv
    column_names: [id, mean, text]
    label: mean
    modalities: {text: {kind: text, column: text, max_length: 24, min_count: 2}}
student_labels: 0.1
teacher: {encoders: {text: {name: text_bag, dim: 32}}, embed_dim: 32}
student: {encoders: {text: {name: text_bag, dim: 8}}, embed_dim: 8}
distill: {terms: [{loss: mse}, {loss: pred_mse}]}
""",
    "retrieval": """
data: {dataset: av-digits}
task: {name: retrieval, positives: class}
teacher:
  encoders: {audio: {name: spec_cnn, channels: [8, 16]}, image: {name: image_cnn, channels: [16, 32]}}
  embed_dim: 32
student:
  encoders: {audio: {name: spec_cnn, channels: [4, 8]}, image: {name: image_cnn, channels: [4, 8]}}
  embed_dim: 16
distill: {terms: [{loss: clip, kwargs: {positives: class}}, {loss: clip_crd}, {loss: clip_fd}]}
""",
    "multi_teacher": """
data: {dataset: av-mnist, options: {image_energy: 0.25, snr_db: 10.0}}
student_labels: 0.1
teacher: {encoders: {image: {name: image_cnn, channels: [8, 16]}}, embed_dim: 16}
extra_teachers:
  audio_teacher: {encoders: {audio: {name: spec_cnn, channels: [8, 16]}}, embed_dim: 16}
student: {encoders: {audio: {name: spec_cnn, channels: [4, 8]}}, embed_dim: 8}
distill:
  terms:
    - {loss: ce}
    - {loss: kd, weight: 0.5, teacher: teacher}
    - {loss: kd, teacher: {teacher: 0.5, audio_teacher: 0.5}}
""",
}


def environment() -> dict:
    """What bitwise equality of trained weights depends on."""
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").is_file() else ""
    return {"torch": torch.__version__, "python": platform.python_version(), "cpu": cpu,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),  # (the kernels torch picks: AVX2, AVX512)
            "threads": torch.get_num_threads()}


def run_golden(name: str, out: Path) -> dict[str, dict]:
    """Run one golden config; returns {"<model>/<fold-seed dir>": {"digest": ..., "metrics": {...}}}."""
    from safetensors.torch import load_file

    from crossdistill import config, pipeline
    from crossdistill.checkpoint import tensors_digest

    path = out / f"{name}.yaml"
    path.write_text(CONFIGS[name] + _COMMON)
    run_dir = pipeline.run(config.load(path), out)
    found = {}
    for weights in sorted((run_dir / "models").glob("*/*/checkpoints/best.safetensors")):
        model_dir = weights.parent.parent
        metrics = json.loads((model_dir / "eval.json").read_text())["metrics"]
        found[f"{model_dir.parent.name}/{model_dir.name}"] = {"digest": tensors_digest(load_file(weights)),
                                                              "metrics": metrics}
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--record", action="store_true", help="rewrite the golden file")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("CROSSDISTILL_CACHE", str(Path(tmp) / "cache"))
        runs = {name: run_golden(name, Path(tmp)) for name in CONFIGS}
    payload = {"environment": environment(), "runs": runs}
    if args.record:
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    print(json.dumps(payload, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
