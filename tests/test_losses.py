import math

import pytest
import torch
import torch.nn.functional as F

from crossdistill.config import ConfigError
from crossdistill.data.batch import Batch
from crossdistill.losses import LOSSES
from crossdistill.losses.base import CLASSES
from crossdistill.losses.mst import Router
from crossdistill.models.dual import TOWER_OUTPUTS


def batch_of(target, labeled=None):
    target = torch.tensor(target)
    return Batch({}, target, torch.arange(len(target)), None if labeled is None else torch.tensor(labeled))


@pytest.mark.golden('ce')
def test_ce_uses_only_labelled_rows():
    logits = torch.tensor([[2.0, 0.0], [0.0, 0.0], [5.0, -5.0]])
    batch = batch_of([0, 1, 1], [True, True, False])
    expected = (-math.log(math.e**2 / (math.e**2 + 1)) + math.log(2)) / 2  # rows 0 and 1 only
    assert LOSSES.get("ce").fn(logits, None, batch).item() == pytest.approx(expected, rel=1e-6)


def test_ce_without_labelled_rows_is_zero_with_gradient():
    logits = torch.randn(3, 4, requires_grad=True)
    value = LOSSES.get("ce").fn(logits, None, batch_of([0, 1, 2], [False, False, False]))
    value.backward()
    assert value.item() == 0.0 and logits.grad is not None


@pytest.mark.golden('kd')
def test_kd_matches_hand_computed_kl_times_t_squared():
    student, teacher, t = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]]), 2.0
    p_t = torch.softmax(teacher / t, 1)[0]
    p_s = torch.softmax(student / t, 1)[0]
    kl = sum(p_t[j] * math.log(p_t[j] / p_s[j]) for j in range(2))
    value = LOSSES.get("kd").fn(student, teacher, batch_of([0]), temperature=t)
    assert value.item() == pytest.approx(float(kl) * t * t, rel=1e-5)


@pytest.mark.golden('soft_mse')
def test_soft_mse_matches_hand_computation():
    student, teacher = torch.tensor([[0.0, 0.0], [0.0, 0.0]]), torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0]])
    # sample 1: k^T = (0.75, 0.25), k^S = (0.5, 0.5) -> 0.0625 + 0.0625; sample 2: 0
    value = LOSSES.get("soft_mse").fn(student, teacher, batch_of([0, 0]))
    assert value.item() == pytest.approx(0.125 / 2, rel=1e-6)


@pytest.mark.golden('feature_mse')
def test_feature_mse_is_half_squared_norm_averaged_over_samples():
    student, teacher = torch.tensor([[1.0, 2.0], [0.0, 0.0]]), torch.tensor([[0.0, 0.0], [0.0, 3.0]])
    value = LOSSES.get("feature_mse").fn(student, teacher, batch_of([0, 0]))
    assert value.item() == pytest.approx((0.5 * 5 + 0.5 * 9) / 2)


# Losses whose minimum at student == teacher is not 0, and why (the parametrised test checks all others).
NO_ZERO_MINIMUM = {
    "crd": "NCE against random negatives: bounded below by the noise term, not 0",
    "infonce": "in-batch softmax: at best log-odds of the positive, not 0",
    "c2kd": "includes the jointly trained teacher's cross-entropy",
    "clip_icl": "InfoNCE of the student against the teacher: at best log-odds of the positive",
    "affinity": "cross-entropy to the teacher's affinities: their entropy at best",
    "mst": "includes its router's load-balancing term, 0 only for an even routing",
    "ofa": "cross-entropy with the teacher's distribution (its entropy at best), and its branches start untrained",
}


def as_reads(reads, x):
    """One (B, 5) tensor as what a loss reading several outputs takes: (logits, embed), or a dual encoder's towers
    (2-d query and gallery, then the log scale)."""
    if reads == TOWER_OUTPUTS:
        return x[:, :2], x[:, 2:4], x[:, 4:]
    return tuple(x for _ in reads)


