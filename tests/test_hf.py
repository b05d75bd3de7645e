"""Hugging Face datasets as a source (``dataset: hf``): a ``save_to_disk`` folder made here from real emoji
pictures and names reads exactly like the same rows in a CSV manifest: same tensors, its own splits, the same
checks (a missing column lists the dataset's columns, a broken picture is named and can be skipped)."""

import csv
import json
from pathlib import Path

import pytest
import torch

datasets = pytest.importorskip("datasets")

from crossdistill.config import ConfigError  # noqa: E402
from crossdistill.data import open_dataset  # noqa: E402
from crossdistill.data.manifest import ManifestError  # noqa: E402
from crossdistill.tasks import build_task  # noqa: E402

CLASSIFICATION = build_task("classification")
SPLITS = ["train"] * 6 + ["validation"] * 2 + ["test"] * 2


@pytest.fixture(scope="module")
def emoji(data_root):
    entries = json.loads((data_root / "emoji_noto64" / "emoji.json").read_text())
    keep = [e for e in entries if e["category"] in ("Smileys & Emotion", "Animals & Nature", "Food & Drink")]
    rows = [{"image": str(data_root / "emoji_noto64" / "png" / e["image"]), "name": e["name"].lower(),
             "category": e["category"]} for e in keep[::5][:90]]
    for i, row in enumerate(rows):
        row["split"] = SPLITS[i % 10]
    return rows


def options(path, **extra):
    return {"path": str(path), "label": "category", "modalities": {
        "image": {"kind": "image", "column": "image", "size": 16},
        "text": {"kind": "text", "column": "name", "max_length": 6}}, **extra}


def save_splits(rows, folder):
    parts = {}
    for split in ("train", "validation", "test"):
        mine = [r for r in rows if r["split"] == split]
        part = datasets.Dataset.from_dict({k: [r[k] for r in mine] for k in ("image", "name", "category")})
        parts[split] = part.cast_column("image", datasets.Image())
    datasets.DatasetDict(parts).save_to_disk(str(folder))
    return folder


def test_a_saved_dataset_reads_like_the_same_rows_in_a_csv(emoji, tmp_path):
    folder = save_splits(emoji, tmp_path / "emoji_hf")
    table = tmp_path / "emoji.csv"
    ordered = [r for split in ("train", "validation", "test") for r in emoji if r["split"] == split]
    with table.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(ordered[0]))
        writer.writeheader()
        writer.writerows({**r, "split": {"validation": "val"}.get(r["split"], r["split"])} for r in ordered)
    hf = open_dataset("hf", None, options(folder), 0, CLASSIFICATION).fold(0)
    plain = open_dataset("manifest", None, options(table, split_column="split"), 0, CLASSIFICATION).fold(0)
    for split in ("train", "val", "test"):
        assert len(hf[split]) == sum(r["split"] == {"val": "validation"}.get(split, split) for r in emoji)
        assert torch.equal(hf[split].inputs["image"], plain[split].inputs["image"])  # the stored bytes, decoded
        assert torch.equal(hf[split].inputs["text"], plain[split].inputs["text"])
        assert torch.equal(hf[split].target, plain[split].target)
    assert hf.info.class_names == plain.info.class_names


def test_one_saved_dataset_is_split_by_ratios(emoji, tmp_path):
    part = datasets.Dataset.from_dict({k: [r[k] for r in emoji] for k in ("image", "name", "category")})
    part.cast_column("image", datasets.Image()).save_to_disk(str(tmp_path / "one"))
    fold = open_dataset("hf", None, options(tmp_path / "one", ratios=[0.6, 0.2, 0.2]), 0, CLASSIFICATION).fold(0)
    assert sum(len(fold[s]) for s in ("train", "val", "test")) == len(emoji) and len(fold["val"]) > 0


def test_bad_input_is_named(emoji, tmp_path):
    folder = save_splits(emoji, tmp_path / "emoji_hf")
    with pytest.raises(ConfigError, match=r"no column 'title' \(modality text\); the manifest has: .*category"):
        open_dataset("hf", None, {**options(folder), "modalities": {"text": {"kind": "text", "column": "title"}}},
                     0, CLASSIFICATION)
    with pytest.raises(ConfigError, match="not a Hugging Face dataset saved with save_to_disk"):
        (tmp_path / "empty").mkdir()
        open_dataset("hf", None, options(tmp_path / "empty"), 0, CLASSIFICATION)
    broken = [dict(r) for r in emoji]
    part = datasets.Dataset.from_dict({"image": [{"bytes": b"not a png", "path": "x.png"}] + [
        {"bytes": Path(r["image"]).read_bytes(), "path": r["image"]} for r in broken[1:]],
        "name": [r["name"] for r in broken], "category": [r["category"] for r in broken]})
    part.cast_column("image", datasets.Image()).save_to_disk(str(tmp_path / "broken"))
    with pytest.raises(ManifestError, match=r"row 1, column 'image' \(modality image\): cannot decode image"):
        open_dataset("hf", None, options(tmp_path / "broken"), 0, CLASSIFICATION)
    fold = open_dataset("hf", None, options(tmp_path / "broken", skip_bad_rows=True), 0, CLASSIFICATION).fold(0)
    assert sum(len(fold[s]) for s in ("train", "val", "test")) == len(emoji) - 1
