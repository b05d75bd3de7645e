"""The refactor guard: the golden runs (tests/golden_runs.py) reproduce their recorded test metrics and trained
weights bit for bit, on the software and processor they were recorded on."""

import json

import pytest
from golden_runs import CONFIGS, GOLDEN, environment, run_golden

RECORDED = json.loads(GOLDEN.read_text())
# Changes made on purpose since the recording, each with its reason: "<config>/<model>/<dir>" -> why. Empty: the
# redesign (tasks as objects, retrieval towers as named outputs instead of packed logits, RunDir, column kinds,
# DDP over the trained side only) reproduced every golden run bit for bit. Its other intended changes touch no
# golden run: mgkd no longer reseeds the global RNG, runs of the older format are refused, the teacher cache keys.
INTENDED_CHANGES: dict[str, str] = {}


# Elsewhere (other kernels, other rounding, two short epochs) metrics stay this close: measured between AVX2 and
# AVX-512 machines, at most 0.006 in a rate, and a median rank of 9.5 vs 10 or 37 vs 38.5.
METRIC_TOLERANCE = {"abs": 0.02, "rel": 0.1}


@pytest.mark.e2e
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_golden_run_is_reproduced(name, tmp_path):
    """Where the file was recorded: metrics and weights bit for bit. Elsewhere: metrics within a tolerance."""
    same_machine = environment() == RECORDED["environment"]
    expected = RECORDED["runs"][name]
    found = run_golden(name, tmp_path)
    assert sorted(found) == sorted(expected)
    for model, recorded in expected.items():
        if f"{name}/{model}" in INTENDED_CHANGES:
            continue
        if not same_machine:
            assert found[model]["metrics"] == pytest.approx(recorded["metrics"], **METRIC_TOLERANCE), \
                f"{name}/{model}: test metrics changed (recorded on {RECORDED['environment']}, this is {environment()})"
            continue
        assert found[model]["metrics"] == recorded["metrics"], f"{name}/{model}: test metrics changed"
        assert found[model]["digest"] == recorded["digest"], f"{name}/{model}: trained weights changed"