def call(name, student, teacher, batch):
    """Evaluate a registered loss on raw tensors: functions directly, modules built from the same tensors."""
    loss = LOSSES.get(name)
    if name == "soft_target":  # its target is a distribution column of the batch
        batch = Batch({"q": torch.softmax(torch.randn(len(batch), student.shape[1]), 1)}, batch.target, batch.index)
        return loss.fn(student, None, batch, source="q")
    if isinstance(loss.reads, tuple):
        student = as_reads(loss.reads, student)
        teacher = teacher if isinstance(loss.teacher_reads, str) else as_reads(loss.reads, teacher)
    if loss.module is None:
        return loss.fn(student, teacher if loss.needs_teacher else None, batch)
    module = loss.build(student, teacher, {})
    if name == "mgkd":  # its head is the teacher's; here the teacher's "embedding" is its logits
        module.head, module.prepared = torch.nn.Identity(), True
    if name == "mst":  # two specialised teachers, both giving the teacher's logits (its stages need real models)
        module.masks = torch.nn.ModuleDict({"a|x": torch.nn.Identity(), "b|x": torch.nn.Identity()})
        module._specialised = lambda key, batch: teacher
        module.router, module.prepared = Router(student.shape[1], 2), torch.tensor(True)
    return module(student, teacher, batch)


@pytest.mark.parametrize("name", LOSSES.names())
def test_every_loss_is_finite_differentiable_and_minimal_at_the_teacher(name):
    loss = LOSSES.get(name)
    torch.manual_seed(0)
    shape = (6, 4, 5, 5) if loss.reads == "feats" else (6, 5)  # feature-map losses get (B, C, H, W)
    student = torch.randn(*shape, requires_grad=True)
    teacher = torch.randn(*shape)
    batch = batch_of([0, 1, 2, 3, 4, 0])
    value = call(name, student, teacher, batch)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(student.grad).all() and student.grad.abs().sum() > 0
    assert loss.summary and loss.headline, f"loss {name} needs a docstring"
    assert loss.paper or name == "ce", f"loss {name}: cite its paper in the docstring's first paragraph"
    if loss.needs_teacher and name not in NO_ZERO_MINIMUM:  # minimum 0 when the student equals the teacher
        assert call(name, teacher.clone(), teacher, batch).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.golden('mlld')
def test_mlld_is_instance_batch_and_class_alignment_summed_over_temperatures_by_hand():
    z_s, z_t = [[1.0, 0.0, -1.0], [0.0, 0.5, 0.0]], [[2.0, 0.0, 0.0], [0.0, 0.0, 1.0]]

    def softmax(v, t):
        e = [math.exp(x / t) for x in v]
        return [x / sum(e) for x in e]

    def level_sum(t):
        p_s, p_t = [softmax(r, t) for r in z_s], [softmax(r, t) for r in z_t]
        kl = sum(p_t[i][k] * math.log(p_t[i][k] / p_s[i][k]) for i in range(2) for k in range(3)) / 2 * t * t
        gram = sum((sum(p_t[i][k] * p_t[j][k] for k in range(3)) - sum(p_s[i][k] * p_s[j][k] for k in range(3))) ** 2
                   for i in range(2) for j in range(2)) / 2  # / B
        cls = sum((sum(p_t[i][a] * p_t[i][b] for i in range(2)) - sum(p_s[i][a] * p_s[i][b] for i in range(2))) ** 2
                  for a in range(3) for b in range(3)) / 3  # / K
        return kl + gram + cls

    mlld = LOSSES.get("mlld").fn
    value = mlld(torch.tensor(z_s), torch.tensor(z_t), batch_of([0, 2]))
    assert value.item() == pytest.approx(sum(level_sum(t) for t in (2, 3, 4, 5, 6)), rel=1e-5)
    one = mlld(torch.tensor(z_s), torch.tensor(z_t), batch_of([0, 2]), temperatures=[4.0])
    assert one.item() == pytest.approx(level_sum(4.0), rel=1e-5)
    assert one.item() > LOSSES.get("kd").fn(torch.tensor(z_s), torch.tensor(z_t), temperature=4.0).item()

    def class_level(t, per):
        p_s, p_t = [softmax(r, t) for r in z_s], [softmax(r, t) for r in z_t]
        return sum(((sum(p_t[i][a] * p_t[i][b] for i in range(2)) - sum(p_s[i][a] * p_s[i][b] for i in range(2)))
                    / per) ** 2 for a in range(3) for b in range(3)) / 3

    samples = mlld(torch.tensor(z_s), torch.tensor(z_t), batch_of([0, 2]), temperatures=[4.0], class_norm="samples")
    assert samples.item() == pytest.approx(level_sum(4.0) - class_level(4.0, 1) + class_level(4.0, 2), rel=1e-5)
    with pytest.raises(ConfigError, match="class_norm"):
        mlld(torch.tensor(z_s), torch.tensor(z_t), class_norm="mean")


