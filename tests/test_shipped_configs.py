"""Every shipped config parses, names known losses and teachers, and plans its runs (no training here)."""

from pathlib import Path

import pytest

from crossdistill import config
from crossdistill.plans import student_plans

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").rglob("*.yaml"))


def test_configs_are_found():
    assert len(CONFIGS) >= 7


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_config_plans_its_runs(path):
    exp = config.load(path)
    plans = student_plans(exp, full=True)
    assert plans and all(plan.seeds for plan in plans)
