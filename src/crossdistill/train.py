"""``fit()``: the one training loop. AdamW (or SGD) + warm-up/cosine (or constant) schedule, gradient clipping,
model selection on validation (labels, agreement with the teacher, or none: the last epoch; ties in the score
broken by the validation loss), early stopping,
``metrics.jsonl`` per epoch, a resumable ``last.pt`` and the selected weights in ``best.safetensors``."""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import Progress
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel

from crossdistill.atomic import write_text_atomic
from crossdistill.checkpoint import (
    CorruptCheckpointError,
    load_state,
    save_state,
    save_weights,
    stored_digest,
    tensors_digest,
)
from crossdistill.config import ConfigError, TrainConfig
from crossdistill.data.loader import BatchLoader
from crossdistill.distill.distiller import Distiller
from crossdistill.distributed import all_ranks_agree, barrier, gather_strings, is_main, mean_over_ranks, world_size
from crossdistill.errors import CrossdistillError
from crossdistill.evaluate.predict import predict
from crossdistill.tasks import Task, build_task

log = logging.getLogger("crossdistill")


@dataclass
class FitProgress:
    """Where a fit stands (saved in ``last.pt`` with the optimizer and friends, restored on resume)."""

    epoch: int = -1  # the last epoch finished
    best_score: float = -math.inf
    best_loss: float = math.inf  # the validation loss at the best epoch: breaks ties in the score
    best_epoch: int = -1
    best_student: dict[str, Tensor] | None = None  # the selected student weights so far
    stopped: bool = False  # early stopping fired


class NonFiniteLossError(CrossdistillError, FloatingPointError):
    """A loss term became NaN or infinite; the message names it and the step."""


@dataclass
class FitResult:
    best_epoch: int
    best_score: float
    epochs_run: int
    history: list[dict] = field(default_factory=list)
    weights_digest_per_rank: list[str] = field(default_factory=list)  # identical: checked across ranks