@pytest.mark.golden('dkd')
def test_dkd_matches_its_two_hand_computed_parts():
    student, teacher, t = torch.tensor([[2.0, 1.0, 0.0]]), torch.tensor([[1.0, 2.0, 0.5]]), 2.0
    batch = batch_of([0])  # target class 0
    p_s, p_t = torch.softmax(student / t, 1)[0], torch.softmax(teacher / t, 1)[0]
    b_s, b_t = [p_s[0], 1 - p_s[0]], [p_t[0], 1 - p_t[0]]
    tckd = sum(b_t[i] * math.log(b_t[i] / b_s[i]) for i in range(2))
    q_s, q_t = p_s[1:] / p_s[1:].sum(), p_t[1:] / p_t[1:].sum()  # distributions over the non-target classes
    nckd = sum(q_t[i] * math.log(q_t[i] / q_s[i]) for i in range(2))
    value = LOSSES.get("dkd").fn(student, teacher, batch, alpha=1.0, beta=8.0, temperature=t)
    assert value.item() == pytest.approx(float(tckd + 8.0 * nckd) * t * t, rel=1e-4)


def test_dkd_uses_the_teacher_class_for_unlabelled_samples():
    student, teacher = torch.randn(4, 5), torch.randn(4, 5)
    unlabeled = batch_of([0, 1, 2, 3], [False] * 4)
    by_teacher = batch_of(teacher.argmax(1).tolist())
    dkd = LOSSES.get("dkd").fn
    assert dkd(student, teacher, unlabeled).item() == pytest.approx(dkd(student, teacher, by_teacher).item())


@pytest.mark.golden('dist')
def test_dist_matches_numpy_pearson():
    import numpy as np

    torch.manual_seed(3)
    student, teacher = torch.randn(5, 4), torch.randn(5, 4)
    y_s, y_t = torch.softmax(student, 1).numpy(), torch.softmax(teacher, 1).numpy()
    inter = 1 - np.mean([np.corrcoef(y_s[i], y_t[i])[0, 1] for i in range(5)])
    intra = 1 - np.mean([np.corrcoef(y_s[:, j], y_t[:, j])[0, 1] for j in range(4)])
    value = LOSSES.get("dist").fn(student, teacher, batch_of([0] * 5))
    assert value.item() == pytest.approx(inter + intra, rel=1e-4)


def test_ls_kd_ignores_logit_shift_and_scale():
    torch.manual_seed(4)
    student, teacher = torch.randn(6, 5), torch.randn(6, 5)
    ls_kd = LOSSES.get("ls_kd").fn
    batch = batch_of([0] * 6)
    assert ls_kd(3.0 * student + 7.0, teacher, batch).item() == pytest.approx(ls_kd(student, teacher, batch).item(),
                                                                              rel=1e-4)


@pytest.mark.parametrize("name", ["sp", "pkt", "rkd"])
def test_relational_losses_compare_batches_of_different_widths_and_ignore_scale(name):
    torch.manual_seed(5)
    student, teacher = torch.randn(8, 6), torch.randn(8, 32)  # e.g. an audio and an image embedding
    loss = LOSSES.get(name).fn
    batch = batch_of([0] * 8)
    assert loss(student, teacher, batch).item() > 0
    assert loss(4.0 * student, teacher, batch).item() == pytest.approx(loss(student, teacher, batch).item(), rel=1e-4)


@pytest.mark.golden('sp')
def test_sp_by_hand_for_two_samples():
    student = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # Gram = I -> rows already unit
    teacher = torch.tensor([[1.0, 0.0], [1.0, 0.0]])  # Gram = all ones -> rows (1/sqrt2, 1/sqrt2)
    r = 1 / math.sqrt(2)
    expected = ((1 - r) ** 2 * 2 + r**2 * 2) / 4
    assert LOSSES.get("sp").fn(student, teacher, batch_of([0, 0])).item() == pytest.approx(expected, rel=1e-6)


