"""The losses that own modules: crd (and its queue), infonce, c2kd, mgkd; golden values computed here by hand."""

import logging
import math

import pytest
import torch
from scipy.stats import kendalltau

from crossdistill.config import ConfigError, TermSpec
from crossdistill.data.batch import Batch
from crossdistill.distill import Distiller, PrepareContext, resolve_terms
from crossdistill.losses import LOSSES
from crossdistill.losses.contrastive import FeatureQueue
from crossdistill.losses.crossmodal import kendall_tau, permutation_saliency
from crossdistill.losses.functional import non_target_kl
from crossdistill.models import build_model


def batch_of(target, labeled=None):
    target = torch.tensor(target)
    return Batch({}, target, torch.arange(len(target)), None if labeled is None else torch.tensor(labeled))


def identity_heads(module, dim):
    for head in (module.embed_student, module.embed_teacher):
        head.linear.weight.data = torch.eye(dim)
        head.linear.bias.data.zero_()


def unit(*xs):
    n = math.sqrt(sum(x * x for x in xs))
    return [x / n for x in xs]


def dot(a, b):
    return sum(x * y for x, y in zip(a, b, strict=True))


# ---- the queue -------------------------------------------------------------------------------------------------

def test_queue_keeps_its_size_and_first_in_first_out_order():
    queue = FeatureQueue(size=4, dim=2)
    assert queue.items.shape == (4, 2) and queue.size == 4
    for i in range(6):  # six single pushes into four slots: 0 and 1 fall out
        queue.push(torch.full((1, 2), float(i)))
    assert queue.ordered()[:, 0].tolist() == [2.0, 3.0, 4.0, 5.0]
    queue.push(torch.tensor([[6.0, 6.0], [7.0, 7.0], [8.0, 8.0]]))  # a batch wrapping around the end
    assert queue.ordered()[:, 0].tolist() == [5.0, 6.0, 7.0, 8.0]
    queue.push(torch.arange(10.0)[:, None].expand(10, 2))  # more than the queue holds: the newest four stay
    assert queue.ordered()[:, 0].tolist() == [6.0, 7.0, 8.0, 9.0]


def test_queue_holds_no_gradient_and_crd_leaks_none_into_it():
    queue = FeatureQueue(size=3, dim=2)
    x = torch.randn(2, 2, requires_grad=True)
    queue.push(x * 2)
    assert not queue.items.requires_grad and queue.items.grad_fn is None
    crd = LOSSES.get("crd").build(torch.randn(4, 5), torch.randn(4, 7), {"queue_size": 8, "feat_dim": 3}).train()
    student = torch.randn(4, 5, requires_grad=True)
    crd(student, torch.randn(4, 7), batch_of([0] * 4)).backward()
    for queue in (crd.teacher_queue, crd.student_queue):
        assert queue.items.grad is None and not queue.items.requires_grad
    assert student.grad is not None
    assert int(crd.teacher_queue.pointer) == 4  # this batch was queued


def test_crd_queues_only_while_training():
    crd = LOSSES.get("crd").build(torch.randn(4, 5), torch.randn(4, 5), {"queue_size": 8}).eval()
    before = crd.teacher_queue.items.clone()
    crd(torch.randn(4, 5), torch.randn(4, 5), batch_of([0] * 4))
    assert torch.equal(crd.teacher_queue.items, before)


@pytest.mark.golden('crd')
def test_crd_golden_value_by_hand():
    tau = 0.5
    crd = LOSSES.get("crd").build(torch.randn(2, 2), torch.randn(2, 2),
                                  {"feat_dim": 2, "queue_size": 2, "temperature": tau}).eval()
    identity_heads(crd, 2)
    s = [unit(1.0, 0.0), unit(1.0, 1.0)]
    t = [unit(1.0, 0.2), unit(0.0, 1.0)]
    teacher_negatives = [unit(-1.0, 0.0), unit(0.0, -1.0)]
    student_negatives = [unit(1.0, -1.0), unit(-1.0, 1.0)]
    crd.teacher_queue.items.copy_(torch.tensor(teacher_negatives))
    crd.student_queue.items.copy_(torch.tensor(student_negatives))

    def side(anchors, positives, negatives):
        pos = [math.exp(dot(a, p) / tau) for a, p in zip(anchors, positives, strict=True)]
        neg = [[math.exp(dot(a, n) / tau) for n in negatives] for a in anchors]
        # The authors' form: P = exp / (N * mean), noise K / N, for any data set size N (it cancels).
        n_data, k = 1000.0, len(negatives)
        z = n_data * (sum(pos) + sum(sum(row) for row in neg)) / (len(pos) * (1 + k))
        noise = k / n_data
        total = 0.0
        for p, row in zip(pos, neg, strict=True):
            total += -math.log((p / z) / (p / z + noise)) - sum(math.log(noise / (n / z + noise)) for n in row)
        return total / len(pos)

    expected = side(s, t, teacher_negatives) + side(t, s, student_negatives)
    value = crd(torch.tensor(s), torch.tensor(t), batch_of([0, 0]))
    assert value.item() == pytest.approx(expected, rel=1e-4)


