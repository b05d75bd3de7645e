import math

import pytest
import torch

from crossdistill.data.batch import Batch
from crossdistill.losses import LOSSES


def batch_of(target, labeled=None):
    target = torch.tensor(target)
    return Batch({}, target, torch.arange(len(target)), None if labeled is None else torch.tensor(labeled))


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


def test_kd_matches_hand_computed_kl_times_t_squared():
    student, teacher, t = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]]), 2.0
    p_t = torch.softmax(teacher / t, 1)[0]
    p_s = torch.softmax(student / t, 1)[0]
    kl = sum(p_t[j] * math.log(p_t[j] / p_s[j]) for j in range(2))
    value = LOSSES.get("kd").fn(student, teacher, batch_of([0]), temperature=t)
    assert value.item() == pytest.approx(float(kl) * t * t, rel=1e-5)


def test_soft_mse_matches_hand_computation():
    student, teacher = torch.tensor([[0.0, 0.0], [0.0, 0.0]]), torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0]])
    # sample 1: k^T = (0.75, 0.25), k^S = (0.5, 0.5) -> 0.0625 + 0.0625; sample 2: 0
    value = LOSSES.get("soft_mse").fn(student, teacher, batch_of([0, 0]))
    assert value.item() == pytest.approx(0.125 / 2, rel=1e-6)


def test_feature_mse_is_half_squared_norm_averaged_over_samples():
    student, teacher = torch.tensor([[1.0, 2.0], [0.0, 0.0]]), torch.tensor([[0.0, 0.0], [0.0, 3.0]])
    value = LOSSES.get("feature_mse").fn(student, teacher, batch_of([0, 0]))
    assert value.item() == pytest.approx((0.5 * 5 + 0.5 * 9) / 2)


@pytest.mark.parametrize("name", LOSSES.names())
def test_every_loss_is_finite_differentiable_and_minimal_at_the_teacher(name):
    loss = LOSSES.get(name)
    torch.manual_seed(0)
    student = torch.randn(6, 5, requires_grad=True)
    teacher = torch.randn(6, 5)
    batch = batch_of([0, 1, 2, 3, 4, 0])
    value = loss.fn(student, teacher if loss.needs_teacher else None, batch)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(student.grad).all() and student.grad.abs().sum() > 0
    assert loss.summary, f"loss {name} needs a docstring"
    if loss.needs_teacher:  # distillation losses reach their minimum (0) when the student equals the teacher
        assert loss.fn(teacher.clone(), teacher, batch).item() == pytest.approx(0.0, abs=1e-6)