def warmup_cosine(step: int, warmup: int, total: int, decay: bool = True) -> float:
    """LR multiplier: linear warm-up for ``warmup`` steps, then cosine decay to 0 at ``total`` (or constant)."""
    if step < warmup:
        return (step + 1) / warmup
    if not decay:
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(params: list[torch.nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def ema_decay(horizon: float, total_steps: int) -> float:
    """Decay of an EMA whose time constant is ``horizon`` of the run: the average forgets the early weights
    whatever the run's length (a fixed decay such as 0.998 would still be averaging the initialisation at the
    end of a 500-step run)."""
    return 1.0 - 1.0 / max(1.0, horizon * total_steps)


def ema_with_warmup(decay: float) -> Callable[[Tensor, Tensor, Tensor], Tensor]:
    """EMA update with decay min(decay, n / (n + 1)) after n updates: an exact running mean of the weights until
    the EMA's horizon 1 / (1 - decay) is reached, then an exponential average. The running mean start keeps the
    random initialisation from lingering (the bias problem Adam corrects for its moments)."""

    def update(averaged: Tensor, current: Tensor, num_averaged: Tensor) -> Tensor:
        count = float(num_averaged)
        rate = min(decay, count / (count + 1.0))
        if not averaged.is_floating_point():
            return current  # e.g. BatchNorm's num_batches_tracked
        return averaged * rate + current * (1.0 - rate)

    return update


def _autocast(cfg: TrainConfig, device: torch.device) -> contextlib.AbstractContextManager:
    """Mixed precision for the forward pass: bf16 (CPU or GPU) or fp16 (GPU, with loss scaling)."""
    if cfg.precision == "fp32":
        return contextlib.nullcontext()
    if cfg.precision == "fp16" and device.type != "cuda":
        raise ConfigError("train.precision: fp16 needs a GPU; on CPU use bf16 (or fp32)")
    return torch.autocast(device.type, dtype=torch.bfloat16 if cfg.precision == "bf16" else torch.float16)


@dataclass
class EpochSoFar:
    """How far an epoch went: the steps done, the per-term loss sums (float64) and the skipped steps."""

    step: int = 0
    sums: dict[str, float] = field(default_factory=dict)
    skipped: int = 0


def _train_epoch(distiller: Distiller, forward: nn.Module, loader: BatchLoader, optimizer: torch.optim.Optimizer,
                 scheduler: torch.optim.lr_scheduler.LRScheduler, scaler: torch.amp.GradScaler, cfg: TrainConfig,
                 device: torch.device, ema: AveragedModel | None, epoch: int, so_far: EpochSoFar,
                 checkpoint: Callable[[EpochSoFar], None]) -> dict[str, float]:
    """One epoch (or its rest, from ``so_far``); ``forward`` is the distiller, or its DistributedDataParallel
    wrapper; ``checkpoint`` is called every ``cfg.checkpoint_steps`` steps."""
    distiller.train()
    # on the device: no host sync per step beyond the non-finite check
    sums = {k: torch.tensor(v, dtype=torch.float64, device=device) for k, v in so_far.sums.items()}
    skipped = so_far.skipped
    for step, batch in enumerate(loader, start=so_far.step):
        distiller.epoch = epoch + step / len(loader)  # for terms whose weight warms up
        with _autocast(cfg, device):
            losses = forward(batch.to(device))
        if not all_ranks_agree(bool(torch.isfinite(losses["loss"]))):  # (every rank skips or stops together)
            bad = ", ".join(f"{k} = {v.item()}" for k, v in losses.items() if k != "loss" and not torch.isfinite(v))
            if cfg.nonfinite == "stop":
                raise NonFiniteLossError(f"epoch {epoch}, step {step}: loss term {bad or 'total'} is not finite; "
                                         "the last epoch's checkpoint is kept. Lower train.lr, check the data, or "
                                         "set train.nonfinite: skip to drop such batches")
            skipped += 1
            continue
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(losses["loss"]).backward()
        if cfg.clip_grad:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(list(distiller.trainable_parameters()), cfg.clip_grad)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        if ema is not None:
            ema.update_parameters(distiller.student)
        for name, value in losses.items():
            sums[name] = sums.get(name, 0.0) + value.detach().double()
        if cfg.checkpoint_steps and (step + 1) % cfg.checkpoint_steps == 0 and step + 1 < len(loader):
            checkpoint(EpochSoFar(step + 1, {k: float(v) for k, v in sums.items()}, skipped))
    done = max(1, len(loader) - skipped)
    means = mean_over_ranks({f"train_{k}": float(v) / done for k, v in sums.items()})
    return means | ({"skipped_steps": skipped} if skipped else {})


def _resume(path: Path, stateful: dict[str, Any], train: BatchLoader
            ) -> tuple[FitProgress, list[dict], EpochSoFar]:
    """Progress and history of an interrupted (or finished) fit, every stateful object restored; how far the
    interrupted epoch went (a mid-epoch checkpoint: the loader set to continue it)."""
    try:
        state = load_state(path)
    except CorruptCheckpointError as error:
        raise CorruptCheckpointError(f"{error}. Delete it to train this model from the start") from None
    for name, obj in stateful.items():
        obj.load_state_dict(state[name])
    torch.set_rng_state(state["rng"])
    train.generator.set_state(state["loader_rng"])
    progress = FitProgress(**{f.name: state[f.name] for f in fields(FitProgress) if f.name in state})
    so_far = EpochSoFar()
    if "mid_epoch" in state:
        mid = state["mid_epoch"]
        train.resume_at(mid["loader"])
        so_far = EpochSoFar(int(mid["step"]), dict(mid["sums"]), int(mid["skipped"]))
    return progress, json.loads(state["history"]), so_far


def fit(distiller: Distiller, train: BatchLoader, val: BatchLoader, val_targets: Tensor, cfg: TrainConfig,
        run_dir: Path, device: torch.device, resume: bool = True, label: str = "",
        task: Task | None = None, observers: Sequence[Callable[[dict], None]] = ()) -> FitResult:
    """Train ``distiller``'s student (+ adapters, loss modules, a jointly trained teacher); keep the student
    weights of the best validation epoch (or of the last, ``select_on: last``).

    ``val_targets`` (N_val,) are what the validation score (accuracy, R^2 for regression, R@1 for retrieval) is
    measured against: the labels of a labelled validation split, the teacher's predictions (selection without
    labels), or retrieval's positive groups. No test data is seen here. Under torchrun, every rank runs this.
    A ``last.pt`` in ``run_dir`` (a crash, or a finished run) is resumed from when ``resume``.
    ``observers`` see each epoch's row (epoch, train losses, val_score, val_loss, seconds) once it is checkpointed,
    e.g. a tuning trial reporting to its pruner; an exception raised by one stops training there.
    """
    task = task or build_task("classification")
    distiller.to(device)
    optimizer = make_optimizer(list(distiller.trainable_parameters()), cfg)
    total = cfg.epochs * len(train)
    decay = cfg.schedule == "cosine"
    schedule = lambda step: warmup_cosine(step, cfg.warmup_epochs * len(train), total, decay)  # noqa: E731
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    # The moving average (Polyak averaging, as timm's ModelEmaV2) smooths the seed-to-seed noise of small data.
    ema = (AveragedModel(distiller.student, avg_fn=ema_with_warmup(ema_decay(cfg.ema_horizon, total)),
                         use_buffers=True) if cfg.ema_horizon else None)
    evaluated = ema.module if ema is not None else distiller.student
    stateful = {"student": distiller.student, "training_state": distiller.training_state(), "optimizer": optimizer,
                "scheduler": scheduler, **({"ema": ema} if ema is not None else {})}
    last_path = run_dir / "checkpoints" / "last.pt"
    keep_last = cfg.select_on == "last"  # no selection: the final weights
    progress, history, so_far = FitProgress(), [], EpochSoFar()
    if resume and last_path.is_file():
        progress, history, so_far = _resume(last_path, stateful, train)
        if progress.stopped or progress.epoch + 1 >= cfg.epochs:
            said = f"already trained, kept (epoch {progress.best_epoch} selected)"
        else:
            said = f"resumed from its checkpoint: {progress.epoch + 1} epoch(s)" + (
                f" and {so_far.step} step(s)" if so_far.step else "") + " done"
        log.info("%s: %s", label or run_dir, said)

    def save(extra: dict[str, Any]) -> None:
        save_state({**{k: v.state_dict() for k, v in stateful.items()}, **vars(progress), **extra,
                    "history": json.dumps(history), "rng": torch.get_rng_state(),
                    "loader_rng": train.generator.get_state()}, last_path)

    run_dir.mkdir(parents=True, exist_ok=True)
    # Several processes: DDP over what training changes (student, adapters, loss modules, a jointly trained
    # teacher); frozen teachers stay outside it. Rank 0 broadcasts its initial weights.
    forward = DistributedDataParallel(distiller.trained_side()) if world_size() > 1 else distiller
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.precision == "fp16")
    console = Console(stderr=True)
    with Progress(transient=True, console=console, disable=not (cfg.progress and console.is_terminal)) as bar:
        bar_id = bar.add_task(label or "fit", total=cfg.epochs, completed=progress.epoch + 1)
        for epoch in range(progress.epoch + 1, cfg.epochs if not progress.stopped else 0):
            tic = time.perf_counter()
            def mid_epoch(done: EpochSoFar, epoch: int = epoch) -> None:
                if is_main():
                    save({"mid_epoch": {"epoch": epoch, "step": done.step, "sums": done.sums,
                                        "skipped": done.skipped, "loader": train.position(done.step)}})

            row = {"epoch": epoch, **_train_epoch(distiller, forward, train, optimizer, scheduler, scaler, cfg,
                                                  device, ema, epoch, so_far, mid_epoch)}
            so_far = EpochSoFar()
            writes = (epoch + 1) % cfg.checkpoint_every == 0 or epoch == cfg.epochs - 1
            if not keep_last or writes:  # with no selection, the validation score is only logged
                outputs = predict(evaluated, val, task, device)
                row["val_score"] = task.validation_score(outputs, val_targets)
                val_loss = task.validation_loss(outputs, val_targets)
                if val_loss is not None:
                    row["val_loss"] = val_loss
            row |= {"lr": scheduler.get_last_lr()[0], "seconds": time.perf_counter() - tic}
            progress.epoch = epoch
            if not keep_last and _better(row, progress):
                progress.best_score, progress.best_epoch = row["val_score"], epoch
                progress.best_loss = row.get("val_loss", math.inf)
                progress.best_student = copy.deepcopy(evaluated.state_dict())
            progress.stopped = bool(not keep_last and cfg.patience and epoch - progress.best_epoch >= cfg.patience)
            history.append(row)
            if (writes or progress.stopped) and is_main():
                save({})
                # Rewritten whole and atomically, so metrics.jsonl always matches last.pt after a crash.
                write_text_atomic(run_dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in history))
            bar.update(bar_id, advance=1, description=f"{label} loss {row.get('train_loss', math.nan):.3f}")
            for observe in observers:
                observe(row)
            if progress.stopped:
                break
    if keep_last:
        progress.best_student = copy.deepcopy(evaluated.state_dict())
        progress.best_epoch, progress.best_score = progress.epoch, history[-1]["val_score"]
    digests = _keep_selected(distiller.student, progress.best_student, run_dir)
    return FitResult(progress.best_epoch, progress.best_score, len(history), history, digests)


def _better(row: dict, progress: FitProgress) -> bool:
    """A higher validation score, or the same score with a lower validation loss: a teacher that is perfect on
    validation from its first epoch must not keep its first, nearly uniform, weights (the flat-teacher trap)."""
    if row["val_score"] != progress.best_score:
        return row["val_score"] > progress.best_score
    return row.get("val_loss", math.inf) < progress.best_loss


def _keep_selected(student: nn.Module, selected: dict[str, Tensor], run_dir: Path) -> list[str]:
    """Load the selected weights into the student and write them (rank 0), after checking that every rank
    holds the same ones; returns each rank's digest."""
    student.load_state_dict(selected)
    digests = gather_strings(tensors_digest(selected))
    if len(set(digests)) > 1:
        raise RuntimeError(f"the ranks' trained weights differ ({digests}): distributed training went out of sync")
    best = run_dir / "checkpoints" / "best.safetensors"
    if is_main() and stored_digest(best) != digests[0]:  # (a resumed finished fit leaves its file untouched)
        save_weights(selected, best)
    barrier()  # (the other ranks wait for rank 0's files)
    return digests
