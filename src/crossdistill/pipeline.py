"""The whole run, in the mission's order: data -> teacher -> student -> knowledge transfer -> student
optimisation -> evaluation -> report. Every stage writes into the run directory, the contract between them."""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from crossdistill.checkpoint import load_weights, save_weights
from crossdistill.config import ConfigError, Experiment, ModelSpec, dump
from crossdistill.data import FoldData, open_dataset
from crossdistill.data.batch import has_label
from crossdistill.data.loader import BatchLoader, loader_workers
from crossdistill.data.sources import cache_root
from crossdistill.data.splits import label_budget_mask
from crossdistill.distill import CacheRefused, Distiller, PrepareContext, TeacherCache, resolve_terms
from crossdistill.distributed import barrier, is_main, rank, world_size
from crossdistill.evaluate import modality_ablation
from crossdistill.evaluate.health import soft_label_information, still_rising
from crossdistill.evaluate.predict import predict
from crossdistill.models import build_model, check_modalities
from crossdistill.models.fusion import MultiModalModel
from crossdistill.plans import StudentPlan, experiment_task, student_plans, task_term
from crossdistill.results import ResultsBook
from crossdistill.rundir import RunDir, stamp
from crossdistill.runtime import resolve_device, seed_everything
from crossdistill.tracking import check_trackers, epoch_observers, finish_tracking, model_params
from crossdistill.train import fit

if TYPE_CHECKING:
    from crossdistill.data import Dataset

log = logging.getLogger("crossdistill")


