"""``search`` serves every retrieval run: a manifest whose image column has a relative ``folder`` (gallery as a
folder and as a table, answers named by the table's names), and av-digits (a spoken query over pictured digits,
a pictured query over recordings)."""

import json
import shutil

import numpy as np
from test_retrieval import TINY_RETRIEVAL
from typer.testing import CliRunner

from crossdistill.cli import app
from crossdistill.data import open_dataset
from crossdistill.search import search
from crossdistill.tasks import build_task

runner = CliRunner()

AV_DIGITS = """
data: {dataset: av-digits, folds: 1}
task: {name: retrieval, positives: class}
seeds: [0]
teacher: {encoders: {audio: {name: spec_cnn, channels: [8, 16]}, image: {name: image_cnn, channels: [8, 16]}},
          embed_dim: 16, train: {epochs: 3}}
student: {encoders: {audio: {name: spec_cnn, channels: [4, 8]}, image: {name: image_cnn, channels: [4, 8]}},
          embed_dim: 8}
distill: {terms: [{loss: clip, kwargs: {positives: class}}, {loss: clip_fd}]}
train: {epochs: 3, batch_size: 128, progress: false}
evaluate: {latency_repeats: 2}
"""


def test_a_manifest_with_a_relative_image_folder_serves_folder_and_table_galleries(emoji_rows, tmp_path):
    (tmp_path / "png").mkdir()
    rows = []
    for row in emoji_rows[:120]:
        name = row["image"].rsplit("/", 1)[1]
        shutil.copy(row["image"], tmp_path / "png" / name)
        rows.append({"image": name, "name": row["name"], "category": row["category"]})
    (tmp_path / "emoji.json").write_text(json.dumps(rows))
    (tmp_path / "run.yaml").write_text(TINY_RETRIEVAL.format(path=tmp_path / "emoji.json", png="png"))
    done = runner.invoke(app, ["run", str(tmp_path / "run.yaml"), "--out", str(tmp_path / "runs")])
    assert done.exit_code == 0, done.output
    run_dir = tmp_path / "runs" / "run"
    in_folder = search(run_dir, "smiling face", tmp_path / "png", k=4)  # the folder holds the files themselves
    assert in_folder["gallery_size"] == 120 and all(h["item"].endswith(".png") for h in in_folder["results"])
    in_table = search(run_dir, "smiling face", tmp_path / "emoji.json", k=4)  # rows resolved through `folder`
    names = {r["name"] for r in rows}
    assert all(h["item"] in names and h["file"].endswith(".png") for h in in_table["results"])
    by_file = {h["file"]: h["score"] for h in in_table["results"]}  # the same embeddings either way
    assert {h["item"]: h["score"] for h in in_folder["results"]} == by_file
    shown = runner.invoke(app, ["search", str(run_dir), "smiling face", "--gallery", str(tmp_path / "emoji.json"),
                                "--show", "category", "-k", "3"])
    assert shown.exit_code == 0 and "file" in shown.output, shown.output
    assert any(c in shown.output for c in {r["category"] for r in rows})
    bad = runner.invoke(app, ["search", str(run_dir), "smiling face", "--gallery", str(tmp_path / "emoji.json"),
                              "--show", "colour"])
    assert bad.exit_code == 2 and "--show 'colour' is not a column" in bad.output


def test_av_digits_retrieval_answers_speech_with_pictures_and_pictures_with_speech(data_root, tmp_path):
    (tmp_path / "run.yaml").write_text(AV_DIGITS)
    done = runner.invoke(app, ["run", str(tmp_path / "run.yaml"), "--out", str(tmp_path / "runs")])
    assert done.exit_code == 0, done.output
    run_dir = tmp_path / "runs" / "run"
    dataset = open_dataset("av-digits", None, {}, 0, build_task({"name": "retrieval", "positives": "class"}))
    pictures = dataset.paired_images(0, "test")[:50]  # (50, 1, 8, 8) in [0, 1]: the test split's handwriting
    np.save(tmp_path / "pictures.npy", pictures)
    spoken = sorted((data_root / "fsdd" / "recordings").glob("*_george_0.wav"))
    found = search(run_dir, str(spoken[3]), tmp_path / "pictures.npy", k=5)
    assert found["query_modality"] == "audio" and found["gallery_modality"] == "image"
    assert found["gallery_size"] == 50 and [h["rank"] for h in found["results"]] == [1, 2, 3, 4, 5]
    clips = tmp_path / "clips"
    clips.mkdir()
    for path in spoken:
        shutil.copy(path, clips / path.name)
    np.save(tmp_path / "one.npy", pictures[0])
    answered = runner.invoke(app, ["search", str(run_dir), str(tmp_path / "one.npy"), "--gallery", str(clips)])
    assert answered.exit_code == 0, answered.output
    assert "(image) -> 10 audio items" in answered.output and "_george_0.wav" in answered.output
    refused = runner.invoke(app, ["search", str(run_dir), "seven", "--gallery", str(clips)])
    assert refused.exit_code == 2 and "no tower reads a text query (towers: audio (audio), image (image))" \
        in refused.output
