"""The mechanics behind every "distillation helps" claim, end to end on real data: the student alone and the
distilled student share the labelled subset; no test row reaches training or selection; selection by agreement
with the teacher never reads a validation label. Whether distillation helps is a claim, measured in benchmarks
(benchmarks/results/demo*.json under docs/statistics.md's rule), not asserted on one lucky seed here."""

import json

import torch

from crossdistill import config, pipeline
from crossdistill.data.batch import FoldData, SplitData


class Spy:
    """Records what ``pipeline.fit`` is handed: the run's label, its train and validation rows, its labelled mask
    and the validation targets selection compares with."""

    def __init__(self, monkeypatch):
        self.calls, real = [], pipeline.fit

        def fit(distiller, train, val, val_targets, cfg, run_dir, device, **kwargs):
            self.calls.append({"label": kwargs.get("label", ""), "train": train.data.index.clone(),
                               "val": val.data.index.clone(), "labeled": train.labeled.clone(),
                               "val_targets": val_targets.clone()})
            return real(distiller, train, val, val_targets, cfg, run_dir, device, **kwargs)

        monkeypatch.setattr(pipeline, "fit", fit)

    def of(self, prefix):
        return next(c for c in self.calls if c["label"].startswith(prefix))


def test_alone_and_distilled_share_the_labels_and_never_see_a_test_row(tiny_config, tmp_path, monkeypatch):
    spy = Spy(monkeypatch)
    exp = config.load(tiny_config, ["train.epochs=1", "teacher.train.epochs=1"])
    run_dir = pipeline.run(exp, tmp_path / "runs")
    fold = pipeline.open_dataset("av-digits", None, {}, exp.data.seed, pipeline.experiment_task(exp)).fold(0)
    test_rows = set(fold["test"].index.tolist())
    for call in spy.calls:
        assert not set(call["train"].tolist()) & test_rows and not set(call["val"].tolist()) & test_rows
    baseline, distilled = spy.of("baseline"), spy.of("distilled")
    assert torch.equal(baseline["labeled"], distilled["labeled"])  # the same labelled subset
    assert int(baseline["labeled"].sum()) == sum(  # 10% of each class (at least one), as the budget says
        max(1, round(0.1 * int((fold["train"].target == c).sum()))) for c in range(10))
    fits = {name: json.loads((run_dir / "models" / name / "fold0-seed0" / "fit.json").read_text())
            for name in ("baseline", "distilled")}
    assert fits["baseline"]["labeled"] == fits["distilled"]["labeled"] == int(baseline["labeled"].sum())


class ShuffledValidationLabels:
    """A data set whose validation labels are permuted (what a selection that read them would notice)."""

    def __init__(self, dataset):
        self.dataset, self.num_folds = dataset, dataset.num_folds

    def fold(self, fold_id):
        fold = self.dataset.fold(fold_id)
        val = fold["val"]
        shuffled = val.target[torch.randperm(len(val), generator=torch.Generator().manual_seed(1))]
        splits = {**fold.splits, "val": SplitData(val.inputs, shuffled, val.index, val.groups)}
        return FoldData(fold.fold, splits, fold.info, fold.description, fold.fingerprint)


def test_selection_by_agreement_with_the_teacher_never_reads_a_validation_label(tiny_config, tmp_path, monkeypatch):
    overrides = ["student_labels=0", "distill.terms=[{loss: kd}]", "train.select_on=teacher", "train.epochs=3",
                 "teacher.train={epochs: 2, select_on: last}"]  # (the teacher reads no validation label either)
    histories, real = [], pipeline.open_dataset
    for shuffled in (False, True):
        if shuffled:
            monkeypatch.setattr(pipeline, "open_dataset", lambda *a, **k: ShuffledValidationLabels(real(*a, **k)))
        run_dir = pipeline.run(config.load(tiny_config, overrides), tmp_path / f"shuffled{shuffled}")
        lines = (run_dir / "models" / "distilled" / "fold0-seed0" / "metrics.jsonl").read_text().splitlines()
        histories.append([json.loads(line)["val_score"] for line in lines])
    assert histories[0] == histories[1] and len(histories[0]) == 3
