from pathlib import Path

import pytest

from crossdistill import config
from crossdistill.config import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_load_applies_overrides_as_yaml_values(tiny_config):
    exp = config.load(tiny_config, ["train.lr=3e-4", "seeds=[4, 5]", "data.folds=2"])
    assert exp.train.lr == pytest.approx(3e-4)
    assert exp.seeds == [4, 5]
    assert exp.data.folds == 2
    assert exp.name == "tiny"  # from the file name
    assert exp.student.modalities == ["audio"]


def test_unknown_key_is_rejected_with_the_valid_keys(tiny_config):
    with pytest.raises(ConfigError, match=r"unknown config key .train.lrr. \(valid keys here: epochs, batch_size, lr,"):
        config.load(tiny_config, ["train.lrr=1"])
    with pytest.raises(ConfigError, match="unknown config key 'bogus'"):
        config.load(tiny_config, ["bogus=1"])


def test_bad_values_name_the_key(tiny_config):
    with pytest.raises(ConfigError, match="student_labels"):
        config.load(tiny_config, ["student_labels=1.5"])
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        config.load(tiny_config, ["train.lr"])


def test_check_validates_every_train_section_run_would(tiny_config):
    from typer.testing import CliRunner

    from crossdistill.cli import app

    for setting, message in [("teacher.train.patiance=15", "teacher.train: unknown config key 'patiance'"),
                             ("teacher.train.lr=abc", "teacher.train: lr: Input should be a valid number"),
                             ("variants={v: {train: {epochz: 2}}}", "variants.v.train: unknown config key 'epochz'")]:
        with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
            config.load(tiny_config, [setting])
        checked = CliRunner().invoke(app, ["check", str(tiny_config), "--set", setting])
        assert checked.exit_code == 2 and message in checked.output, checked.output


def test_set_follows_one_rule_merge_mappings_index_lists_null_removes(tiny_config):
    # a mapping merges into the mapping there: the file's other keys stay
    exp = config.load(tiny_config, ["student.encoders={audio: {channels: [8, 8]}}", "train={epochs: 9}"])
    assert exp.student.encoders["audio"].name == "spec_cnn" and exp.student.encoders["audio"].channels == [8, 8]
    assert exp.train.epochs == 9 and exp.train.batch_size == 128 and exp.train.progress is False  # file's kept
    # lists by index
    exp = config.load(tiny_config, ["distill.terms.1.kwargs.temperature=2", "seeds=[3]"])
    assert exp.distill.terms[1].kwargs == {"temperature": 2} and exp.distill.terms[0].loss == "ce"
    with pytest.raises(ConfigError, match=r"distill.terms.5 indexes a list of 2 item\(s\) \(0..1\)"):
        config.load(tiny_config, ["distill.terms.5.weight=2"])
    # null removes a key: the setting takes its default, an encoder is dropped
    exp = config.load(tiny_config, ["train.batch_size=null", "teacher.encoders.image=null",
                                    "teacher.encoders.audio={name: spec_cnn}"])
    assert exp.train.batch_size == config.TrainConfig().batch_size and exp.teacher.modalities == ["audio"]
    with pytest.raises(ConfigError, match=r"train.epochs is a value \(2\), not a section or a list"):
        config.load(tiny_config, ["train.epochs.x=1"])


def test_dump_round_trips(tiny_config, tmp_path):
    exp = config.load(tiny_config, ["train.epochs=3"])
    (tmp_path / "again.yaml").write_text(config.dump(exp))
    assert config.load(tmp_path / "again.yaml") == exp


@pytest.mark.parametrize("path", sorted((REPO / "configs").rglob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_config_validates(path):
    from crossdistill.plans import student_plans

    exp = config.load(path)
    assert student_plans(exp)  # loss names, variant teachers and label budgets resolve


def test_missing_config_file():
    with pytest.raises(ConfigError, match="config file not found"):
        config.load("nope.yaml")


def test_the_guides_complete_own_data_config_checks(data_root, tmp_path):
    """The guide's "complete config for your own data", on a manifest of real FSDD clips with their transcripts,
    passes `check` (data decoded, splits by named speakers, models built, losses resolved)."""
    import csv
    import re

    from crossdistill import pipeline

    guide = (REPO / "docs" / "guide.md").read_text()
    section = guide[guide.index("### A complete config for your own data"):]
    (tmp_path / "my_run.yaml").write_text(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    wavs = sorted((data_root / "fsdd" / "recordings").glob("*_[0-4].wav"))  # 5 takes per digit and speaker
    with (tmp_path / "manifest.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["wav", "text", "intent", "speaker"])
        for wav in wavs:
            digit, speaker, _ = wav.stem.split("_")
            writer.writerow([str(wav), f"the number {words[int(digit)]}", digit, speaker])
    exp = config.load(tmp_path / "my_run.yaml", [f"data.options.path={tmp_path / 'manifest.csv'}",
                                                 "data.options.val_groups=[nicolas]",
                                                 "data.options.test_groups=[theo, yweweler]"])
    plans, dataset = pipeline.check(exp)
    assert [p.name for p in plans] == ["baseline", "distilled"]
    fold = dataset.fold(0)
    assert set(fold["test"].groups) == {"theo", "yweweler"} and set(fold["val"].groups) == {"nicolas"}
