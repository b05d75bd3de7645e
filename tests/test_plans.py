from crossdistill import config
from crossdistill.plans import student_plans

VARIANTS = ("variants={none: {student_labels: 0, terms: [{loss: kd}], seeds: [0], train: {select_on: teacher}}, "
            "alone_all: {student_labels: 1.0, terms: [{loss: ce}], seeds: [0]}, "
            "slow: {student_labels: 0.5, full_only: true}}")


def test_baseline_distilled_and_variants(tiny_config):
    exp = config.load(tiny_config, ["seeds=[0, 1, 2]", VARIANTS])
    plans = {p.name: p for p in student_plans(exp)}
    assert list(plans) == ["baseline", "distilled", "none", "alone_all"]
    assert plans["baseline"].teacher is None and [t.name for t in plans["baseline"].terms] == ["ce"]
    assert plans["baseline"].labels == plans["distilled"].labels == 0.1
    assert plans["distilled"].teacher == "teacher" and plans["distilled"].seeds == [0, 1, 2]
    assert plans["none"].labels == 0.0 and plans["none"].select_on == "teacher" and plans["none"].seeds == [0]
    assert plans["alone_all"].teacher is None  # no distillation term: trained alone
    full = {p.name: p for p in student_plans(exp, full=True)}
    assert full["none"].seeds == [0, 1, 2]  # --full: every row on every seed ...
    assert "slow" in full and "slow" not in plans  # ... and the rows kept for --full


def test_no_baseline_when_the_budget_is_zero(tiny_config):
    exp = config.load(tiny_config, ["student_labels=0", "distill.terms=[{loss: kd}]"])
    assert [p.name for p in student_plans(exp)] == ["distilled"]


def test_variant_names_cannot_shadow_the_headline_models(tiny_config):
    import pytest

    from crossdistill.config import ConfigError

    with pytest.raises(ConfigError, match="variant name 'baseline' is reserved"):
        config.load(tiny_config, ["variants={baseline: {student_labels: 0.5}}"])


def test_terms_naming_teachers_pull_them_into_the_plan(tiny_config):
    import pytest

    from crossdistill.config import ConfigError

    two = ("extra_teachers={audio_teacher: {encoders: {audio: {name: spec_cnn, channels: [4, 8]}}}}")
    ensemble = "distill.terms=[{loss: ce}, {loss: kd, teacher: {teacher: 0.5, audio_teacher: 0.5}}]"
    plans = {p.name: p for p in student_plans(config.load(tiny_config, [two, ensemble]))}
    assert plans["distilled"].teacher_names == ["audio_teacher", "teacher"]
    only_audio = "distill.terms=[{loss: kd, teacher: audio_teacher}]"
    plans = {p.name: p for p in student_plans(config.load(tiny_config, [two, only_audio]))}
    assert plans["distilled"].teacher_names == ["audio_teacher"]
    with pytest.raises(ConfigError, match="unknown teacher 'video'; available: teacher, audio_teacher"):
        student_plans(config.load(tiny_config, [two, "distill.terms=[{loss: kd, teacher: video}]"]))


def test_full_seeds_give_the_full_run_its_own_seeds(tiny_config):
    exp = config.load(tiny_config, ["seeds=[0]", "full_seeds=[0, 1]", VARIANTS])
    quick = {p.name: p.seeds for p in student_plans(exp)}
    full = {p.name: p.seeds for p in student_plans(exp, full=True)}
    assert quick["baseline"] == quick["distilled"] == [0] and quick["none"] == [0]
    assert all(seeds == [0, 1] for seeds in full.values()) and "slow" in full