def prepare_run_dir(exp: Experiment, out: Path, resume: bool = True, overwrite: bool = False) -> Path:
    """``out/<name>/`` with ``config.yaml``; unfinished and finished fits in it are resumed under an identical
    config and ``resume`` (``resume=False`` retrains them). A changed config never destroys finished results: it
    runs in ``out/<name>-<config hash>/`` (resumed there in turn), unless ``overwrite`` retrains in ``out/<name>``
    (the old config kept as ``config.previous.yaml``)."""
    text = dump(exp)
    run_dir = out / exp.name
    if not is_main():  # rank 0 prepares it; the others then find the folder it wrote this config into
        barrier()
        same = RunDir(run_dir).config.is_file() and RunDir(run_dir).config.read_text() == text
        return run_dir if same else out / f"{exp.name}-{stamp(text).config_hash[:8]}"
    taken = RunDir(run_dir).config.is_file() and RunDir(run_dir).config.read_text() != text
    if taken and overwrite:
        log.warning("%s: config changed and --overwrite given: its models are trained afresh (old config in "
                    "config.previous.yaml)", run_dir)
        shutil.copy(RunDir(run_dir).config, run_dir / "config.previous.yaml")
        shutil.rmtree(RunDir(run_dir).models, ignore_errors=True)
    elif taken:
        other = out / f"{exp.name}-{stamp(text).config_hash[:8]}"
        log.warning("%s holds a run of another config (kept untouched): this one runs in %s (--overwrite replaces "
                    "the earlier run instead)", run_dir, other)
        run_dir = other
    paths = RunDir(run_dir)
    if paths.config.is_file() and not resume and paths.models.is_dir():
        log.warning("%s: not resuming (--no-resume): training its models afresh", run_dir)
        shutil.rmtree(paths.models)
    elif paths.models.is_dir() and resume:
        log.info("%s: same config as before: finished models are kept, unfinished ones resumed", run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    paths.config.write_text(text)
    barrier()
    return run_dir


def selection_targets(fold: FoldData, split: str) -> Tensor:
    """What the validation score compares with (the labels, or for retrieval the groups marking positives)."""
    return fold.info.task.selection_targets(fold[split].target)


def validate(exp: Experiment, fold: FoldData, plans: list[StudentPlan]) -> None:
    """Everything that can be checked before training: modalities, encoders, checkpoints, loss outputs."""
    info = fold.info
    unlabelled = not bool(has_label(fold["train"].target).all())
    for name in ["teacher", *exp.extra_teachers]:
        spec = exp.teacher_spec(name)
        model = build_model(spec, info, role=name)
        if spec.checkpoint:
            load_weights(model, Path(spec.checkpoint))
        elif unlabelled and (spec.external is None or model.trainable):
            raise ConfigError(f"{name}: the training pairs are unlabelled, so the teacher cannot be trained here: "
                              f"give {name}.checkpoint (a teacher trained elsewhere)")
    check_modalities(exp.student, info, "student")
    student = build_model(exp.student, info, "student")
    outputs = student.eval()(fold["train"].batch(torch.arange(2)))
    for plan in plans:
        for term in plan.terms:
            outputs.read(term.reads)  # a term reading an output the student lacks fails here


def _loaders(exp: Experiment, fold: FoldData, spec_train: dict, labeled: Tensor | None, only_labeled: bool,
             seed: int) -> tuple[BatchLoader, BatchLoader]:
    cfg = exp.train_for(spec_train)
    train = BatchLoader(fold["train"], cfg.batch_size, shuffle=True, seed=seed, labeled=labeled,
                        augment=exp.data.augment, only_labeled=only_labeled, shard=(rank(), world_size()),
                        workers=loader_workers(exp.data.loader_workers, fold["train"]))
    return train, BatchLoader(fold["val"], 256)


def obtain_teacher(exp: Experiment, name: str, fold: FoldData, run_dir: Path) -> MultiModalModel:
    """Load ``checkpoint`` or train on every training label; frozen afterwards. Its weights are in the run
    directory either way (a loaded or pretrained teacher's are copied there, for export and the report)."""
    spec: ModelSpec = exp.teacher_spec(name)
    seed_everything(exp.seeds[0])
    model = build_model(spec, fold.info, role=name)
    model_dir = RunDir(run_dir).model_dir(name, fold.fold)
    if spec.checkpoint or (spec.external is not None and not model.trainable):  # (an hf model with a head trains)
        if spec.checkpoint:
            load_weights(model, Path(spec.checkpoint))
        # (else used as its factory built it, with its own pretrained weights)
        if is_main() and not RunDir.weights(model_dir).is_file():
            save_weights(model.state_dict(), RunDir.weights(model_dir))
        return model.eval()
    train, val = _loaders(exp, fold, spec.train, None, False, exp.seeds[0])
    distiller = Distiller(model, None, resolve_terms([task_term(exp)]))
    cfg = exp.train_for(spec.train)
    params = model_params(exp, name, fold.fold, None, cfg, distiller.terms, 1.0)
    fit(distiller, train, val, selection_targets(fold, "val"), cfg, model_dir, resolve_device(cfg.device),
        label=f"{name} fold {fold.fold}", task=fold.info.task,
        observers=epoch_observers(exp, model_dir, params) if is_main() else [])
    return model.cpu().eval()


def distiller_for(exp: Experiment, plan: StudentPlan, fold: FoldData, teachers: dict[str, MultiModalModel],
                  probe_rows: Tensor, seed: int = 0, labeled: Tensor | None = None) -> Distiller:
    """The student, its terms and the teachers they read; teacher outputs from the cache where allowed.
    ``labeled``: the training rows whose label the student's budget allows (for terms that train on labels
    before the student's own training, such as mst's co-training)."""
    student = build_model(exp.student, fold.info, role="student")
    distiller = Distiller(student, {n: teachers[n] for n in plan.teacher_names}, plan.terms,
                          probe=fold["train"].batch(probe_rows), primary=plan.teacher or "teacher")
    cfg = exp.train_for(plan.train)
    teacher_spec = exp.teacher_spec(plan.teacher or "teacher")

    def teacher_over(modalities: list[str]) -> nn.Module:  # the teacher's architecture on fewer modalities
        if teacher_spec.external is not None:
            raise ConfigError("an auxiliary teacher is built from the teacher's encoders; an external teacher has "
                              "none: give the teacher `encoders`")
        spec = teacher_spec.model_copy(update={"encoders": {m: teacher_spec.encoders[m] for m in modalities},
                                               "checkpoint": None})
        return build_model(spec, fold.info, role="auxiliary teacher")

    distiller.prepare(PrepareContext(fold["train"], lambda: build_model(exp.student, fold.info, role="student"),
                                     seed, student=student, val=fold["val"], labeled=labeled,
                                     new_teacher_over=teacher_over, lr=cfg.lr, batch_size=cfg.batch_size))
    for name in distiller.joint:
        log.info("%s: teacher %s is trained jointly with the student (%s): teacher cache off", plan.name, name,
                 ", ".join(t.name for t in plan.terms if t.loss.trains_teacher))
    for name in distiller.teachers:
        if not exp.distill.cache or name in distiller.joint:
            continue
        refused = None
        for turn in (True, False):  # rank 0 builds the cache, then the others open it (every rank: 2 barriers)
            if is_main() == turn:
                try:
                    distiller.use_teacher_source(TeacherCache.open(
                        distiller.teachers[name], fold["train"], split="train", data_fingerprint=fold.fingerprint,
                        reads=distiller.teacher_reads(name), root=cache_root() / "teacher_outputs",
                        augmented=set(exp.data.augment)), name)
                except CacheRefused as why:
                    refused = why
            barrier()
        if refused is not None:
            log.info("%s: teacher %s runs online (%s)", plan.name, name, refused)
    return distiller


def train_student(exp: Experiment, plan: StudentPlan, fold: FoldData, teachers: dict[str, MultiModalModel],
                  selector: MultiModalModel, seed: int, model_dir: Path,
                  observers: Sequence[Callable[[dict], None]] = ()) -> MultiModalModel:
    """Train one student. ``teachers`` feed the distillation terms (none: trained alone, on its labelled share
    only); ``selector`` labels the validation split when selection is by agreement with the teacher;
    ``observers`` see each epoch's row (``fit``)."""
    seed_everything(seed)
    # The labelled subset belongs to the data (seeded by data.seed, like the split), not to the training seed:
    # every seed and every student of a fold sees the same labels, so the seed spread measures training alone.
    strata = fold.info.task.strata(fold["train"].target.numpy())
    labeled = torch.from_numpy(label_budget_mask(strata, plan.labels, exp.data.seed))
    train, val = _loaders(exp, fold, plan.train, labeled, plan.teacher is None, seed)
    cfg = exp.train_for(plan.train)
    by_teacher = cfg.select_on == "teacher"
    val_targets = (fold.info.task.predictions(predict(selector, val, fold.info.task)) if by_teacher
                   else selection_targets(fold, "val"))
    tic = time.perf_counter()
    distiller = distiller_for(exp, plan, fold, teachers, torch.arange(min(8, len(fold["train"]))), seed, labeled)
    prepare_s = time.perf_counter() - tic  # the terms' preparation (mgkd's mimic) and the teacher cache
    if plan.init_from:  # e.g. fine-tuning on labels after distilling without them
        load_weights(distiller.student, RunDir.weights(model_dir.parent.parent / plan.init_from / model_dir.name))
    if is_main():  # (experiment trackers: train.log)
        params = model_params(exp, plan.name, fold.fold, seed, cfg, plan.terms, plan.labels)
        observers = [*observers, *epoch_observers(exp, model_dir, params)]
    result = fit(distiller, train, val, val_targets, cfg, model_dir, resolve_device(cfg.device),
                 label=f"{plan.name} fold {fold.fold} seed {seed}", task=fold.info.task, observers=observers)
    rising = still_rising([row["val_score"] for row in result.history if "val_score" in row])
    if rising:
        log.warning("%s fold %d seed %d: its validation score was still rising at the last epoch (%d): it is "
                    "probably undertrained; raise train.epochs", plan.name, fold.fold, seed, result.epochs_run - 1)
    summary = {**asdict(result), "history": None, "select_on": cfg.select_on, "labeled": int(labeled.sum()),
               "still_rising": rising, "prepare_s": prepare_s}
    if is_main():
        (model_dir / "fit.json").write_text(json.dumps(summary))
    return distiller.student.cpu().eval()


def check(exp: Experiment, full: bool = False) -> tuple[list[StudentPlan], Dataset]:
    """Everything that can go wrong before training, checked: the runs' losses and teachers, the data set, its
    folds, the models over its modalities, the losses' outputs (``crossdistill check``; the start of ``run``)."""
    plans = student_plans(exp, full)
    check_trackers(exp)
    dataset = open_dataset(exp.data.dataset, exp.data.root, exp.data.options, exp.data.seed, experiment_task(exp),
                           **exp.data.reading())
    if max(exp.data.fold_ids) >= dataset.num_folds:
        raise ConfigError(f"data.folds={exp.data.folds} but {exp.data.dataset} has {dataset.num_folds} folds "
                          f"(ids 0..{dataset.num_folds - 1})")
    validate(exp, dataset.fold(exp.data.fold_ids[0]), plans)
    return plans, dataset


def train_fold(exp: Experiment, plans: list[StudentPlan], fold: FoldData, run_dir: Path,
               book: ResultsBook | None = None) -> None:
    """Every model of one fold: its teachers, then each student run over its seeds; each evaluated into
    ``book`` (None: trained only, as a parallel job does; the run's own pass then resumes and evaluates them)."""
    ablate = exp.evaluate.modality_ablation and experiment_task(exp).modality_ablation and book is not None
    needed = ["teacher", *sorted({n for p in plans for n in p.teacher_names} - {"teacher"})]
    teachers = {name: obtain_teacher(exp, name, fold, run_dir) for name in needed}
    for name, teacher in teachers.items():
        if book is not None:
            ablation = modality_ablation(teacher, fold["test"], fold.info) if ablate else None
            book.record(name, exp.teacher_spec(name), teacher, fold, None, ablation=ablation)
            book.note_soft_labels(name, fold, soft_label_information(teacher, fold["train"], fold.info,
                                                                     exp.data.seed))
    for plan in plans:
        selector = teachers[plan.teacher or "teacher"]
        for seed in plan.seeds:
            model_dir = RunDir(run_dir).model_dir(plan.name, fold.fold, seed)
            student = train_student(exp, plan, fold, teachers, selector, seed, model_dir)
            if book is not None:
                ablation = (modality_ablation(student, fold["test"], fold.info)
                            if ablate and len(student.modalities) > 1 else None)
                book.record(plan.name, exp.student, student, fold, seed, plan=plan, ablation=ablation)


def run(exp: Experiment, out: Path, full: bool = False, resume: bool = True, jobs: int = 1,
        overwrite: bool = False) -> Path:
    """Train and evaluate every model of ``exp``; write ``results.json`` and the report. Returns the run dir.
    A killed run of the same config resumes where its checkpoints stopped (``resume``). ``jobs`` > 1 trains the
    folds in that many processes first (``parallel.train_folds``); this process then evaluates them."""
    plans, dataset = check(exp, full)
    run_dir = prepare_run_dir(exp, out, resume, overwrite)
    if jobs > 1 and len(exp.data.fold_ids) > 1 and world_size() == 1:
        from crossdistill.parallel import train_folds

        train_folds(exp, run_dir, full, jobs)
    book = ResultsBook(exp, RunDir(run_dir))
    for fold_id in exp.data.fold_ids:
        fold = dataset.fold(fold_id)
        book.add_fold(fold)
        train_fold(exp, plans, fold, run_dir, book)
    book.write()
    if exp.train.log and is_main():  # (results.json is written by rank 0; the trackers' final rows with it)
        finish_tracking(exp, run_dir, RunDir(run_dir).load_results().models)
    return run_dir