@pytest.mark.golden('infonce')
def test_infonce_golden_value_by_hand():
    tau = 0.1
    infonce = LOSSES.get("infonce").build(torch.randn(2, 2), torch.randn(2, 2), {"feat_dim": 2, "temperature": tau})
    identity_heads(infonce, 2)
    s, t = [unit(1.0, 0.0), unit(0.6, 0.8)], [unit(0.8, 0.6), unit(0.0, 1.0)]
    sim = [[dot(a, b) / tau for b in t] for a in s]

    def ce(row, i):
        return -row[i] + math.log(sum(math.exp(v) for v in row))

    rows = sum(ce(sim[i], i) for i in range(2)) / 2
    cols = sum(ce([sim[j][i] for j in range(2)], i) for i in range(2)) / 2
    value = infonce(torch.tensor(s), torch.tensor(t), batch_of([0, 0]))
    assert value.item() == pytest.approx(0.5 * (rows + cols), rel=1e-5)


# ---- c2kd ------------------------------------------------------------------------------------------------------

def test_kendall_tau_matches_scipy():
    torch.manual_seed(1)
    a, b = torch.randn(7, 6), torch.randn(7, 6)
    expected = [kendalltau(a[i].numpy(), b[i].numpy())[0] for i in range(7)]
    assert kendall_tau(a, b).tolist() == pytest.approx(expected, abs=1e-6)
    assert kendall_tau(a, a).tolist() == pytest.approx([1.0] * 7)
    assert kendall_tau(a, -a).tolist() == pytest.approx([-1.0] * 7)


def test_non_target_kl_by_hand():
    student, teacher = torch.tensor([[5.0, 1.0, 0.0]]), torch.tensor([[0.0, 0.0, math.log(3.0)]])
    # target class 0 removed: student (1, 0) -> (e/(e+1), 1/(e+1)); teacher (0, log 3) -> (1/4, 3/4)
    q_s = [math.e / (math.e + 1), 1 / (math.e + 1)]
    q_t = [0.25, 0.75]
    expected = sum(q_t[i] * math.log(q_t[i] / q_s[i]) for i in range(2))
    assert non_target_kl(student, teacher, torch.tensor([0])).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.golden('c2kd')