def test_rkd_ignores_translation_of_the_student():
    torch.manual_seed(6)
    student, teacher = torch.randn(6, 4), torch.randn(6, 10)
    rkd = LOSSES.get("rkd").fn
    batch = batch_of([0] * 6)
    assert rkd(student + 5.0, teacher, batch).item() == pytest.approx(rkd(student, teacher, batch).item(), rel=1e-3)


@pytest.mark.golden('cosine')
def test_cosine_is_one_minus_cosine_and_ignores_the_norm():
    student, teacher = torch.tensor([[1.0, 0.0], [1.0, 1.0]]), torch.tensor([[0.0, 2.0], [3.0, 3.0]])
    cosine = LOSSES.get("cosine").fn
    assert cosine(student, teacher, batch_of([0, 0])).item() == pytest.approx((1.0 + 0.0) / 2)
    assert cosine(5 * student, teacher, batch_of([0, 0])).item() == pytest.approx(0.5)


@pytest.mark.golden('at')
def test_attention_transfer_by_hand_and_across_map_sizes():
    at = LOSSES.get("at").fn
    student = torch.zeros(1, 2, 2, 2)
    student[0, :, 0, 0] = 1.0  # attention all on the top-left cell
    teacher = torch.ones(1, 3, 2, 2)  # uniform attention: 1/2 per cell after L2 normalisation
    expected = ((1 - 0.5) ** 2 + 3 * 0.5**2) / 4
    assert at(student, teacher, batch_of([0])).item() == pytest.approx(expected)
    assert at(torch.randn(2, 4, 8, 16), torch.randn(2, 6, 2, 4), batch_of([0, 0])).isfinite()
    with pytest.raises(Exception, match="needs spatial feature maps"):
        at(torch.randn(2, 4), torch.randn(2, 4), batch_of([0, 0]))


def kl(p, q):
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))


def softmax(v, t=1.0):
    e = [math.exp(x / t) for x in v]
    return [x / sum(e) for x in e]


@pytest.mark.golden('ls_kd')
def test_ls_kd_by_hand():
    student, teacher, t = [1.0, 2.0, 4.0], [0.0, 3.0, 3.0], 2.0

    def zscore(v):
        mean = sum(v) / len(v)
        std = math.sqrt(sum((x - mean) ** 2 for x in v) / (len(v) - 1))  # torch.std: unbiased
        return [(x - mean) / std for x in v]

    expected = t * t * kl(softmax(zscore(teacher), t), softmax(zscore(student), t))
    value = LOSSES.get("ls_kd").fn(torch.tensor([student]), torch.tensor([teacher]), batch_of([0]), temperature=t)
    assert value.item() == pytest.approx(expected, rel=1e-4)


@pytest.mark.golden('pkt')
def test_pkt_by_hand_for_two_samples():
    student = [[1.0, 0.0], [0.0, 1.0]]  # cosines: 1 on the diagonal, 0 off it -> kernel (1, 0.5)
    teacher = [[1.0, 0.0], [1.0, 1.0]]  # cosines: 1 and 1/sqrt2 -> kernel (1, (1 + 1/sqrt2) / 2)
    k_off = (1 + 1 / math.sqrt(2)) / 2
    p_s = [[1 / 1.5, 0.5 / 1.5], [0.5 / 1.5, 1 / 1.5]]
    p_t = [[1 / (1 + k_off), k_off / (1 + k_off)], [k_off / (1 + k_off), 1 / (1 + k_off)]]
    expected = sum(p_t[i][j] * math.log(p_t[i][j] / p_s[i][j]) for i in range(2) for j in range(2)) / 4
    value = LOSSES.get("pkt").fn(torch.tensor(student), torch.tensor(teacher), batch_of([0, 0]))
    assert value.item() == pytest.approx(expected, rel=1e-4)


