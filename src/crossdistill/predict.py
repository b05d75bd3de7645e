"""``crossdistill predict``: a trained classifier or regressor over new files, folders or tables.

From an export folder the numpy serving path and onnxruntime run it (``crossdistill.serve``, what a device
runs); from a run directory PyTorch runs the safetensors weights and the preprocessing is training's own: the
same decoders, tokenizers and standardisation (shared with ``serve``), the log-mel through ``torch.stft`` and
pretrained text embeddings through their sentence model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from crossdistill.config import ConfigError
from crossdistill.data.audio import log_mel
from crossdistill.data.pretrained import sentence_encoder, tokenizer_file
from crossdistill.export import load_run_model
from crossdistill.rundir import RunDir
from crossdistill.serve import ExportedModel, Preprocessor, predict_rows, read_inputs, recipes_from_info

Records = tuple[list[dict[str, Any]], list[str]]


def is_export(folder: Path, model: str) -> bool:
    return (Path(folder) / f"{model}.json").is_file() and not RunDir(folder).config.is_file()


def predict(source: Path, input_path: Path, model: str = "distilled", fold: int | None = None,
            seed: int | None = None, int8: bool = False, batch_size: int = 64, on_error: str = "stop",
            progress: bool = True) -> Records:
    """(a record per row, a line per skipped row) for ``input_path``, from an export folder or a run."""
    if is_export(source, model):
        return ExportedModel(source, model, int8).predict(input_path, batch_size, on_error, progress)
    if int8:
        raise ConfigError("--int8 runs the quantised ONNX graph: give the export folder (crossdistill export RUN "
                          "--format onnx --quantize int8), not the run")
    return predict_with_torch(Path(source), input_path, model, fold, seed, batch_size, on_error, progress)


def torch_log_mel(waves: np.ndarray, *args: Any) -> np.ndarray:
    return log_mel(waves.astype(np.float32), *args).numpy()


def sentence_embeddings(recipe: dict[str, Any], texts: list[str]) -> np.ndarray:
    return sentence_encoder(recipe["model"])(texts)


def training_preprocessor(run_dir: Path, modalities: list[str]) -> tuple[dict[str, dict], Preprocessor]:
    """(recipes, preprocessor) of a run's modalities with training's own front ends (``torch.stft``'s log-mel,
    the sentence model of a text embedding, a pretrained tokenizer where its model's files are)."""
    recipes = {m: r for m, r in recipes_from_info(RunDir(run_dir).load_data_info()).items() if m in modalities}
    for recipe in recipes.values():
        if recipe.get("tokenizer", {}).get("level") == "hf":
            recipe["tokenizer_file"] = str(tokenizer_file(recipe["tokenizer"]["model"]))
    preprocess = Preprocessor(recipes, spectrogram=torch_log_mel, embed=sentence_embeddings)
    preprocess.check(modalities)
    return recipes, preprocess


@torch.no_grad()
def predict_with_torch(run_dir: Path, input_path: Path, model: str, fold: int | None, seed: int | None,
                       batch_size: int, on_error: str, progress: bool) -> Records:
    net, info, _ = load_run_model(run_dir, model, fold, seed)
    if "towers" in info.task.provides:
        raise ConfigError(f"{run_dir} is a retrieval run: its towers embed, they do not predict; use "
                          "`crossdistill search`")
    recipes, preprocess = training_preprocessor(run_dir, list(net.modalities))
    module, modalities, _ = info.task.export_modules(net)[""]

    def run(inputs: dict[str, np.ndarray]) -> np.ndarray:
        return module(*[torch.from_numpy(inputs[m]) for m in modalities]).float().numpy()

    rows = read_inputs(input_path, list(net.modalities), recipes)
    return predict_rows(rows, list(net.modalities), preprocess, run, info.task.export_reading(net, info),
                        batch_size, on_error, progress)
