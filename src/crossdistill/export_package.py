"""What makes an export folder deployable beyond the graph: the serving package, the tokenizer files a recipe
names, the golden rows and the int8 copy (both measured on the fold's real rows)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from crossdistill import config, serve
from crossdistill.data import open_dataset
from crossdistill.data.pretrained import tokenizer_file
from crossdistill.export_golden import write_golden
from crossdistill.plans import experiment_task
from crossdistill.quantize import CALIBRATION_ROWS, compare, quantise_int8, run_all, session
from crossdistill.rundir import RunDir
from crossdistill.serve.recipes import Preprocessor

SERVING_PACKAGE = "crossdistill_serve"


def copy_serving_package(out: Path) -> Path:
    """``out/crossdistill_serve``: the numpy-only serving code (``python -m crossdistill_serve`` there)."""
    target = out / SERVING_PACKAGE
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(Path(serve.__file__).parent, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def copy_tokenizers(recipes: dict[str, dict], out: Path, model: str) -> dict[str, dict]:
    """Recipes whose text is tokenised by a pretrained ``tokenizer.json`` get a copy of it beside the export."""
    for modality, recipe in recipes.items():
        state = recipe.get("tokenizer", {})
        if recipe["kind"] == "text" and state.get("level") == "hf":
            name = f"{model}.{modality}.tokenizer.json"
            shutil.copy(tokenizer_file(state["model"]), out / name)
            recipe["tokenizer_file"] = name
    return recipes


def as_arrays(inputs: dict[str, Any], modalities: list[str], rows: np.ndarray) -> dict[str, np.ndarray]:
    return {m: np.asarray(inputs[m][rows]) for m in modalities}


def checked_on_real_rows(run_dir: Path, model_dir: Path, out: Path, written: dict[str, Any], modalities: list[str],
                         recipes: dict[str, dict], quantize: str | None, max_drop: float) -> dict[str, Any]:
    """Golden rows (and the int8 copy with its measurements) from the model's fold of the run's data."""
    exp = config.load(RunDir(run_dir).config)
    dataset = open_dataset(exp.data.dataset, exp.data.root, exp.data.options, exp.data.seed, experiment_task(exp),
                           **exp.data.reading())
    fold = dataset.fold(RunDir.fold_of(model_dir))
    fp32 = Path(written["onnx"])
    graphs = {"output": session(fp32)}
    added: dict[str, Any] = {}
    if quantize == "int8":
        train, test = fold.splits["train"], fold.splits["test"]
        picked = np.sort(np.random.default_rng(0).permutation(len(train))[:CALIBRATION_ROWS])
        int8 = out / f"{written['model']}.int8.onnx"
        mode = quantise_int8(fp32, int8, as_arrays(train.inputs, modalities, picked))
        try:
            measured = compare(fp32, int8, as_arrays(test.inputs, modalities, np.arange(len(test))),
                               test.target.numpy(), written, max_drop)
        except Exception:
            int8.unlink(missing_ok=True)
            raise
        added["int8"] = {"onnx": str(int8), "mode": mode, "calibration_rows": int(picked.size), **measured}
        graphs["output.int8"] = session(int8)
    served = Preprocessor(recipes, out)
    unservable = [m for m in modalities if not served.servable(m)]
    if unservable:  # (the graph is still exported; a device cannot feed it without PyTorch)
        added["golden"] = {"skipped": "; ".join(f"{m}: {served.why(m)}" for m in unservable)}
        return added
    added["golden"] = write_golden(out / f"{written['model']}.golden", dataset, fold, modalities, recipes,
                                   lambda inputs: {name: run_all(g, inputs) for name, g in graphs.items()})
    return added
