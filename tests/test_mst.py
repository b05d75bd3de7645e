"""MST-Distill (``mst``): its stage-3 loss by hand, and its co-training and masking stages on real data."""

import math

import pytest
import torch

from crossdistill.config import ConfigError, ModelSpec, TermSpec
from crossdistill.data.batch import SplitData
from crossdistill.distill import Distiller, PrepareContext, resolve_terms
from crossdistill.losses import LOSSES
from crossdistill.losses.masking import ChannelMask, mask_points
from crossdistill.losses.mst import load_balancing, routed_kd
from crossdistill.models import build_model


def softmax(v, t=1.0):
    e = [math.exp(x / t) for x in v]
    return [x / sum(e) for x in e]


def kl(p, q):  # KL(p || q)
    return sum(a * math.log(a / b) for a, b in zip(p, q, strict=True))


@pytest.mark.golden("mst")
def test_mst_routed_kd_load_balancing_and_schedule_by_hand():
    student = [[1.0, 0.0], [0.0, 2.0]]
    teachers = [[[2.0, 0.0], [0.0, 0.0]], [[0.0, 1.0], [3.0, 0.0]]]  # (B=2, E=2, K=2)
    gate = [[0.7, 0.3], [0.4, 0.6]]  # sample 0 -> teacher 0, sample 1 -> teacher 1
    kd = sum(kl(softmax(teachers[i][pick], 4), softmax(student[i], 4)) for i, pick in ((0, 0), (1, 1))) / 2 * 16
    loss, picks = routed_kd(torch.tensor(student), torch.tensor(teachers), torch.tensor(gate), k=1)
    assert loss.item() == pytest.approx(kd, rel=1e-5) and picks.flatten().tolist() == [0, 1]
    two, _ = routed_kd(torch.tensor(student), torch.tensor(teachers), torch.tensor(gate), k=2)
    both = sum(kl(softmax(teachers[i][e], 4), softmax(student[i], 4)) for i in range(2) for e in range(2)) / 4 * 16
    assert two.item() == pytest.approx(both, rel=1e-5)
    mean = [0.55, 0.45]  # KL(uniform || mean) / E
    assert load_balancing(torch.tensor(gate)).item() == pytest.approx(kl([0.5, 0.5], mean) / 2, rel=1e-5)
    module = LOSSES.get("mst").build(torch.zeros(2, 2), torch.zeros(2, 2), {})
    assert module.weights_at(0.5) == (1.0, 1.0)  # during the first epoch
    assert module.weights_at(1.0) == pytest.approx((0.5, 0.9))  # after epoch 0
    assert module.weights_at(11.2) == pytest.approx((0.5, 0.81))  # after epochs 0 and 10
    assert module.weights_at(31.0) == pytest.approx((0.25, 0.9 ** 4))  # after 0, 30 / 0, 10, 20, 30


def test_channel_mask_gates_every_channel_of_vectors_and_maps():
    torch.manual_seed(0)
    vector, volume = torch.randn(3, 12), torch.randn(3, 6, 5, 4)
    gate = ChannelMask(vector)(vector)
    assert gate.shape == (3, 12) and bool(((gate > 0) & (gate < 1)).all())
    assert ChannelMask(volume).eval()(volume).shape == (3, 6, 1, 1)
    with pytest.raises(ConfigError, match="outputs"):
        ChannelMask(torch.randn(3, 2, 2))


def subset(split, n):
    rows = torch.arange(n)
    return SplitData({k: v[rows] for k, v in split.inputs.items()}, split.target[rows], split.index[rows])


def mst_setup(av_fold, small_specs, labeled, target=None, seed=0):
    """A student, the shared teacher and a distiller whose ``mst`` term has run its two stages (one epoch each)."""
    teacher_spec, student_spec = small_specs
    train, val = subset(av_fold["train"], 192), subset(av_fold["val"], 64)
    if target is not None:
        train = SplitData(train.inputs, target, train.index)
    torch.manual_seed(0)
    student, teacher = build_model(student_spec, av_fold.info), build_model(teacher_spec, av_fold.info)
    terms = resolve_terms([TermSpec.model_validate(t) for t in (
        {"loss": "ce"}, {"loss": "mst", "kwargs": {"cotrain_epochs": 1, "mask_epochs": 1}})])
    distiller = Distiller(student, teacher, terms, probe=train.batch(torch.arange(4)))
    teacher_before = {k: v.clone() for k, v in teacher.state_dict().items()}
    student_before = {k: v.clone() for k, v in student.state_dict().items()}

    def over(modalities):
        return build_model(teacher_spec.model_copy(update={"encoders": {
            m: teacher_spec.encoders[m] for m in modalities}}), av_fold.info)

    stream = torch.random.get_rng_state()
    distiller.prepare(PrepareContext(train, lambda: build_model(student_spec, av_fold.info), seed, student=student,
                                     val=val, labeled=labeled, new_teacher_over=over, lr=3e-3, batch_size=64))
    assert torch.equal(torch.random.get_rng_state(), stream)  # seeded stages leave the caller's stream alone
    return distiller, teacher, teacher_before, student_before, train


