"""Folds trained in parallel processes (``crossdistill run --jobs N``): on a machine of few cores, N one-thread
processes train small models faster than one process of N threads (the demo: six speakers on 2 cores). Each job
trains whole folds into the run directory; the run's own pass then finds every fit finished (resumed from its
checkpoint, not retrained) and evaluates them in order, so results.json is written exactly as without jobs."""

from __future__ import annotations

import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

from crossdistill.config import Experiment
from crossdistill.data import open_dataset
from crossdistill.data.row_decoding import available_cores
from crossdistill.plans import experiment_task, student_plans

log = logging.getLogger("crossdistill")


def _train_one_fold(exp: Experiment, run_dir: Path, full: bool, fold_id: int, threads: int) -> int:
    from crossdistill.pipeline import train_fold  # (in the job process)

    torch.set_num_threads(threads)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    log.setLevel(logging.INFO)
    dataset = open_dataset(exp.data.dataset, exp.data.root, exp.data.options, exp.data.seed, experiment_task(exp),
                           **exp.data.reading())  # (decoded by the parent's check: read from the cache)
    train_fold(exp, student_plans(exp, full), dataset.fold(fold_id), run_dir)
    return fold_id


def train_folds(exp: Experiment, run_dir: Path, full: bool, jobs: int) -> None:
    """Train every fold of ``exp`` in ``jobs`` spawned processes, each with its share of the cores' threads."""
    threads = max(1, available_cores() // jobs)
    log.info("training %d folds in %d processes of %d thread(s) each", len(exp.data.fold_ids), jobs, threads)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = [pool.submit(_train_one_fold, exp, run_dir, full, fold_id, threads) for fold_id in exp.data.fold_ids]
        for future in futures:
            log.info("fold %d trained", future.result())
