"""The label-budget plot of the report: drawn from results.json when a run has students on several budgets."""

from crossdistill.report.plots import score_vs_budget


def student(labels, values, teacher=None):
    mean = sum(values) / len(values)
    std = (sum((v - mean) ** 2 for v in values) / max(1, len(values) - 1)) ** 0.5
    return {"role": "student", "student_labels": labels, "teacher": teacher,
            "metrics": {"accuracy": {"mean": mean, "std": std, "per_seed": values}}}


def test_budget_plot_draws_alone_and_distilled_and_skips_a_single_budget(tmp_path):
    results = {"metric_names": ["accuracy"], "metric_style": {"accuracy": [100.0, 1, "%"]},
               "models": {"baseline": student(0.02, [0.5, 0.6, 0.55]),
                          "distilled": student(0.02, [0.7, 0.8, 0.75], "teacher"),
                          "alone_all": student(1.0, [0.9, 0.92, 0.91]),
                          "distilled_all": student(1.0, [0.9, 0.9, 0.93], "teacher"),
                          "no_labels": student(0.0, [0.6, 0.7, 0.65], "teacher")}}
    path = score_vs_budget(results, tmp_path / "budget.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    single = {**results, "models": {k: results["models"][k] for k in ("baseline", "distilled")}}
    assert score_vs_budget(single, tmp_path / "none.png") is None and not (tmp_path / "none.png").exists()
