"""Traps a newcomer fell into with their own manifests, each now a clear outcome: the real column of a tabular
modality named, data rows numbered as such, label cells meaning "no label" kept out of the classes, Excel's
"CSV UTF-8", an image over Pillow's decompression-bomb limit, and the groups of each split written and chosen."""

import csv
import logging

import pytest

from crossdistill.config import ConfigError
from crossdistill.data import open_dataset
from crossdistill.data.manifest import ManifestError
from crossdistill.tasks import build_task

CLASSIFICATION = build_task("classification")


def write_csv(path, rows, encoding="utf-8", lineterminator="\r\n"):
    with path.open("w", newline="", encoding=encoding) as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator=lineterminator)
        writer.writeheader()
        writer.writerows(rows)
    return path


def tabular(path, **extra):
    return {"path": str(path), "label": "label",
            "modalities": {"tab": {"kind": "tabular", "numeric": ["mean radius", "mean area"]}}, **extra}


def rows_of(n, label=lambda i: str(i % 3), group=None):
    return [{"mean radius": str(1.0 + i), "mean area": str(2.0 * i), "label": label(i),
             **({"speaker": group(i)} if group else {})} for i in range(n)]


def test_a_bad_cell_names_its_own_column_and_data_row(tmp_path):
    rows = rows_of(30)
    rows[5]["mean area"] = "abc"
    with pytest.raises(ManifestError, match=r"data row 6, column 'mean area' \(modality tab\): not a number: 'abc'"):
        open_dataset("manifest", None, tabular(write_csv(tmp_path / "t.csv", rows)), 0, CLASSIFICATION)


@pytest.mark.parametrize("missing", ["", "nan", "NaN", "NA", "None", "null"])
def test_a_missing_label_is_an_unlabelled_row_never_a_class(tmp_path, caplog, missing):
    rows = rows_of(60, label=lambda i: missing if i % 10 == 0 else str(i % 3))
    path = write_csv(tmp_path / "t.csv", rows)
    with caplog.at_level(logging.INFO, logger="crossdistill"):
        fold = open_dataset("manifest", None, tabular(path), 0, CLASSIFICATION).fold(0)
    assert fold.info.class_names == ["0", "1", "2"]
    assert "6 of 60 rows have no label" in caplog.text
    train = fold["train"].target
    assert int((train == -1).sum()) == 6  # every unlabelled row trains (distillation), none is scored
    for split in ("val", "test"):
        assert bool((fold[split].target >= 0).all())


def test_excel_csv_utf8_with_byte_order_mark_and_crlf_reads(tmp_path):
    rows = rows_of(30)
    path = write_csv(tmp_path / "excel.csv", rows, encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbfmean radius") and b"\r\n" in path.read_bytes()
    fold = open_dataset("manifest", None, tabular(path), 0, CLASSIFICATION).fold(0)
    assert sum(len(fold[s]) for s in ("train", "val", "test")) == 30


def test_an_image_over_the_decompression_bomb_limit_is_a_named_bad_row(tmp_path, monkeypatch, caplog):
    from PIL import Image

    for i in range(30):
        Image.new("RGB", (8, 8), (i * 8, 0, 0)).save(tmp_path / f"{i}.png")
    Image.new("RGB", (64, 64)).save(tmp_path / "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 64 x 64 = 4096 > 2 x 1000: Pillow refuses it
    rows = [{"img": f"{i}.png", "label": str(i % 3)} for i in range(30)] + [{"img": "huge.png", "label": "0"}]
    options = {"path": str(write_csv(tmp_path / "m.csv", rows)), "label": "label",
               "modalities": {"image": {"kind": "image", "column": "img", "size": 8}}}
    with pytest.raises(ManifestError, match=r"data row 31, column 'img' \(modality image\): image too large"):
        open_dataset("manifest", None, options, 0, CLASSIFICATION)
    with caplog.at_level(logging.WARNING, logger="crossdistill"):
        fold = open_dataset("manifest", None, {**options, "skip_bad_rows": True}, 0, CLASSIFICATION).fold(0)
    assert "skipped 1 of 31 rows" in caplog.text and sum(len(fold[s]) for s in ("train", "val", "test")) == 30


def test_the_groups_of_each_split_are_written_and_can_be_named(tmp_path, caplog):
    rows = rows_of(60, group=lambda i: f"spk{i % 6}")
    path = write_csv(tmp_path / "g.csv", rows)
    with caplog.at_level(logging.INFO, logger="crossdistill"):
        fold = open_dataset("manifest", None, tabular(path, group_column="speaker"), 0, CLASSIFICATION).fold(0)
    assert "val speaker: " in fold.description and "test speaker: " in fold.description
    assert "groups by split" in caplog.text
    named = tabular(path, group_column="speaker", val_groups=["spk1"], test_groups=["spk4", "spk5"])
    fold = open_dataset("manifest", None, named, 0, CLASSIFICATION).fold(0)
    assert fold.description.endswith("val speaker: spk1; test speaker: spk4, spk5")
    assert sorted(set(fold["test"].groups)) == ["spk4", "spk5"] and set(fold["val"].groups) == {"spk1"}
    assert len(fold["train"]) == 30 and not set(fold["train"].groups) & {"spk1", "spk4", "spk5"}
    with pytest.raises(ConfigError, match="val_groups: no group 'spk9'"):
        open_dataset("manifest", None, {**named, "val_groups": ["spk9"]}, 0, CLASSIFICATION)
    with pytest.raises(ConfigError, match="give both val_groups and test_groups"):
        open_dataset("manifest", None, {**named, "val_groups": None}, 0, CLASSIFICATION)
