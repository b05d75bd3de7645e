"""Column kinds: a row preprocessed for serving (``data.columns.preprocess`` with the state saved in the run's
``data_info.json``) equals the same row preprocessed for training -- bit for bit for the deterministic kinds
(image, audio, text tokens, tabular, feature vectors), within 1e-6 for a kind that runs a model (a MiniLM
embedding alone vs inside a batch, in the embedding's units)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from crossdistill.data import open_dataset
from crossdistill.data.column_serving import preprocess
from crossdistill.data.columns import COLUMN_KINDS
from crossdistill.data.manifest_options import ManifestOptions
from crossdistill.tasks import build_task


@pytest.fixture(scope="module")
def mixed_manifest(data_root, tmp_path_factory):
    """48 real rows: an emoji picture and its name, a spoken digit, two numbers and a category, a feature list."""
    emoji = json.loads((data_root / "emoji_noto64" / "emoji.json").read_text())[:48]
    wavs = sorted((data_root / "fsdd" / "recordings").glob("*_jackson_*.wav"))[:48]
    rng = np.random.default_rng(0)
    rows = [{"image": str(data_root / "emoji_noto64" / "png" / e["image"]), "name": e["name"].lower(),
             "wav": str(wav), "age": float(rng.integers(18, 90)), "dose": round(float(rng.normal(5, 2)), 3),
             "site": ["a", "b", "c"][i % 3], "vec": rng.normal(size=5).round(4).tolist(), "digit": wav.name[0]}
            for i, (e, wav) in enumerate(zip(emoji, wavs, strict=True))]
    path = tmp_path_factory.mktemp("mixed") / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    options = {"path": str(path), "label": "digit", "ratios": [0.5, 0.25, 0.25], "modalities": {
        "image": {"kind": "image", "column": "image", "size": 16},
        "audio": {"kind": "audio", "column": "wav"},
        "text": {"kind": "text", "column": "name", "max_length": 8},
        "table": {"kind": "tabular", "numeric": ["age", "dose"], "categorical": ["site"]},
        "vec": {"kind": "features", "column": "vec"},
        "minilm": {"kind": "text_embedding", "column": "name"}}}
    return rows, options


@pytest.mark.parametrize(("modality", "tolerance"), [("image", 0.0), ("audio", 0.0), ("text", 0.0), ("table", 0.0),
                                                     ("vec", 0.0), ("minilm", 1e-6)])
def test_a_row_served_equals_the_row_trained_on(mixed_manifest, modality, tolerance):
    rows, options = mixed_manifest
    fold = open_dataset("manifest", None, options, 0, build_task("classification")).fold(0)
    parsed = ManifestOptions.model_validate(options)
    spec = parsed.modalities[modality]
    state = json.loads(json.dumps(fold.info.modalities[modality].meta))  # as saved in data_info.json
    for split in ("train", "test"):  # a training row, and one the state was not fitted on
        data = fold[split]
        for position in (0, len(data) - 1):
            row = rows[int(data.index[position])]
            cells = [[row[c] for c in spec.columns()]] if spec.kind == "tabular" else [row[spec.columns()[0]]]
            served = preprocess(spec, cells, Path(options["path"]).parent, state, parsed)[0]
            trained = data.inputs[modality][position]
            assert served.dtype == trained.dtype and served.shape == trained.shape
            if tolerance == 0.0:
                assert torch.equal(served, trained), f"{modality} {split} row {position}"
            else:  # in the embedding's own units (standardising divides by its per-dimension std, ~0.03)
                std = torch.tensor(state["normalise"]["std"], dtype=torch.float32)
                assert float(((served - trained) * std).abs().max()) <= tolerance


def test_every_column_kind_is_covered_here():
    assert set(COLUMN_KINDS.names()) == {"image", "audio", "text", "tabular", "features", "text_embedding",
                                         "distribution"}  # (distribution: a soft target, tested in test_manifest)
