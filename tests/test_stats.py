"""The one statistical rule (crossdistill.stats) on hand-built cases whose answer is known."""

import numpy as np
import pytest
from sklearn.metrics import r2_score

from crossdistill.stats import MIN_RUNS, holm, mean_of, paired_diff, r_squared, verdict_of

ACCURACY = mean_of("correct")


def runs(correct_per_run: list[list[int]]) -> dict:
    return {(0, seed): {"correct": np.array(c, dtype=float)} for seed, c in enumerate(correct_per_run)}


def test_identical_models_differ_by_nothing():
    rng = np.random.default_rng(1)
    a = runs([rng.integers(0, 2, 50).tolist() for _ in range(4)])
    d = paired_diff(a, a, ACCURACY)
    assert (d.mean, d.ci_low, d.ci_high, d.n_runs) == (0.0, 0.0, 0.0, 4)
    assert d.verdict == "no clear difference"


def test_a_clear_gain_in_every_run_helps():
    # A is right on 30 more of 100 rows in each of 5 runs: +0.30, and the interval is far from 0
    a = runs([[1] * 80 + [0] * 20] * 5)
    b = runs([[1] * 50 + [0] * 50] * 5)
    d = paired_diff(a, b, ACCURACY)
    assert d.mean == pytest.approx(0.30)
    assert 0.15 < d.ci_low < 0.30 < d.ci_high < 0.45
    assert d.verdict == "helps" and d.p_value < 0.01
    assert paired_diff(b, a, ACCURACY).verdict == "hurts"


def test_one_test_sample_is_not_a_gain():
    # 86 test rows, A right on one more of them in each of 3 runs (+1.2 points): the finite test set alone makes
    # the interval reach 0 (every drawn run misses that row with probability (85/86)^86 = 0.37)
    a = runs([[1] * 50 + [0] * 36] * 3)
    b = runs([[1] * 49 + [0] * 37] * 3)
    d = paired_diff(a, b, ACCURACY)
    assert d.mean == pytest.approx(1 / 86)
    assert d.ci_low <= 0 < d.ci_high
    assert d.verdict == "no clear difference"


def test_run_to_run_spread_counts():
    # each run's difference is decisive on its own rows, but their signs disagree across runs
    a = runs([[1] * 100, [0] * 100, [1] * 100, [0] * 100])
    b = runs([[0] * 100, [1] * 100, [0] * 100, [1] * 100])
    d = paired_diff(a, b, ACCURACY)
    assert d.mean == 0.0 and d.ci_low < -0.4 and d.ci_high > 0.4
    assert d.verdict == "no clear difference"


def test_fewer_than_three_runs_get_no_verdict():
    a = runs([[1] * 100] * 2)
    b = runs([[0] * 100] * 2)
    d = paired_diff(a, b, ACCURACY)
    assert d.mean == 1.0 and d.n_runs == 2 == MIN_RUNS - 1
    assert d.verdict == "no verdict"


def test_only_matching_runs_are_paired_and_rows_must_match():
    a = runs([[1] * 10] * 4)
    b = {k: v for k, v in runs([[0] * 10] * 4).items() if k[1] != 3}
    assert paired_diff(a, b, ACCURACY).n_runs == 3
    with pytest.raises(ValueError, match="same test rows"):
        paired_diff(runs([[1] * 10]), runs([[1] * 11]), ACCURACY)
    with pytest.raises(ValueError, match="nothing to pair"):
        paired_diff(a, {(9, 0): {"correct": np.ones(10)}}, ACCURACY)


def test_seeded_and_resample_count():
    rng = np.random.default_rng(0)
    a, b = (runs([rng.integers(0, 2, 40).tolist() for _ in range(3)]) for _ in range(2))
    first, second = paired_diff(a, b, ACCURACY, seed=7), paired_diff(a, b, ACCURACY, seed=7)
    assert first == second and first.resamples >= 2000 and first.level == 0.95


def test_r_squared_statistic_matches_scikit_learn():
    rng = np.random.default_rng(3)
    target, predicted = rng.normal(size=30), rng.normal(size=30)
    rows = {"target": target, "predicted": predicted}
    whole = np.arange(30)[None, :]
    assert r_squared(rows, whole)[0] == pytest.approx(r2_score(target, predicted))
    idx = rng.integers(0, 30, size=(3, 30))
    assert r_squared(rows, idx) == pytest.approx([r2_score(target[i], predicted[i]) for i in idx])


def test_verdict_rule_and_lower_is_better():
    assert verdict_of(0.01, 0.2, 3) == "helps"
    assert verdict_of(-0.2, -0.01, 3) == "hurts"
    assert verdict_of(-0.01, 0.2, 3) == "no clear difference"
    assert verdict_of(0.01, 0.2, 2) == "no verdict"
    assert verdict_of(0.01, 0.2, 5, higher_is_better=False) == "hurts"


def test_holm_step_down():
    assert holm([0.01, 0.04, 0.03]) == [True, False, False]  # 0.01 <= 0.05/3; 0.03 > 0.05/2 stops
    assert holm([0.001, 0.02, 0.04]) == [True, True, True]  # 0.001 <= .0167, 0.02 <= .025, 0.04 <= .05
    assert holm([0.2, 0.001]) == [False, True]
