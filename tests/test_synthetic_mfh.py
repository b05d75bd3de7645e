"""The synthetic-mfh generator (Xue et al., ICLR 2023): statistics, the label rule, the overlap constructions,
independent draws; and a run of the paper's protocol through the pipeline (linear models, SGD, last epoch)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from crossdistill.config import Experiment
from crossdistill.data import open_dataset
from crossdistill.data.synthetic_mfh import MfhOptions, draw, layout
from crossdistill.tasks import build_task

CLASSIFICATION = build_task("classification")


def fold_of(**options):
    return open_dataset("synthetic-mfh", None, options, 0, CLASSIFICATION).fold(0)


def test_channels_are_standard_normal_and_classes_balanced():
    data = fold_of(experiment="gamma", overlap=4, n_train=20000)["train"]
    for name in ("x1", "x2", "x1_general"):
        x = data.inputs[name].double()
        assert x.mean(0).abs().max() < 0.03 and (x.std(0) - 1).abs().max() < 0.03, name
    assert 0.4 < float(data.target.float().mean()) < 0.6  # a hyperplane through the origin


def test_label_is_the_side_of_the_hyperplane_of_the_decisive_features():
    plan = layout(MfhOptions(experiment="gamma", overlap=0))  # x2 carries x_s[0:10], x1 carries x_s[10:20]
    hyperplane = np.random.default_rng(3).standard_normal(500)
    arrays = draw(plan, hyperplane, 500, np.random.default_rng(4))
    decisive = np.concatenate([arrays["x2"][:, :10], arrays["x1"][:, 10:20]], axis=1).astype(np.float64)
    assert (arrays["y"] == (decisive @ hyperplane[:20] > 0)).all()
    plan = layout(MfhOptions(experiment="alpha", extra=40))  # x1 carries all 50 decisive features
    arrays = draw(plan, hyperplane, 500, np.random.default_rng(5))
    assert (arrays["y"] == (arrays["x1"].astype(np.float64) @ hyperplane[:50] > 0)).mean() > 0.999  # (float32)


@pytest.mark.parametrize("overlap", [0, 4, 10])
def test_gamma_overlap_shares_exactly_overlap_channels(overlap):
    data = fold_of(experiment="gamma", overlap=overlap, n_train=3000)["train"]
    x1, x2 = data.inputs["x1"], data.inputs["x2"]
    corr = torch.corrcoef(torch.cat([x1, x2], 1).T)[: x1.shape[1], x1.shape[1]:]  # (25, 50)
    shared = (corr.abs() > 0.99).nonzero().tolist()
    assert shared == [[c, c] for c in range(10 - overlap, 10)]  # the shared features sit in the same channels
    assert corr.abs().masked_fill(corr.abs() > 0.99, 0).max() < 0.1  # every other pair independent
    plan = layout(MfhOptions(experiment="gamma", overlap=overlap))
    assert plan.gamma == pytest.approx(overlap / (20 - overlap))
    assert len(plan.x1_specific_channels) == 10 - overlap


def test_gamma_and_alpha_follow_the_papers_definitions():
    for o in (0, 2, 4, 6, 8, 10):
        assert layout(MfhOptions(experiment="gamma", overlap=o)).gamma == pytest.approx(o / (20 - o))
    for k in (0, 10, 20, 30, 40):
        plan = layout(MfhOptions(experiment="alpha", extra=k))
        assert plan.alpha == pytest.approx(k / (k + 10)) and len(plan.shared_features) == 10
        assert (plan.x1_dim, plan.x2_dim, plan.decisive) == (50, 50, 50)


def test_modality_general_input_keeps_shared_channels_and_replaces_specific_ones():
    data = fold_of(experiment="general", shared=20, n_train=3000)["train"]
    x1, general, x2 = data.inputs["x1"], data.inputs["x1_general"], data.inputs["x2"]
    assert torch.equal(general[:, :20], x1[:, :20]) and torch.equal(x1[:, :20], x2[:, :20])
    specific = torch.corrcoef(torch.cat([x1[:, 20:30], general[:, 20:30]], 1).T)[:10, 10:]
    assert specific.abs().max() < 0.1  # fresh noise where x1 has features x2 lacks
    assert torch.equal(general[:, 30:], x1[:, 30:])


def test_draws_are_independent_and_reproducible():
    a, b = fold_of(experiment="gamma", overlap=4), fold_of(experiment="gamma", overlap=4)
    assert torch.equal(a["test"].inputs["x2"], b["test"].inputs["x2"])  # same seed, same draw
    assert len(a["train"]) == 200 and len(a["test"]) == 1000
    assert not torch.equal(a["train"].inputs["x2"][:200], a["test"].inputs["x2"][:200])  # test: another stream
    other = open_dataset("synthetic-mfh", None, {"experiment": "gamma", "overlap": 4}, 0, CLASSIFICATION).fold(1)
    assert not torch.equal(other["train"].inputs["x2"], a["train"].inputs["x2"])
    with pytest.raises(Exception, match="overlap"):
        open_dataset("synthetic-mfh", None, {"experiment": "gamma", "overlap": 11}, 0, CLASSIFICATION)


def test_the_papers_protocol_runs_through_the_pipeline(tmp_path):
    import yaml

    from crossdistill.pipeline import run

    raw = yaml.safe_load((Path(__file__).resolve().parents[1] / "configs/synthetic_mfh/gamma.yaml").read_text())
    raw |= {"name": "mfh"}
    raw["data"] |= {"folds": 2}
    raw["train"] |= {"epochs": 60, "checkpoint_every": 60}
    run_dir = run(Experiment.model_validate(raw), tmp_path)
    results = json.loads((run_dir / "results.json").read_text())
    assert results["models"]["teacher"]["params"] == 25 * 2 + 2  # one nn.Linear(25, 2)
    assert results["models"]["distilled"]["params"] == 50 * 2 + 2
    fit = json.loads((run_dir / "models" / "distilled" / "fold1-seed0" / "fit.json").read_text())
    assert fit["best_epoch"] == 59 and fit["select_on"] == "last"  # no selection: the last epoch
    history = [json.loads(line) for line in (run_dir / "models" / "distilled" / "fold1-seed0" / "metrics.jsonl")
               .read_text().splitlines()]
    assert len(history) == 60 and [r["epoch"] for r in history if "val_score" in r] == [59]
    assert all(r["lr"] == pytest.approx(0.1) for r in history)  # SGD at a constant 0.1
    assert len(results["models"]["distilled"]["runs"]) == 2  # one per independent draw
