"""Any nn.Module as a teacher: built by a factory from your code, layers tapped by name, frozen by default."""

import json

import pytest
import torch
from pydantic import ValidationError

from crossdistill.config import ConfigError, ModelSpec, load
from crossdistill.models import build_model
from crossdistill.pipeline import run

EXTERNAL = {"factory": "external_models:small_cnn", "kwargs": {"width": 6}, "inputs": ["image"], "embed": "5",
            "taps": {"conv": "1"}}


def test_an_external_module_speaks_the_outputs_contract_and_stays_frozen(av_fold):
    model = build_model(ModelSpec.model_validate({"external": EXTERNAL}), av_fold.info, role="teacher")
    out = model.train()(av_fold["train"].batch(torch.arange(4)))
    assert out.logits.shape == (4, 10) and out.embed.shape == (4, 32)
    assert out.feats["conv"].shape == (4, 6, 8, 8)
    assert not model.training and not any(p.requires_grad for p in model.parameters())  # frozen by default
    assert model.modalities == ["image"]


def test_bad_external_specs_are_named(av_fold):
    with pytest.raises(ConfigError, match="has no layer 'head'.*its layers: 0, 1, 2"):
        build_model(ModelSpec.model_validate({"external": {**EXTERNAL, "embed": "head"}}), av_fold.info)
    with pytest.raises(ConfigError, match="cannot be imported"):
        build_model(ModelSpec.model_validate({"external": {**EXTERNAL, "factory": "nowhere:model"}}), av_fold.info)
    with pytest.raises(ValidationError, match="either `encoders`"):
        ModelSpec.model_validate({"external": EXTERNAL, "encoders": {"image": {"name": "image_cnn"}}})


def test_external_teacher_end_to_end_trained_or_frozen(tiny_config, tmp_path):
    trained = load(tiny_config, ["teacher=null",  # (replace the file's teacher, not merge into it)
                                 "teacher={external: {factory: 'external_models:small_cnn', inputs: [image], "
                                 "embed: '5', trainable: true}, train: {epochs: 6}}",
                                 "distill.terms=[{loss: ce}, {loss: kd}, {loss: feature_mse}]"])
    run_dir = run(trained, tmp_path)
    models = json.loads((run_dir / "results.json").read_text())["models"]
    assert models["teacher"]["metrics"]["accuracy"]["mean"] > 0.5  # the pipeline trained it on the labels
    frozen = load(tiny_config, ["teacher=null",
                                "teacher={external: {factory: 'external_models:small_cnn', inputs: [image]}}"])
    torch.manual_seed(0)
    run_dir = run(frozen, tmp_path / "frozen")
    models = json.loads((run_dir / "results.json").read_text())["models"]
    assert not (run_dir / "models" / "teacher" / "fold0" / "metrics.jsonl").exists()  # never trained
    assert models["distilled"]["modalities"] == ["audio"]


def test_a_two_modality_student_gets_a_robustness_table(tiny_config, tmp_path):
    from crossdistill import report

    exp = load(tiny_config, ["student.encoders={audio: {name: spec_cnn, channels: [4, 8]}, "
                             "image: {name: image_cnn, channels: [4, 8]}}", "train.epochs=1"])
    run_dir = run(exp, tmp_path)
    models = json.loads((run_dir / "results.json").read_text())["models"]
    assert set(models["distilled"]["modality_ablation"]) == {"audio", "image"}
    text = report.build(run_dir)["markdown"].read_text()
    assert "| model | all present | without audio | without image |" in text
    row = next(line for line in text.splitlines() if line.startswith("| distilled |") and line.count("|") == 5)
    assert all(cell.strip().replace(".", "").isdigit() for cell in row.split("|")[2:5])
