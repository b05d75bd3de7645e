"""crossdistill diagnose: the probes on known answers, the verdict's arithmetic, and the command end to end on
synthetic-mfh settings whose outcome the benchmark measures (KD hurts at overlap 0, helps at overlap 10)."""

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from crossdistill.cli import app
from crossdistill.data.batch import ModalitySpec
from crossdistill.diagnose.probes import linear_cka, raw_features, reachability, ridge_r2
from crossdistill.diagnose.verdict import verdict

runner = CliRunner()
GAMMA = str(Path(__file__).resolve().parents[1] / "configs" / "synthetic_mfh" / "gamma.yaml")


def test_linear_cka_by_its_invariances():
    torch.manual_seed(0)
    x = torch.randn(300, 8)
    rotation, _ = torch.linalg.qr(torch.randn(8, 8))
    assert linear_cka(x, x) == pytest.approx(1.0)
    assert linear_cka(x, 3.0 * x @ rotation + 5.0) == pytest.approx(1.0, abs=1e-6)  # rotation, scale, shift
    assert linear_cka(x, torch.randn(300, 20)) < 0.1  # unrelated, even of another width
    # by hand for one dimension: CKA of x and y is their squared correlation
    a, b = torch.randn(300, 1), torch.randn(300, 1)
    y = a + 0.5 * b
    assert linear_cka(a, y) == pytest.approx(float(torch.corrcoef(torch.cat([a, y], 1).T)[0, 1] ** 2), rel=1e-5)


def test_probes_reach_what_the_features_hold_and_nothing_else():
    torch.manual_seed(1)
    x = torch.randn(600, 10)
    logits = 3 * x[:, :2]  # a soft target the features determine
    reached = reachability(x, torch.softmax(logits, 1))
    assert reached.explained > 0.9 and reached.agreement > 0.95
    noise = reachability(torch.randn(600, 10), torch.softmax(logits, 1))
    assert abs(noise.explained) < 0.05  # a probe on unrelated features explains nothing held out
    r2 = ridge_r2(x, torch.stack([x[:, 0] - 2 * x[:, 3], torch.randn(600)], 1))
    assert r2[0] > 0.99 and abs(float(r2[1])) < 0.05


def test_token_ids_become_bag_of_words_counts():
    ids = torch.tensor([[3, 3, 1, 0], [2, 0, 0, 0]])
    spec = {"text": ModalitySpec((4,), "int64", {"vocab_size": 5}), "v": ModalitySpec((2,))}
    features = raw_features({"text": ids, "v": torch.ones(2, 2)}, ["text", "v"], spec)
    expected = torch.log1p(torch.tensor([[0.0, 1, 0, 2, 0], [0, 0, 1, 0, 0]]))  # padding id 0 not counted
    assert torch.allclose(features[:, :5], expected) and features.shape == (2, 7)


def test_verdict_weighs_the_label_by_the_budget():
    assert verdict(0.8, 0.25, 1.0, None)["verdict"] == "distillation likely helps"
    assert verdict(0.1, 0.25, 1.0, None)["verdict"] == "distillation likely hurts"
    assert verdict(0.26, 0.25, 1.0, None)["verdict"] == "distillation is likely neutral"
    scarce = verdict(0.1, 0.25, 0.1, 0.4)  # few labels: even a little reachable teacher knowledge helps
    assert scarce["verdict"] == "distillation likely helps" and scarce["score"] == pytest.approx(0.1 - 0.025)
    assert any("0.40" in line for line in scarce["evidence"])


MFH = ["--set", "train.epochs=400", "--set", "train.checkpoint_every=400"]


@pytest.mark.parametrize(("overlap", "expected"), [(0, "likely hurts"), (10, "likely helps")])
def test_diagnose_calls_the_synthetic_settings_the_benchmark_measures(tmp_path, overlap, expected):
    result = runner.invoke(app, ["diagnose", GAMMA, "--out", str(tmp_path), *MFH,
                                 "--set", f"data.options.overlap={overlap}"])
    assert result.exit_code == 0, result.output
    assert expected in result.output
    written = json.loads((tmp_path / "gamma" / "diagnose.json").read_text())
    assert written["verdict"] == f"distillation {expected}"
    share = written["modality_general_share"]
    assert (share < 0.1) if overlap == 0 else (share > 0.6)  # x2 predicts none / most of the teacher's channels
    assert set(written["modality_probes"]) == {"x1", "x2", "_chance"}
    assert written["rows"] == 400  # training + validation rows; the 1000 test rows are never read
    assert math.isfinite(written["cka"]["teacher_embedding_vs_student_inputs"])


def test_diagnosis_joins_the_report_of_a_later_run_which_reuses_its_teacher(tmp_path):
    args = [GAMMA, "--out", str(tmp_path), *MFH, "--set", "data.folds=1"]
    assert runner.invoke(app, ["diagnose", *args]).exit_code == 0
    teacher_log = tmp_path / "gamma" / "models" / "teacher" / "fold0" / "metrics.jsonl"
    written = teacher_log.stat().st_mtime_ns
    done = runner.invoke(app, ["run", *args])
    assert done.exit_code == 0, done.output
    assert teacher_log.stat().st_mtime_ns == written  # the finished teacher was resumed, not trained again
    report = (tmp_path / "gamma" / "report" / "report.md").read_text()
    assert "## Diagnosis (before distilling)" in report and "Verdict: distillation" in report
    assert "<h2>Diagnosis (before distilling)</h2>" in (tmp_path / "gamma" / "report" / "report.html").read_text()


def test_soft_probe_is_cross_entropy_minimiser():
    """The probe fitted to soft targets matches them where the model can (a sanity check of its objective)."""
    from crossdistill.diagnose.probes import fit_softmax_probe

    torch.manual_seed(2)
    x = torch.randn(400, 3)
    target = torch.softmax(x @ torch.tensor([[1.0, -1.0], [0.5, 0.0], [0.0, 0.0]]), 1)
    probe = fit_softmax_probe(x, target, l2=0.0, steps=200)
    assert F.kl_div(F.log_softmax(probe(x), 1), target, reduction="batchmean").item() < 1e-4


def test_probes_fit_on_a_seeded_capped_subsample_of_train_and_val(av_fold):
    from crossdistill.diagnose import _rows

    capped = _rows(av_fold, seed=3, max_rows=500)
    assert len(capped) == 500 and torch.equal(capped.index, _rows(av_fold, seed=3, max_rows=500).index)
    allowed = set(av_fold["train"].index.tolist()) | set(av_fold["val"].index.tolist())
    assert set(capped.index.tolist()) <= allowed  # never a test row
    assert not torch.equal(capped.index, _rows(av_fold, seed=4, max_rows=500).index)
    whole = _rows(av_fold, seed=3, max_rows=10**6)
    assert len(whole) == len(av_fold["train"]) + len(av_fold["val"])
