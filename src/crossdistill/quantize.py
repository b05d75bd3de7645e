"""int8 students: onnxruntime quantisation of an exported graph, measured against the float32 one.

Static quantisation (operator format: QLinearConv/QLinearMatMul, the most compact on disk and what
onnxruntime's CPU kernels run; per-channel int8 weights, uint8 activations whose ranges are calibrated on
training rows) where the graph allows it; dynamic quantisation (weights only, activations quantised on the fly) when the
static pass fails. Both graphs are then scored on the fold's whole test split, timed on the CPU at batch 1 and
64 (one thread, the same for both) and weighed on disk; an int8 graph that loses more than ``max_drop`` is
refused with the numbers.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from crossdistill.errors import CrossdistillError

log = logging.getLogger(__name__)
CALIBRATION_ROWS = 256


class QuantisationRefused(CrossdistillError, ValueError):
    """The int8 graph loses more than the user's tolerance; the message gives both scores."""


def quantise_int8(source: Path, target: Path, calibration: dict[str, np.ndarray]) -> str:
    """Write the int8 copy of ``source`` to ``target``; returns how ("static" or "dynamic: why")."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Rows(CalibrationDataReader):
        def __init__(self) -> None:
            count = len(next(iter(calibration.values())))
            self.batches = iter([{m: x[i : i + 32] for m, x in calibration.items()} for i in range(0, count, 32)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    prepared = target.with_name(f".{target.stem}.prepared.onnx")
    try:
        quant_pre_process(str(source), str(prepared))
        try:
            quantize_static(str(prepared), str(target), Rows(), quant_format=QuantFormat.QOperator,
                            per_channel=True, weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8)
            strip_shapes(target)
            return "static"
        except Exception as why:  # noqa: BLE001  (an operator static quantisation cannot handle)
            log.warning("static int8 quantisation failed (%s); quantising dynamically", why)
            quantize_dynamic(str(prepared), str(target), weight_type=QuantType.QInt8)
            strip_shapes(target)
            return f"dynamic: static failed ({type(why).__name__})"
    finally:
        prepared.unlink(missing_ok=True)


def strip_shapes(path: Path) -> None:
    """Drop the intermediate shapes the pre-processing recorded (onnxruntime infers them again)."""
    import onnx

    graph = onnx.load(str(path))
    del graph.graph.value_info[:]
    onnx.save(graph, str(path))


def weights_bytes(path: Path) -> int:
    """Bytes of the graph's stored tensors alone (what quantisation shrinks; names and nodes do not)."""
    import onnx
    from onnx import numpy_helper

    return int(sum(numpy_helper.to_array(t).nbytes for t in onnx.load(str(path)).graph.initializer))


def session(path: Path) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_all(graph: Any, inputs: dict[str, np.ndarray], batch: int = 256) -> np.ndarray:
    count = len(next(iter(inputs.values())))
    return np.concatenate([graph.run(None, {m: x[i : i + batch] for m, x in inputs.items()})[0]
                           for i in range(0, count, batch)])


def latency_ms(graph: Any, inputs: dict[str, np.ndarray], batch: int, repeats: int) -> float:
    """Median milliseconds of one call on ``batch`` rows (rows repeated when the split is smaller)."""
    feed = {m: np.resize(x, (batch, *x.shape[1:])) for m, x in inputs.items()}
    graph.run(None, feed)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        graph.run(None, feed)
        times.append((time.perf_counter() - start) * 1000)
    return float(np.median(times))


def score(outputs: np.ndarray, target: np.ndarray, reading: dict[str, Any]) -> tuple[str, float]:
    """(metric, value): accuracy in % for a classifier, mean absolute error in the label's units for a
    regressor."""
    if "target_mean" in reading:
        values = outputs[:, 0] * reading["target_std"] + reading["target_mean"]
        truth = target * reading["target_std"] + reading["target_mean"]
        return "mean absolute error", float(np.abs(values - truth).mean())
    return "accuracy %", float((outputs.argmax(axis=1) == target).mean() * 100)


def compare(fp32: Path, int8: Path, test: dict[str, np.ndarray], target: np.ndarray, reading: dict[str, Any],
            max_drop: float, repeats: int = 20) -> dict[str, Any]:
    """Size, latency and test metric of both graphs side by side; raises ``QuantisationRefused`` when int8
    loses more than ``max_drop`` (accuracy points, or for a regressor % of float32's mean absolute error)."""
    graphs = {"fp32": session(fp32), "int8": session(int8)}
    rows: dict[str, Any] = {"test_rows": int(len(target))}
    for name, graph in graphs.items():
        metric, value = score(run_all(graph, test), target, reading)
        path = fp32 if name == "fp32" else int8
        rows[name] = {"size_bytes": path.stat().st_size, "weights_bytes": weights_bytes(path), metric: value,
                      "latency_ms_batch1": latency_ms(graph, test, 1, repeats),
                      "latency_ms_batch64": latency_ms(graph, test, 64, max(3, repeats // 4))}
    rows["metric"] = metric
    rows["size_ratio"] = rows["fp32"]["size_bytes"] / rows["int8"]["size_bytes"]
    before, after = rows["fp32"][metric], rows["int8"][metric]
    lost = before - after if metric.startswith("accuracy") else (after - before) / max(before, 1e-12) * 100
    rows["lost"] = lost
    if lost > max_drop:
        unit = "points" if metric.startswith("accuracy") else "% of float32's error"
        raise QuantisationRefused(f"int8 loses {lost:.2f} {unit} of {metric} on {len(target)} test rows "
                                  f"({before:.3f} -> {after:.3f}), more than --max-drop {max_drop}: not kept")
    return rows
