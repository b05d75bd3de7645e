"""An exported student run with onnxruntime and numpy alone: ``ExportedModel(folder)`` reads the export's JSON
(``<model>.json``: its preprocessing recipes, how to read its output, its ONNX files) and predicts for new
inputs; ``check_golden`` replays the golden rows written at export and compares inputs and outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .inputs import InputRows, read_inputs
from .predict import predict_rows
from .recipes import Preprocessor


class ExportError(ValueError):
    """An export folder that lacks what serving needs; the message names the file."""


def load_export(folder: Path, model: str = "distilled") -> dict[str, Any]:
    path = Path(folder) / f"{model}.json"
    if not path.is_file():
        found = sorted(p.stem for p in Path(folder).glob("*.json"))
        raise ExportError(f"{path} not found: not an export folder of {model!r} (found: {', '.join(found) or 'none'}"
                          "; `crossdistill export RUN` writes one)")
    return json.loads(path.read_text())


class ExportedModel:
    """The ONNX graph of an exported classifier or regressor (``int8``: its quantised copy) and its
    preprocessing."""

    def __init__(self, folder: Path, model: str = "distilled", int8: bool = False) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise ExportError("running an exported model needs onnxruntime: pip install onnxruntime") from None

        self.folder = Path(folder)
        self.manifest = load_export(self.folder, model)
        if "towers" in self.manifest:
            raise ExportError(f"{self.folder}: a retrieval model's towers embed, they do not predict: use "
                              "`crossdistill search`")
        if "preprocessing" not in self.manifest:
            raise ExportError(f"{self.folder / (model + '.json')}: no preprocessing recipes (exported before "
                              "crossdistill 0.2): export the run again")
        key = "int8" if int8 else "onnx"
        if key not in self.manifest:
            raise ExportError(f"{self.folder}: {model!r} was exported without "
                              f"{'--quantize int8' if int8 else '--format onnx'}")
        entry = self.manifest[key]
        self.onnx = self.folder / Path(entry["onnx"] if isinstance(entry, dict) else entry).name
        self.session = onnxruntime.InferenceSession(str(self.onnx), providers=["CPUExecutionProvider"])
        self.modalities: list[str] = list(self.manifest["modalities"])
        self.recipes: dict[str, dict[str, Any]] = self.manifest["preprocessing"]
        self.preprocess = Preprocessor(self.recipes, self.folder)
        self.preprocess.check(self.modalities)

    def run(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Model inputs (B, ...) by modality -> outputs (B, K)."""
        feed = {m: inputs[m].astype(np.int64 if self.recipes[m]["dtype"] == "int64" else np.float32)
                for m in self.modalities}
        return self.session.run(None, feed)[0]

    def predict(self, source: Path | InputRows, batch_size: int = 64, on_error: str = "stop",
                progress: bool = False) -> tuple[list[dict[str, Any]], list[str]]:
        """(records, skipped rows) for a file, folder or table (or rows already read)."""
        rows = source if isinstance(source, InputRows) else read_inputs(Path(source), self.modalities, self.recipes)
        return predict_rows(rows, self.modalities, self.preprocess, self.run, self.manifest, batch_size, on_error,
                            progress)


def check_golden(folder: Path, model: str = "distilled", int8: bool = False) -> dict[str, float]:
    """Replay the export's golden rows (files and values saved at export): the largest difference of each
    modality's preprocessed input and of the output from what training's own code gave. Raises above the
    tolerance written with them."""
    exported = ExportedModel(folder, model, int8)
    golden_dir = Path(folder) / f"{model}.golden"
    rows = json.loads((golden_dir / "rows.json").read_text())
    expected = np.load(golden_dir / "expected.npz")
    differences = {}
    for modality in exported.modalities:
        got = exported.preprocess(modality, rows["cells"][modality], golden_dir)
        differences[modality] = float(np.abs(got.astype(np.float64) - expected[f"input.{modality}"]).max())
    outputs = exported.run({m: expected[f"input.{m}"] for m in exported.modalities})
    reference = expected["output.int8" if int8 else "output"]
    differences["output"] = float(np.abs(outputs - reference).max())
    tolerance = rows["tolerance"]
    bad = {k: v for k, v in differences.items() if v > tolerance}
    if bad:
        raise ExportError(f"{golden_dir}: differs from training's preprocessing/outputs by "
                          f"{', '.join(f'{k} {v:.2e}' for k, v in bad.items())} > {tolerance}")
    return differences
