"""``crossdistill diagnose``: will distilling from this teacher help this student? Answered before any student
is distilled, from the training and validation splits, the teacher and cheap linear probes (never the test split):

1. what each modality alone predicts of the label (cross-validated linear probes);
2. how much of the teacher's knowledge the student's modalities reach: a probe from the student's inputs to the
   teacher's soft labels (held-out KL, as a share of the teacher's information) and ridge regressions onto each
   channel of the teacher's embedding (held-out R^2);
3. the modality-general share of the teacher's decisive knowledge: each embedding channel weighted by how
   decisive it is for the teacher (the change of the teacher's outputs when the channel is shuffled across
   samples, the permutation test of Xue et al.'s Algorithm 1) times how well the student's modalities predict it
   (its held-out R^2); and the linear CKA between the teacher's embedding and the student-side features;
4. a verdict from the score ``reach(teacher) - b * reach(label)``, ``b`` the student's label budget: on the
   labelled share the teacher's soft labels compete with the labels and help only where the student's
   modality reaches more of them than of the labels (the modality focusing hypothesis, measured); on the
   unlabelled share they are the only signal and help as far as they are reachable at all.

Writes ``<out>/<name>/diagnose.json`` and ``diagnose.md``; the run's report shows them when present.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from torch import Tensor

from crossdistill.atomic import write_text_atomic
from crossdistill.config import ConfigError, Experiment
from crossdistill.data import FoldData, open_dataset
from crossdistill.data.batch import SplitData, has_label
from crossdistill.data.loader import BatchLoader
from crossdistill.diagnose.probes import linear_cka, raw_features, reachability, ridge_r2
from crossdistill.diagnose.verdict import render, verdict
from crossdistill.losses.functional import channel_permutation_scores
from crossdistill.models import check_modalities
from crossdistill.tasks import Task

log = logging.getLogger("crossdistill")
MAX_ROWS = 4000  # default cap: probes on at most this many rows (a seeded subsample beyond; --max-rows)


def _rows(fold: FoldData, seed: int, max_rows: int = MAX_ROWS) -> SplitData:
    """Training and validation rows together (never the test split), a seeded subsample of ``max_rows`` of them
    when there are more (only those rows are gathered)."""
    train, val = fold["train"], fold["val"]
    total = len(train) + len(val)
    keep = torch.arange(total)
    if total > max_rows:
        keep = torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:max_rows].sort().values
    parts = [(train, keep[keep < len(train)]), (val, keep[keep >= len(train)] - len(train))]
    inputs = {k: torch.cat([split.inputs[k][rows] for split, rows in parts]) for k in train.inputs}
    return SplitData(inputs, torch.cat([split.target[rows] for split, rows in parts]),
                     torch.cat([split.index[rows] for split, rows in parts]))


def _teacher_outputs(teacher: torch.nn.Module, data: SplitData) -> tuple[Tensor, Tensor]:
    """(N, K) logits and (N, D) embedding of the teacher on ``data``."""
    teacher.eval()
    with torch.no_grad():
        outputs = [teacher(batch) for batch in BatchLoader(data, 512)]
    return torch.cat([o.logits for o in outputs]).float(), torch.cat([o.embed.flatten(1) for o in outputs]).float()


def _target_reach(features: Tensor, target: Tensor, task: Task) -> dict:
    """Share of a target reached from ``features``: soft-label probe (classes) or ridge R^2 (values)."""
    if task.probes_distribution:
        score = reachability(features, target)
        return {"explained": score.explained, "kl": score.kl, "agreement": score.agreement}
    return {"explained": float(ridge_r2(features, target.unsqueeze(1))[0])}


def _label_targets(target: Tensor, fold: FoldData) -> Tensor:
    return fold.info.task.probe_targets(target, fold.info)


def _decisiveness(teacher: torch.nn.Module, embed: Tensor, seed: int) -> Tensor | None:
    """(D,) how much the teacher's outputs move when each embedding channel is shuffled across samples (mean
    squared change of the head's outputs, one shuffle; the permutation test of Xue et al., ICLR 2023,
    Algorithm 1). None for a teacher without a ``head`` (an external model)."""
    head = getattr(teacher, "head", None)
    if head is None:
        return None
    with torch.no_grad():
        reference = head(embed)
    return channel_permutation_scores(embed, head, reference, 1, torch.Generator().manual_seed(seed))


def _modality_probes(data: SplitData, fold: FoldData, names: list[str], labelled: Tensor) -> dict:
    """Each modality alone (and the student's together) -> the label, cross-validated."""
    labels = _label_targets(data.target[labelled], fold)
    out = {}
    for name in names:
        features = raw_features(data.inputs, [name], fold.info.modalities)[labelled]
        out[name] = _target_reach(features, labels, fold.info.task)
    if fold.info.task.probes_distribution:
        out["_chance"] = float(labels.mean(0).max())  # the majority class's share
    return out


def diagnose_fold(exp: Experiment, fold: FoldData, teacher: torch.nn.Module, student_modalities: list[str],
                  seed: int = 0, max_rows: int = MAX_ROWS) -> dict:
    """The diagnosis of one fold, as a JSON-ready dict."""
    data = _rows(fold, seed, max_rows)
    labelled = has_label(data.target)
    if int(labelled.sum()) < 10:
        raise ConfigError("diagnose needs labelled training/validation rows (at least 10) to measure what the "
                          "label is worth")
    task = fold.info.task
    logits, embed = _teacher_outputs(teacher, data)
    teacher_targets = task.teacher_probe_targets(logits)
    student = raw_features(data.inputs, student_modalities, fold.info.modalities)  # (N, F)
    teacher_modalities = list(getattr(teacher, "modalities", []))
    probes = _modality_probes(data, fold, sorted(set(teacher_modalities) | set(student_modalities)), labelled)
    label_reach = _target_reach(student[labelled], _label_targets(data.target[labelled], fold), task)
    teacher_reach = _target_reach(student, teacher_targets, task)
    channel_r2 = ridge_r2(student, embed)  # (D,)
    variance = embed.var(0)
    embed_r2 = float((channel_r2 * variance).sum() / variance.sum().clamp_min(1e-12))
    weights = _decisiveness(teacher, embed, seed)
    general = (None if weights is None
               else float((weights * channel_r2.clamp(0, 1)).sum() / weights.sum().clamp_min(1e-12)))
    teacher_score = task.teacher_agreement(logits[labelled], data.target[labelled])
    result = {
        "fold": fold.fold, "rows": len(data), "labelled_rows": int(labelled.sum()), "task": task.name,
        "teacher_modalities": teacher_modalities, "student_modalities": student_modalities,
        "modality_probes": probes,
        "student_reach": {"label": label_reach, "teacher_soft_labels": teacher_reach,
                          "teacher_embedding_r2": embed_r2},
        "modality_general_share": general,
        "cka": {"teacher_embedding_vs_student_inputs": linear_cka(embed, student)},
        "teacher_train_val_accuracy": teacher_score,
        "student_labels": exp.student_labels,
    }
    result |= verdict(teacher_reach["explained"], label_reach["explained"], exp.student_labels, general)
    return result


def diagnose(exp: Experiment, out: Path, fold_id: int | None = None, max_rows: int = MAX_ROWS) -> dict:
    """Diagnose ``exp`` on its first fold (or ``fold_id``); the teacher is loaded or trained as ``run`` would,
    into the same run directory (a later ``run`` of the same config reuses it)."""
    from crossdistill.pipeline import obtain_teacher, prepare_run_dir
    from crossdistill.plans import experiment_task

    task = experiment_task(exp)
    if not task.diagnosable:
        raise ConfigError(f"diagnose has no probes for task {task.name}; it answers for tasks whose models "
                          "predict a label (classification, regression)")
    dataset = open_dataset(exp.data.dataset, exp.data.root, exp.data.options, exp.data.seed, task,
                           **exp.data.reading())
    fold = dataset.fold(exp.data.fold_ids[0] if fold_id is None else fold_id)
    check_modalities(exp.student, fold.info, "student")
    run_dir = prepare_run_dir(exp, out)
    teacher = obtain_teacher(exp, "teacher", fold, run_dir)
    result = diagnose_fold(exp, fold, teacher, list(exp.student.modalities), exp.data.seed, max_rows)
    write_text_atomic(run_dir / "diagnose.json", json.dumps(result, indent=1))
    write_text_atomic(run_dir / "diagnose.md", "\n".join(render(result)) + "\n")
    return result
