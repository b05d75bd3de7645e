import pytest
import torch

from crossdistill.config import ConfigError, TermSpec
from crossdistill.distill import Distiller, PrepareContext, resolve_terms
from crossdistill.losses import LOSSES
from crossdistill.models import build_model
from crossdistill.tasks import build_task

CLASSIFICATION = build_task("classification")


def terms(*specs):
    return resolve_terms([TermSpec.model_validate(s) for s in specs])


def test_returns_named_losses_and_their_weighted_sum(pair, av_fold):
    student, teacher = pair
    distiller = Distiller(student, teacher, terms({"loss": "ce", "weight": 0.5}, {"loss": "kd", "weight": 2.0},
                                                  {"loss": "kd", "weight": 1.0, "kwargs": {"temperature": 1.0}}))
    batch = av_fold["train"].batch(torch.arange(16))
    losses = distiller(batch)
    assert set(losses) == {"loss", "ce", "kd", "kd_2"}
    expected = 0.5 * losses["ce"] + 2.0 * losses["kd"] + losses["kd_2"]
    assert losses["loss"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_adapter_is_sized_by_probing_and_trained_with_the_student(pair, av_fold):
    student, teacher = pair
    probe = av_fold["train"].batch(torch.arange(4))
    distiller = Distiller(student, teacher, terms({"loss": "feature_mse"}), probe=probe)
    adapter = distiller.adapters["feature_mse"]
    assert (adapter.in_features, adapter.out_features) == (8, 16)  # student embed -> teacher embed
    trainable = {id(p) for p in distiller.trainable_parameters()}
    assert all(id(p) in trainable for p in adapter.parameters())
    assert not any(id(p) in trainable for p in teacher.parameters())
    distiller(av_fold["train"].batch(torch.arange(8)))["loss"].backward()
    assert adapter.weight.grad is not None
    assert all(p.grad is None for p in teacher.parameters())


def test_feature_map_adapter_between_conv_stages_of_two_modalities(pair, av_fold):
    student, teacher = pair
    probe = av_fold["train"].batch(torch.arange(4))
    maps = terms({"loss": "feature_mse", "reads": "feats.audio.stage1", "teacher_reads": "feats.image.stage1"})
    distiller = Distiller(student, teacher, maps, probe=probe)
    adapter = distiller.adapters["feature_mse"]
    assert (adapter.conv.in_channels, adapter.conv.out_channels) == (8, 16)  # student map -> teacher map
    assert distiller(probe)["feature_mse"].isfinite()
    assert distiller.teacher_reads() == ["feats.image.stage1"]  # what the terms read, nothing more


def test_reading_an_output_a_model_lacks_fails_when_built(pair, av_fold):
    student, teacher = pair
    probe = av_fold["train"].batch(torch.arange(4))
    with pytest.raises(KeyError, match="no output 'feats.audio.stage1'; available: logits, embed, feats.image"):
        Distiller(student, teacher, terms({"loss": "feature_mse", "reads": "feats.audio.stage1"}), probe=probe)


def test_teacher_stays_frozen_in_eval_mode(pair):
    student, teacher = pair
    distiller = Distiller(student, teacher, terms({"loss": "kd"})).train()
    assert distiller.student.training and not distiller.teacher.training
    assert not any(p.requires_grad for p in teacher.parameters())


def test_terms_needing_a_teacher_without_one_are_refused(pair):
    with pytest.raises(ConfigError, match="need a teacher"):
        Distiller(pair[0], None, terms({"loss": "kd"}))


def test_unknown_loss_and_loss_option_are_named():
    with pytest.raises(ConfigError, match=r"distill.terms.0 \(loss 'kdd'\): unknown loss .kdd. "
                       r"\(did you mean 'kd'\?\); available: affinity, at, c2kd, ce, clip, clip_crd"):
        terms({"loss": "kdd"})
    with pytest.raises(ConfigError, match="loss 'kd' has no option temp; its options: temperature"):
        terms({"loss": "kd", "kwargs": {"temp": 2}})


@pytest.mark.parametrize("name", [n for n in LOSSES.names() if LOSSES.get(n).needs_teacher
                                  and LOSSES.get(n).needs <= CLASSIFICATION.provides])  # (retrieval: test_retrieval)
def test_every_distillation_loss_trains_an_audio_student_from_an_image_teacher(pair, av_fold, small_specs, name):
    student, teacher = pair
    probe = av_fold["train"].batch(torch.arange(4))
    maps = {"reads": "feats.audio.stage1", "teacher_reads": "feats.image.stage1"}
    spec = {"loss": name, **(maps if LOSSES.get(name).reads == "feats" else {})}
    if name == "mst":  # its stages have their own test (test_mst.py): here they build, without epochs
        spec["kwargs"] = {"cotrain_epochs": 0, "mask_epochs": 0}
    distiller = Distiller(student, teacher, terms({"loss": "ce"}, spec), probe=probe)
    distiller.prepare(PrepareContext(av_fold["train"], lambda: build_model(small_specs[1], av_fold.info), 0,
                                     student=student, new_teacher_over=lambda _: build_model(small_specs[0],
                                                                                             av_fold.info)))
    losses = distiller.train()(av_fold["train"].batch(torch.arange(16)))
    losses["loss"].backward()
    assert torch.isfinite(losses[name])
    assert all(p.grad is not None for p in distiller.student.parameters() if p.requires_grad)


def test_a_feature_map_loss_without_a_named_map_is_refused():
    with pytest.raises(ConfigError, match="loss 'at' reads an intermediate feature map: set reads"):
        terms({"loss": "at"})


def test_a_term_weight_warms_up_linearly_over_its_epochs(pair, av_fold):
    student, teacher = pair
    distiller = Distiller(student, teacher, terms({"loss": "ce"}, {"loss": "kd", "weight": 2.0, "warmup_epochs": 4}))
    batch = av_fold["train"].batch(torch.arange(16))
    distiller.eval()
    for epoch, factor in [(0.0, 0.0), (1.0, 0.25), (4.0, 1.0), (9.0, 1.0)]:
        distiller.epoch = epoch
        losses = distiller(batch)
        expected = losses["ce"] + 2.0 * factor * losses["kd"]
        assert losses["loss"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_the_trained_side_holds_what_training_changes_and_no_frozen_teacher(pair, av_fold):
    student, teacher = pair
    distiller = Distiller(student, teacher, terms({"loss": "ce"}, {"loss": "feature_mse", "reads": "embed"}),
                          probe=av_fold["train"].batch(torch.arange(4)))
    side = distiller.trained_side()
    assert {id(p) for p in side.parameters()} == {id(p) for p in distiller.trainable_parameters()}
    assert not {id(p) for p in teacher.parameters()} & {id(p) for p in side.parameters()}
    batch = av_fold["train"].batch(torch.arange(4))
    torch.manual_seed(0)
    through_side = side.eval()(batch)["loss"]
    torch.manual_seed(0)
    assert torch.equal(through_side, distiller.eval()(batch)["loss"])
