"""Bad input stops before training, with a message naming the thing and the alternatives."""


import pytest
from typer.testing import CliRunner

from crossdistill import config, pipeline
from crossdistill.cli import app
from crossdistill.config import ConfigError

runner = CliRunner()


def run_cli(tiny_config, tmp_path, *sets):
    args = ["run", str(tiny_config), "--out", str(tmp_path / "runs")]
    for item in sets:
        args += ["--set", item]
    result = runner.invoke(app, args)
    return result.exit_code, result.output


@pytest.fixture
def no_training(monkeypatch):
    """Fail loudly if anything reaches the training loop."""
    import crossdistill.pipeline as p

    monkeypatch.setattr(p, "fit", lambda *a, **k: pytest.fail("training started despite bad input"))


@pytest.mark.parametrize("setting,message", [
    ("data.dataset=av-video", "unknown dataset 'av-video'; available: av-digits, av-mnist"),
    ("student.encoders.audio.name=wavenet",
     "unknown encoder 'wavenet'; available: efficientnet_lite0, identity, image_cnn, mlp, spec_cnn"),
    ("distill.terms=[{loss: ce}, {loss: kdd}]",
     "distill.terms.1 (loss 'kdd'): unknown loss 'kdd' (did you mean 'kd'?); available: affinity, at, c2kd, ce"),
    ("variants={v: {terms: [{loss: kd, kwargs: {temp: 2}}]}}",
     "variants.v.terms.0 (loss 'kd'): loss 'kd' has no option temp"),
    ("train.epoch=3", "unknown config key 'train.epoch'"),
    ("teacher.encoders={video: {name: image_cnn}}", "teacher reads modality 'video' but the dataset has: audio, image"),
    ("data.options.n_mel=40", "n_mel"),
    ("variants={extra: {teacher: fused}}", "variants.extra: unknown teacher 'fused'; available: teacher"),
    ("data.folds=9", "data.folds=9 but av-digits has 6 folds"),
    ("data.folds=[1, 7]", "data.folds=[1, 7] but av-digits has 6 folds"),
])
def test_bad_config_stops_before_training(tiny_config, tmp_path, no_training, setting, message):
    code, output = run_cli(tiny_config, tmp_path, setting)
    assert code == 2, output
    assert message in " ".join(output.split())


def fsdd_copy(data_root, tmp_path):
    """A data root whose FSDD folder links to the real wavs, so single files can be broken."""
    root = tmp_path / "data"
    (root / "fsdd" / "recordings").mkdir(parents=True)
    for wav in sorted((data_root / "fsdd" / "recordings").glob("*.wav")):
        (root / "fsdd" / "recordings" / wav.name).symlink_to(wav)
    return root


def test_unreadable_wav_is_named(tiny_config, tmp_path, data_root, no_training, monkeypatch):
    root = fsdd_copy(data_root, tmp_path)
    broken = root / "fsdd" / "recordings" / "3_theo_7.wav"
    broken.unlink()
    broken.write_bytes(b"RIFF....not a wave file")
    monkeypatch.setenv("CROSSDISTILL_CACHE", str(tmp_path / "cache"))
    code, output = run_cli(tiny_config, tmp_path, f"data.root={root}")
    assert code == 2 and "cannot read wav file" in output and "3_theo_7.wav" in output


def test_missing_data_says_how_to_get_it(tiny_config, tmp_path, no_training):
    code, output = run_cli(tiny_config, tmp_path, f"data.root={tmp_path / 'empty'}")
    assert code == 2
    assert "data set 'fsdd' not found" in output and "crossdistill fetch fsdd" in output


def test_teacher_checkpoint_that_does_not_fit(tiny_config, tmp_path, no_training):
    import torch
    from safetensors.torch import save_file

    bad = tmp_path / "teacher.safetensors"
    save_file({"encoders.image.stages.0.0.weight": torch.zeros(3, 1, 3, 3)}, str(bad))
    code, output = run_cli(tiny_config, tmp_path, f"teacher.checkpoint={bad}")
    assert code == 2, output
    text = " ".join(output.split())
    assert "does not fit the model" in text and "encoders.image.stages.0.0.weight: checkpoint (3, 1, 3, 3)" in text


def test_a_fitting_teacher_checkpoint_is_used_instead_of_training(tiny_config, tmp_path, av_fold):
    from crossdistill.checkpoint import save_weights
    from crossdistill.models import build_model

    exp = config.load(tiny_config)
    teacher = build_model(exp.teacher, av_fold.info)
    save_weights(teacher.state_dict(), tmp_path / "good.safetensors")
    exp = config.load(tiny_config, [f"teacher.checkpoint={tmp_path / 'good.safetensors'}"])
    loaded = pipeline.obtain_teacher(exp, "teacher", av_fold, tmp_path)
    assert all((a == b).all() for a, b in zip(loaded.state_dict().values(), teacher.state_dict().values(),
                                               strict=True))


def test_zero_labels_without_a_teacher_term_is_refused(tiny_config):
    exp = config.load(tiny_config, ["variants={alone: {student_labels: 0, terms: [{loss: ce}]}}"])
    from crossdistill.plans import student_plans

    with pytest.raises(ConfigError, match="'alone' has no labels .* nothing to learn from"):
        student_plans(exp)


def test_missing_wav_file_error_names_it(tmp_path):
    from crossdistill.data.audio import AudioFileError, read_wav

    with pytest.raises(AudioFileError, match="missing audio file: .*gone.wav"):
        read_wav(tmp_path / "gone.wav", 8000)
