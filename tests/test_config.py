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