def test_c2kd_golden_value_with_identity_proxies():
    probe = (torch.randn(2, 3), torch.randn(2, 3))  # (logits, embed)
    c2kd = LOSSES.get("c2kd").build(probe, probe, {})
    c2kd.proxy_student = c2kd.proxy_teacher = torch.nn.Identity()  # proxies = the embeddings, to compute by hand
    z_s, e_s = [[1.0, 0.0, 0.5], [0.0, 2.0, 1.0]], [[2.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
    z_t, e_t = [[3.0, 0.0, 1.0], [0.0, 1.0, 0.0]], [[1.0, 0.5, 0.0], [2.0, 1.0, 0.0]]
    target = [0, 1]  # sample 0: proxies rank (0 > 2 > 1) vs (0 > 1 > 2): tau = 1/3 > 0, kept;
    # sample 1: (1 > 0 = 2) vs (0 > 1 > 2): tau = 0 (pairs: 0-1 disagree, 0-2 tie, 1-2 agree), dropped

    def softmax(v):
        e = [math.exp(x) for x in v]
        return [x / sum(e) for x in e]

    def kl(student_logits, target_logits):
        p, q = softmax(student_logits), softmax(target_logits)
        return sum(q[i] * math.log(q[i] / p[i]) for i in range(len(p)))

    def ntkl(student_logits, target_logits, y):
        keep = [i for i in range(3) if i != y]
        return kl([student_logits[i] for i in keep], [target_logits[i] for i in keep])

    kept = [1.0, 0.0]
    ce_t = sum(-math.log(softmax(z_t[i])[target[i]]) for i in range(2)) / 2
    teacher_side = ce_t + sum(kl(e_t[i], z_t[i]) + kl(z_t[i], e_t[i]) + kept[i] * ntkl(e_t[i], e_s[i], target[i])
                              for i in range(2)) / 2
    student_side = sum(kl(e_s[i], z_s[i]) + kl(z_s[i], e_s[i]) + kept[i] * ntkl(e_s[i], e_t[i], target[i])
                       for i in range(2)) / 2
    value = c2kd((torch.tensor(z_s), torch.tensor(e_s)), (torch.tensor(z_t), torch.tensor(e_t)),
                 batch_of(target))
    assert value.item() == pytest.approx(teacher_side + student_side, rel=1e-5)
    assert c2kd.selected_share.item() == 0.5
    # the teacher's cross-entropy reads only the labels the student's budget allows: sample 1 outside it
    budgeted = c2kd((torch.tensor(z_s), torch.tensor(e_s)), (torch.tensor(z_t), torch.tensor(e_t)),
                    batch_of(target, labeled=[True, False]))
    ce_budget = -math.log(softmax(z_t[0])[target[0]])  # (mean over the one allowed row)
    assert budgeted.item() == pytest.approx(teacher_side - ce_t + ce_budget + student_side, rel=1e-5)


def terms(*specs):
    return resolve_terms([TermSpec.model_validate(s) for s in specs])


def test_c2kd_trains_its_own_copy_of_the_teacher_and_refuses_the_cache(pair, av_fold):
    student, teacher = pair
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    distiller = Distiller(student, teacher, terms({"loss": "ce"}, {"loss": "c2kd"}),
                          probe=av_fold["train"].batch(torch.arange(4)))
    assert distiller.joint == {"teacher"} and distiller.teacher is not teacher
    optimizer = torch.optim.SGD(list(distiller.trainable_parameters()), lr=0.1)
    losses = distiller.train()(av_fold["train"].batch(torch.arange(16)))
    losses["loss"].backward()
    optimizer.step()
    assert distiller.teacher.training  # jointly trained: BatchNorm and dropout in training mode
    assert all(p.grad is not None for p in distiller.teacher.parameters())
    assert any(not torch.equal(v, distiller.teacher.state_dict()[k]) for k, v in before.items())
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in before.items())  # the shared one is untouched
    with pytest.raises(ValueError, match="trained jointly"):
        distiller.use_teacher_source(lambda batch: None)
    assert set(distiller.training_state().state_dict()) >= {f"teachers.teacher.{k}" for k in before}


def test_pipeline_says_c2kd_switches_the_teacher_cache_off(pair, av_fold, caplog, tiny_config):
    from crossdistill.config import load
    from crossdistill.pipeline import distiller_for
    from crossdistill.plans import StudentPlan

    exp = load(tiny_config)
    plan = StudentPlan("c2kd_run", 0.1, terms({"loss": "ce"}, {"loss": "c2kd"}), "teacher", [0])
    with caplog.at_level(logging.INFO, logger="crossdistill"):
        distiller = distiller_for(exp, plan, av_fold, {"teacher": pair[1]}, torch.arange(4))
    assert "teacher cache off" in caplog.text and "c2kd" in caplog.text
    assert distiller.teacher_sources["teacher"].__name__ == "run"  # online, not a TeacherCache


# ---- mgkd ------------------------------------------------------------------------------------------------------

def test_permutation_saliency_ranks_channels_the_student_can_predict_first():
    torch.manual_seed(0)
    n = 400
    shared, private = torch.randn(n), torch.randn(n)
    embed = torch.stack([shared, private, 0.1 * torch.randn(n)], dim=1)  # (N, 3): general, specific, faint
    head = torch.nn.Linear(3, 2)
    head.weight.data = torch.tensor([[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]])
    head.bias.data.zero_()
    # The best a student seeing only `shared` can do: the teacher's logits with the private channel at its mean.
    mimic = head(torch.stack([shared, torch.zeros(n), torch.zeros(n)], dim=1)).detach()
    scores = permutation_saliency(mimic, embed, head, repeats=5)
    # Shuffling the private channel costs nothing the mimic had matched: it scores lowest, below even the faint
    # general channel, whose score is small only because its variance is.
    assert scores.tolist()[0] == 1.0 and scores[1] == 0.0 and 0.0 < scores[2] < 0.1


@pytest.mark.golden('mgkd')
def test_mgkd_freezes_the_least_general_channels_at_their_mean(pair, av_fold, small_specs):
    student, teacher = pair
    distiller = Distiller(student, teacher, terms({"loss": "mgkd", "kwargs": {"ratio": 0.5, "mimic_epochs": 2,
                                                                             "repeats": 2}}),
                          probe=av_fold["train"].batch(torch.arange(4)))
    distiller.prepare(PrepareContext(av_fold["train"], lambda: build_model(small_specs[1], av_fold.info), 0))
    mgkd = distiller.loss_modules["mgkd"]
    assert mgkd.general_share == 0.5 and mgkd.saliency.max() == 1.0
    assert mgkd.saliency[mgkd.general].min() >= mgkd.saliency[~mgkd.general].max()
    # By hand: the teacher's logits from its embedding with the frozen channels replaced by their means.
    batch = av_fold["train"].batch(torch.arange(8))
    teacher.eval()
    with torch.no_grad():
        out = teacher(batch)
        embed = out.embed.clone()
        embed[:, ~mgkd.general] = mgkd.means[~mgkd.general]
        expected_teacher = teacher.head(embed)
    student_logits = torch.randn(8, expected_teacher.shape[1])
    expected = LOSSES.get("kd").fn(student_logits, expected_teacher, batch, temperature=4.0)
    assert mgkd(student_logits, out.embed, batch).item() == pytest.approx(expected.item(), rel=1e-5)
    assert distiller.teacher_reads() == ["embed"]  # the embedding is cacheable (and all mgkd reads)


def test_mgkd_must_be_prepared_before_training(pair, av_fold):
    student, teacher = pair
    distiller = Distiller(student, teacher, terms({"loss": "mgkd"}), probe=av_fold["train"].batch(torch.arange(4)))
    with pytest.raises(RuntimeError, match="call Distiller.prepare"):
        distiller(av_fold["train"].batch(torch.arange(4)))


# ---- several teachers ------------------------------------------------------------------------------------------

def test_a_term_reads_the_weighted_mean_of_several_teachers(pair, av_fold, small_specs):
    student, image_teacher = pair
    audio_spec = small_specs[1].model_copy(update={"embed_dim": 12})
    audio_teacher = build_model(audio_spec, av_fold.info)
    ensemble = terms({"loss": "kd", "teacher": {"teacher": 1.0, "audio": 3.0}})
    assert ensemble[0].teachers == {"teacher": 0.25, "audio": 0.75}
    distiller = Distiller(student, {"teacher": image_teacher, "audio": audio_teacher}, ensemble).eval()
    batch = av_fold["train"].batch(torch.arange(8))
    with torch.no_grad():
        mixed = 0.25 * image_teacher.eval()(batch).logits + 0.75 * audio_teacher.eval()(batch).logits
        expected = LOSSES.get("kd").fn(student(batch).logits, mixed, batch)
        assert distiller(batch)["kd"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_per_teacher_terms_with_their_own_weights(pair, av_fold, small_specs):
    student, image_teacher = pair
    audio_teacher = build_model(small_specs[1], av_fold.info)
    per_teacher = terms({"loss": "kd", "weight": 0.7}, {"loss": "kd", "weight": 0.3, "teacher": "audio"})
    distiller = Distiller(student, {"teacher": image_teacher, "audio": audio_teacher}, per_teacher).eval()
    batch = av_fold["train"].batch(torch.arange(8))
    with torch.no_grad():
        losses = distiller(batch)
        kd = LOSSES.get("kd").fn
        s = student(batch).logits
        assert losses["kd"].item() == pytest.approx(kd(s, image_teacher(batch).logits, batch).item(), rel=1e-5)
        assert losses["kd_2"].item() == pytest.approx(kd(s, audio_teacher(batch).logits, batch).item(), rel=1e-5)
        assert losses["loss"].item() == pytest.approx(0.7 * losses["kd"].item() + 0.3 * losses["kd_2"].item(),
                                                      rel=1e-5)
    assert distiller.teacher_reads("audio") == ["logits"]


def test_bad_teacher_choices_are_named():
    with pytest.raises(ConfigError, match="positive numbers"):
        terms({"loss": "kd", "teacher": {"teacher": 0.0}})
    with pytest.raises(ConfigError, match="uses no teacher"):
        terms({"loss": "ce", "teacher": "teacher"})
    with pytest.raises(ConfigError, match="cannot take an ensemble"):
        terms({"loss": "mgkd", "teacher": {"a": 1.0, "b": 1.0}})
    with pytest.raises(ConfigError, match="need a teacher \\(audio\\)"):
        Distiller(torch.nn.Linear(2, 2), {"teacher": torch.nn.Linear(2, 2)}, terms({"loss": "kd",
                                                                                    "teacher": "audio"}))


def test_mgkd_leaves_the_global_random_stream_as_it_was(pair, av_fold, small_specs):
    """Preparing mgkd (its mimic's seeded initialisation and training) must not reseed or advance the caller's
    random stream: the next draw is the one it would have been without it."""
    student, teacher = pair
    distiller = Distiller(student, teacher, terms({"loss": "mgkd", "kwargs": {"mimic_epochs": 1, "repeats": 1}}),
                          probe=av_fold["train"].batch(torch.arange(8)))
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    distiller.prepare(PrepareContext(av_fold["train"], lambda: build_model(small_specs[1], av_fold.info), 0))
    assert torch.equal(torch.rand(3), expected)


# ---- ofa ----------------------------------------------------------------------------------------------------------
@pytest.mark.golden("ofa")
def test_ofa_golden_value_by_hand_and_its_branches():
    z_s, z_t = [[0.0, math.log(3.0)], [1.0, 1.0]], [[0.0, 0.0], [math.log(4.0), 0.0]]
    p_s, p_t = [[0.25, 0.75], [0.5, 0.5]], [[0.5, 0.5], [0.8, 0.2]]
    target = [0, 0]

    def by_hand(eps):  # target class: (1 + p_t)^eps - 1, the others: p_t^eps, each times -log p_s
        return sum(-((1 + p_t[i][k]) ** eps - 1 if k == target[i] else p_t[i][k] ** eps) * math.log(p_s[i][k])
                   for i in range(2) for k in range(2)) / 2

    assert z_s[0][1] == pytest.approx(math.log(p_s[0][1] / p_s[0][0]))
    ofa = LOSSES.get("ofa")
    for eps in (1.0, 1.5):
        module = ofa.build((torch.tensor(z_s),), torch.tensor(z_t), {"eps": eps})  # no branch: the logits alone
        assert module((torch.tensor(z_s),), torch.tensor(z_t), batch_of(target)).item() == pytest.approx(
            by_hand(eps), rel=1e-6)
    # an unlabelled row takes the teacher's class (both 0 here), so the value is the same
    module = ofa.build((torch.tensor(z_s),), torch.tensor(z_t), {})
    assert module((torch.tensor(z_s),), torch.tensor(z_t), batch_of(target, [True, False])).item() == pytest.approx(
        by_hand(1.0), rel=1e-6)
    # a branch adds the same loss on its own logits: an identity branch on the logits doubles the value
    module = ofa.build((torch.tensor(z_s), torch.tensor(z_s)), torch.tensor(z_t), {})
    module.branches[0] = torch.nn.Identity()
    assert module((torch.tensor(z_s), torch.tensor(z_s)), torch.tensor(z_t), batch_of(target)).item() == (
        pytest.approx(2 * by_hand(1.0), rel=1e-6))


def test_ofa_branches_on_stage_maps_train_with_the_student(pair, av_fold, small_specs):
    """reads: [logits, feats...] puts a branch on each named map (any modality, any size); the teacher side stays
    its logits; the branches are the loss module's, trained with the student and saved in its training state."""
    student, teacher = pair
    terms_ = terms({"loss": "ce"}, {"loss": "ofa", "reads": ["logits", "feats.audio.stage0", "feats.audio.stage1",
                                                              "embed"]})
    assert terms_[1].teacher_reads == "logits"
    distiller = Distiller(student, teacher, terms_, probe=av_fold["train"].batch(torch.arange(8)))
    branches = distiller.loss_modules["ofa"].branches
    assert len(branches) == 3 and isinstance(branches[0][-1], torch.nn.Linear)
    assert {id(p) for p in branches.parameters()} <= {id(p) for p in distiller.trainable_parameters()}
    assert "losses.ofa.branches.0.0.layers.0.weight" in distiller.training_state().state_dict()
    before = [p.detach().clone() for p in branches.parameters()]
    optimizer = torch.optim.SGD(list(distiller.trainable_parameters()), lr=0.1)
    losses = distiller.train()(av_fold["train"].batch(torch.arange(16)))
    losses["loss"].backward()
    optimizer.step()
    after = list(branches.parameters())
    assert torch.isfinite(losses["ofa"]) and any(not torch.equal(b, p) for b, p in zip(before, after, strict=True))
    with pytest.raises(ConfigError, match="reads a list of outputs"):
        terms({"loss": "ofa", "reads": "embed"})
