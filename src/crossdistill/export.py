"""Export a trained model of a run directory: ONNX (checked against PyTorch with onnxruntime) and safetensors,
with everything a deployment needs beside them (``export_package``).

Reads ``config.yaml``, ``data_info.json`` and the model's ``best.safetensors``; never imports training code.
"""

from __future__ import annotations

import json
import logging
import shutil
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from crossdistill import config
from crossdistill.checkpoint import load_weights
from crossdistill.config import ConfigError
from crossdistill.data.batch import DataInfo, ModalitySpec
from crossdistill.errors import CrossdistillError
from crossdistill.export_package import checked_on_real_rows, copy_serving_package, copy_tokenizers
from crossdistill.models import build_model
from crossdistill.rundir import RunDir
from crossdistill.serve.recipes import recipes_from_info
from crossdistill.tasks import build_task

PARITY_TOLERANCE = 1e-4


class ParityError(CrossdistillError, RuntimeError):
    """onnxruntime's logits differ from PyTorch's by more than the tolerance."""


def modality_spec(saved: dict) -> ModalitySpec:
    """A ``ModalitySpec`` from ``data_info.json``."""
    return ModalitySpec(tuple(saved["shape"]), saved["dtype"], saved["meta"])


def load_run_model(run_dir: Path, model: str = "distilled", fold: int | None = None, seed: int | None = None
                   ) -> tuple[nn.Module, DataInfo, Path]:
    """(model, DataInfo, its folder) of a trained model in ``run_dir``; ``fold`` / ``seed`` None take the first
    present."""
    run = RunDir(run_dir)
    exp = config.load(run.config)
    raw = run.load_data_info()
    info = DataInfo(num_samples={}, num_classes=raw["num_classes"], class_names=raw["class_names"],
                    modalities={m: modality_spec(s) for m, s in raw["modalities"].items()},
                    task=build_task(raw["task"]), target_scale=tuple(raw["target_scale"]))
    model_dir = run.trained(model, fold, seed)
    spec = exp.teacher_spec(model) if (model == "teacher" or model in exp.extra_teachers) else exp.student
    net = build_model(spec, info, role=model)
    load_weights(net, RunDir.weights(model_dir))
    return net.eval(), info, model_dir


def onnx_parity(path: Path, module: nn.Module, names: list[str], inputs: list[Tensor]) -> float:
    """Max absolute difference between onnxruntime's and PyTorch's output on ``inputs``."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (ours,) = session.run(None, {name: x.numpy() for name, x in zip(names, inputs, strict=True)})
    with torch.no_grad():
        theirs = module(*inputs).numpy()
    return float(np.abs(ours - theirs).max())


def strip_trace_metadata(path: Path) -> None:
    """Drop what the exporter records per node (stack traces naming this machine's files, module paths: about
    80% of a small student's file) and the intermediate shapes: nothing a runtime needs."""
    import onnx

    graph = onnx.load(str(path))
    del graph.graph.value_info[:]
    for node in graph.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    onnx.save(graph, str(path))


def export_onnx(module: nn.Module, names: list[str], specs: list[ModalitySpec], path: Path, output: str) -> float:
    """Write ``module`` (positional inputs named ``names``) to ``path`` with a dynamic batch axis; returns the
    parity error against onnxruntime (raises above tolerance)."""
    inputs = [spec.example(4) for spec in specs]
    batch = torch.export.Dim("batch", min=1, max=4096)
    for noisy in ("torch.onnx", "onnxscript", "onnx_ir"):  # they log every missing torchvision op and pass
        logging.getLogger(noisy).setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.filterwarnings("ignore", message="The tensor attribute")  # (a wrapped model's forward hooks)
        torch.onnx.export(module.eval(), tuple(inputs), str(path), input_names=names, output_names=[output],
                          dynamic_shapes=(tuple({0: batch} for _ in inputs),), external_data=False, dynamo=True,
                          verbose=False)
    strip_trace_metadata(path)
    error = onnx_parity(path, module, names, [spec.example(16) for spec in specs])
    if error > PARITY_TOLERANCE:
        raise ParityError(f"{path}: onnxruntime differs from PyTorch by {error:.2e} > {PARITY_TOLERANCE}")
    return error


def export(run_dir: Path, formats: list[str], model: str = "distilled", fold: int | None = None,
           seed: int | None = None, quantize: str | None = None, max_drop: float = 1.0) -> dict:
    """Export into ``run_dir/export/``: the graph(s) and/or weights, what a deployment needs to feed the model
    (each modality's preprocessing recipe) and to read its output, golden rows checked against training's own
    preprocessing, an int8 copy measured against float32 (``quantize="int8"``), and the numpy-only serving
    package. Returns what was written (also saved as ``<model>.json``)."""
    unknown = sorted(set(formats) - {"onnx", "safetensors"})
    if unknown:
        raise ConfigError(f"unknown export format {', '.join(unknown)}; available: onnx, safetensors")
    if quantize not in (None, "int8") or (quantize and "onnx" not in formats):
        raise ConfigError(f"--quantize {quantize}: the one quantisation is int8, of the ONNX graph (--format onnx)")
    net, info, model_dir = load_run_model(Path(run_dir), model, fold, seed)
    weights = RunDir.weights(model_dir)
    out = RunDir(run_dir).export
    out.mkdir(exist_ok=True)
    # What a deployment needs to read the output: class names, or how a standardised value maps to the label's units.
    reading = info.task.export_reading(net, info)
    recipes = {m: r for m, r in recipes_from_info(RunDir(run_dir).load_data_info()).items() if m in net.modalities}
    written: dict = {"model": model, "trained": str(model_dir.relative_to(run_dir)), "modalities": net.modalities,
                     "task": info.task.spec(), **reading, "preprocessing": copy_tokenizers(recipes, out, model)}
    if "safetensors" in formats:
        shutil.copy(weights, out / f"{model}.safetensors")
        written["safetensors"] = str(out / f"{model}.safetensors")
    graphs = info.task.export_modules(net) if "onnx" in formats else {}
    for suffix, (module, modalities, output) in graphs.items():  # one graph, or one per retrieval tower
        path = out / f"{model}{suffix}.onnx"
        error = export_onnx(module, modalities, [info.modalities[m] for m in modalities], path, output)
        if suffix:
            written.setdefault("towers", {})[suffix.lstrip(".")] = {"onnx": str(path), "onnx_max_abs_diff": error}
        else:
            written["onnx"] = str(path)
        written["onnx_max_abs_diff"] = max(error, written.get("onnx_max_abs_diff", 0.0))
    if "onnx" in written:  # a classifier or regressor: golden rows, int8
        written |= checked_on_real_rows(Path(run_dir), model_dir, out, written, net.modalities, recipes, quantize,
                                        max_drop)
    copy_serving_package(out)
    (out / f"{model}.json").write_text(json.dumps(written, indent=1))
    if "golden" in written and RunDir(run_dir).results.is_file():  # the report shows what the export measured
        from crossdistill import report

        report.build(Path(run_dir))
    return written
