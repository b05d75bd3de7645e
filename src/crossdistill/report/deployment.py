"""The report's deployment section: what ``crossdistill export`` measured for each exported model (the numpy
serving path against training's tensors on golden rows; int8 against float32: size, CPU latency, test metric)."""

from __future__ import annotations

import json
from pathlib import Path


def on_disk(ratio: float) -> str:
    return f"{ratio:.1f}x smaller on disk" if ratio >= 1 else f"{1 / ratio:.1f}x larger on disk"


def deployment_section(run_dir: Path) -> list[str]:
    """Markdown lines, empty when nothing was exported with those measurements."""
    lines = []
    for path in sorted((run_dir / "export").glob("*.json")):
        written = json.loads(path.read_text())
        if "golden" not in written and "int8" not in written:
            continue
        lines += [f"### Exported {written['model']} ({written['trained']})", ""]
        if "skipped" in written.get("golden", {}):
            lines += [f"- No serving without PyTorch: {written['golden']['skipped']}.", ""]
        elif "golden" in written:
            shown = ", ".join(f"{m} {d:.1e}" for m, d in written["golden"]["max_input_difference"].items())
            lines += [f"- Serving without PyTorch: on {written['golden']['rows']} real test rows the numpy "
                      f"preprocessing gives training's tensors to {shown} (max |difference|); onnxruntime gives "
                      f"PyTorch's outputs to {written['onnx_max_abs_diff']:.1e}.", ""]
        if "int8" in written:
            q = written["int8"]
            metric = q["metric"]
            lines += [f"| graph | size on disk | weights | test {metric} | latency batch 1 (ms) | latency batch 64 "
                      "(ms) |", "|---|---|---|---|---|---|"]
            lines += [f"| {g} | {q[g]['size_bytes'] / 1024:.1f} kB | {q[g]['weights_bytes'] / 1024:.1f} kB | "
                      f"{q[g][metric]:.2f} | {q[g]['latency_ms_batch1']:.3f} | {q[g]['latency_ms_batch64']:.2f} |"
                      for g in ("fp32", "int8")]
            change = round(q["int8"][metric] - q["fp32"][metric], 2) + 0.0  # (no negative zero)
            lines += ["", f"- int8 ({q['mode']} quantisation, {q['calibration_rows']} calibration rows of the "
                      f"training split): {on_disk(q['size_ratio'])}, test {metric} {change:+.2f} against float32 "
                      f"on {q['test_rows']} rows; onnxruntime on one CPU thread.", ""]
    return ["## Deployment", "", *lines] if lines else []