def test_mst_stages_train_copies_the_student_and_masks_but_never_the_shared_teacher(av_fold, small_specs):
    labeled = torch.zeros(192, dtype=torch.bool)
    labeled[::10] = True  # a 10% budget
    distiller, teacher, teacher_before, student_before, train = mst_setup(av_fold, small_specs, labeled)
    mst = distiller.loss_modules["mst"]
    assert sorted(mst.masks) == ["auxiliary|encoders/image/stages/1", "auxiliary|fusion",
                                 "teacher|encoders/image/stages/1", "teacher|fusion"]
    assert mst.teachers["auxiliary"].modalities == ["image"]  # the teacher's modality the audio student lacks
    assert all(torch.equal(v, teacher_before[k]) for k, v in teacher.state_dict().items())  # shared: untouched
    copy_state = mst.teachers["teacher"].state_dict()
    assert any(not torch.equal(copy_state[k], v) for k, v in teacher_before.items())  # co-trained copy moved
    assert any(not torch.equal(v, student_before[k]) for k, v in distiller.student.state_dict().items())
    assert not any(p.requires_grad for p in [*mst.teachers.parameters(), *mst.masks.parameters()])
    # stage 3: a finite loss whose gradient reaches the student and the router, nothing else of the module
    distiller.train()
    losses = distiller(train.batch(torch.arange(32), labeled[:32]))
    losses["loss"].backward()
    assert torch.isfinite(losses["mst"])
    assert all(p.grad is not None for p in mst.router.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in distiller.student.parameters())
    assert all(p.grad is None for p in [*mst.teachers.parameters(), *mst.masks.parameters()])
    assert mst.routing_share.sum().item() == pytest.approx(1.0) and len(mst.routing_share) == 4
    state_keys = distiller.training_state().state_dict()
    assert any(k.startswith("losses.mst.masks.teacher|fusion") for k in state_keys)  # checkpointed and resumed


def test_mst_co_training_reads_no_label_outside_the_students_budget(av_fold, small_specs):
    none = torch.zeros(192, dtype=torch.bool)
    shuffled = av_fold["train"].target[:192][torch.randperm(192, generator=torch.Generator().manual_seed(1))]
    a = mst_setup(av_fold, small_specs, none)[0]
    b = mst_setup(av_fold, small_specs, none, target=shuffled)[0]  # other labels, none of them allowed
    assert all(torch.equal(v, b.student.state_dict()[k]) for k, v in a.student.state_dict().items())
    c = mst_setup(av_fold, small_specs, None)[0]  # every label allowed: co-training reads them
    assert any(not torch.equal(v, c.student.state_dict()[k]) for k, v in a.student.state_dict().items())


def test_mst_refuses_what_it_cannot_mask(av_fold, small_specs):
    teacher = build_model(ModelSpec.model_validate({"encoders": {"image": {"name": "image_cnn", "channels": [8]}},
                                                    "embed_dim": 8}), av_fold.info)
    assert mask_points(teacher, 2) == ["fusion", "encoders.image.stages.0"]
    with pytest.raises(ConfigError, match="mask_layers=3 but the model offers 2"):
        mask_points(teacher, 3)
    with pytest.raises(ConfigError, match="mask_layers >= 1"):
        LOSSES.get("mst").build(torch.zeros(2, 2), torch.zeros(2, 2), {"mask_layers": 0})
    module = LOSSES.get("mst").build(torch.zeros(2, 2), torch.zeros(2, 2), {})
    with pytest.raises(RuntimeError, match="call Distiller.prepare"):
        module(torch.zeros(2, 2), None, None)


def test_mst_runs_through_the_pipeline_and_counts_its_stages(tiny_config, tmp_path, monkeypatch):
    """A whole run: the stages run before the student's epochs, their seconds land in fit.json's prepare_s, the
    run's teacher stays cached (mst masks its own copies), and the distilled student is evaluated."""
    import json

    from crossdistill.config import load
    from crossdistill.pipeline import run

    monkeypatch.setenv("CROSSDISTILL_CACHE", str(tmp_path / "cache"))
    exp = load(tiny_config, ["data.folds=[0]", "train.epochs=1", "teacher.train.epochs=1", "data.augment=null",
                             "distill.terms=[{loss: ce}, {loss: mst, kwargs: {cotrain_epochs: 1, mask_epochs: 1}}]"])
    run_dir = run(exp, tmp_path / "runs")
    fit = json.loads((run_dir / "models" / "distilled" / "fold0-seed0" / "fit.json").read_text())
    alone = json.loads((run_dir / "models" / "baseline" / "fold0-seed0" / "fit.json").read_text())
    assert fit["prepare_s"] > alone["prepare_s"] + 0.5  # two stages of epochs, counted as the method's cost
    results = json.loads((run_dir / "results.json").read_text())
    assert 0.0 <= results["models"]["distilled"]["metrics"]["accuracy"]["mean"] <= 1.0
    assert any((tmp_path / "cache" / "teacher_outputs").iterdir())  # the frozen teacher's outputs were cached