@pytest.mark.golden('rkd')
def test_rkd_by_hand_for_three_points():
    student = [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]  # a right isosceles triangle
    teacher = [[0.0, 0.0], [2.0, 0.0], [0.0, 1.0]]

    def huber(a, b):
        d = abs(a - b)
        return 0.5 * d * d if d < 1 else d - 0.5

    def distances(points):
        d = [[math.dist(p, q) for q in points] for p in points]
        mean = sum(d[i][j] for i in range(3) for j in range(3) if i != j) / 6
        return [[x / mean for x in row] for row in d]

    def angles(points):  # cos of the angle at i between j and k, for every (i, j, k)
        out = []
        for i in range(3):
            for j in range(3):
                for k in range(3):
                    u = [a - b for a, b in zip(points[j], points[i], strict=True)]
                    v = [a - b for a, b in zip(points[k], points[i], strict=True)]
                    nu, nv = math.hypot(*u), math.hypot(*v)
                    out.append(0.0 if nu == 0 or nv == 0 else (u[0] * v[0] + u[1] * v[1]) / (nu * nv))
        return out

    d_s, d_t = distances(student), distances(teacher)
    distance_term = sum(huber(d_s[i][j], d_t[i][j]) for i in range(3) for j in range(3)) / 9
    a_s, a_t = angles(student), angles(teacher)
    angle_term = sum(huber(a, b) for a, b in zip(a_s, a_t, strict=True)) / 27
    value = LOSSES.get("rkd").fn(torch.tensor(student), torch.tensor(teacher), batch_of([0] * 3))
    assert value.item() == pytest.approx(25 * distance_term + 50 * angle_term, rel=1e-4)


@pytest.mark.golden('fitnet')
def test_fitnet_is_the_hint_loss_on_maps_by_hand():
    student, teacher = torch.zeros(1, 1, 2, 2), torch.tensor([[[[1.0, 2.0], [0.0, 2.0]]]])
    value = LOSSES.get("fitnet").fn(student, teacher, batch_of([0]))
    assert value.item() == pytest.approx(0.5 * (1 + 4 + 0 + 4))


def golden_tests() -> dict[str, set[str]]:
    """Test function -> the losses its ``@pytest.mark.golden(...)`` names, found in every test file's source
    (so the check does not depend on which files a run collects), each name also checked to appear as a string
    in the function's own body (the marker cannot claim a loss the test never calls)."""
    import ast
    from pathlib import Path

    found = {}
    for path in sorted(Path(__file__).parent.glob("test_*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef):
                continue
            for decorator in node.decorator_list:
                if isinstance(decorator, ast.Call) and ast.unparse(decorator.func) == "pytest.mark.golden":
                    names = {a.value for a in decorator.args}
                    used = {n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
                            and n not in decorator.args}
                    assert names <= used, f"{path.name}::{node.name} is marked golden for {names - used}, never used"
                    found[f"{path.name}::{node.name}"] = names
    return found


def test_every_registered_loss_has_a_hand_computed_golden_test():
    covered = set().union(*golden_tests().values())
    missing = sorted(set(LOSSES.names()) - covered)
    assert not missing, f"losses without a @pytest.mark.golden test: {missing}"


# mst's router reads the student's raw logits (as the authors' does), so a shift may change which teacher teaches
SHIFT_SENSITIVE = {"mst"}
LOGIT_LOSSES = [n for n in LOSSES.names() if LOSSES.get(n).reads == "logits" and LOSSES.get(n).needs_teacher
                and LOSSES.get(n).needs == CLASSES and n not in SHIFT_SENSITIVE]  # those over class distributions


@pytest.mark.parametrize("name", LOGIT_LOSSES)
def test_soft_label_losses_ignore_a_per_sample_shift_of_the_logits(name):
    """Softmax-based losses see probabilities, which a constant added to a sample's logits does not change."""
    torch.manual_seed(7)
    student, teacher = torch.randn(5, 4), torch.randn(5, 4)
    shift = torch.randn(5, 1) * 3
    batch = batch_of([0, 1, 2, 3, 0])
    assert call(name, student + shift, teacher, batch).item() == pytest.approx(
        call(name, student, teacher, batch).item(), rel=1e-4, abs=1e-6)
    if name != "mgkd":  # mgkd reads the teacher's embedding, not its logits
        assert call(name, student, teacher - shift, batch).item() == pytest.approx(
            call(name, student, teacher, batch).item(), rel=1e-4, abs=1e-6)


@pytest.mark.golden('soft_target')
def test_soft_target_is_cross_entropy_with_the_given_distribution():
    student = torch.tensor([[0.0, math.log(3.0)]])  # p = (1/4, 3/4)
    batch = Batch({"raters": torch.tensor([[0.5, 0.5]])}, torch.tensor([0]), torch.arange(1))
    expected = -(0.5 * math.log(0.25) + 0.5 * math.log(0.75))
    assert LOSSES.get("soft_target").fn(student, None, batch, source="raters").item() == pytest.approx(expected)
    with pytest.raises(Exception, match="source 'votes' is not a column of the batch"):
        LOSSES.get("soft_target").fn(student, None, batch, source="votes")


@pytest.mark.golden('mse')
def test_mse_task_loss_uses_labelled_rows_with_a_value():
    predicted = torch.tensor([[1.0], [0.0], [3.0], [2.0]])
    target = torch.tensor([0.0, 2.0, float("nan"), 0.0])  # row 2: an unlabelled pair
    batch = batch_of(target.tolist(), [True, True, True, False])  # row 3: outside the label budget
    assert LOSSES.get("mse").fn(predicted, None, batch).item() == pytest.approx((1 + 4) / 2)
    # Huber with delta 1: row 0 quadratic 0.5 * 1, row 1 linear 1 * (2 - 0.5)
    assert LOSSES.get("mse").fn(predicted, None, batch, huber_delta=1.0).item() == pytest.approx((0.5 + 1.5) / 2)
    nothing = LOSSES.get("mse").fn(predicted.requires_grad_(), None, batch_of([0.0], [False]))
    assert nothing.item() == 0.0


@pytest.mark.golden('pred_mse')
def test_pred_mse_is_the_squared_distance_of_head_outputs():
    student, teacher = torch.tensor([[1.0, 0.0], [0.0, 0.0]]), torch.tensor([[0.0, 2.0], [0.0, -1.0]])
    assert LOSSES.get("pred_mse").fn(student, teacher, batch_of([0, 0])).item() == pytest.approx((1 + 4 + 1) / 2)


@pytest.mark.golden('teacher_bounded')
def test_teacher_bounded_loss_teaches_only_where_the_student_is_worse_than_the_teacher():
    student = torch.tensor([[1.0], [0.5], [3.0]])
    teacher = torch.tensor([[0.5], [1.0], [0.0]])
    batch = batch_of([0.0, 0.0, 0.0], [True, True, False])
    # row 0: student error 1 > teacher error 0.25 -> 1; row 1: 0.25 < 1 -> 0; row 2 outside the budget
    assert LOSSES.get("teacher_bounded").fn(student, teacher, batch).item() == pytest.approx(0.5)
    # a margin of 0.8 also bounds row 1 (0.25 + 0.8 > 1): (1 + 0.25) / 2
    assert LOSSES.get("teacher_bounded").fn(student, teacher, batch, margin=0.8).item() == pytest.approx(0.625)


def test_losses_are_plain_functions_with_keyword_only_options():
    """Usable outside the pipeline: tensors first, the batch only where labels are read, options by keyword."""
    import crossdistill.losses as losses

    torch.manual_seed(0)
    student, teacher = torch.randn(4, 3), torch.randn(4, 3)
    expected = 4.0 * F.kl_div(F.log_softmax(student / 2, 1), F.softmax(teacher / 2, 1), reduction="batchmean")
    assert losses.kd(student, teacher, temperature=2.0).item() == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(TypeError):
        losses.kd(student, teacher, None, 2.0)  # an option passed by position is refused
    assert LOSSES.get("kd").options == ["temperature"] and LOSSES.get("crd").options[:1] == ["feat_dim"]
    assert losses.crd is LOSSES.get("crd").module
    with pytest.raises(ValueError, match="ce needs labels"):
        losses.ce(student, None)  # a loss reading labels says so when given no batch
    with pytest.raises(AttributeError, match="no attribute 'kdd'"):
        losses.kdd  # noqa: B018
