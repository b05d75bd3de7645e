"""``synthetic-lupi``: the four synthetic experiments of Lopez-Paz, Bottou, Schölkopf and Vapnik, "Unifying
distillation and privileged information", ICLR 2016, section 4.1 (and the authors' ``synthetic.py``): regular
features ``x`` (d = 50) for the student, privileged features ``x_star`` for the teacher, a separating hyperplane
``a ~ N(0, I_d)`` drawn per fold.

- ``clean_labels`` (1): ``x ~ N(0, I)``, ``x_star = <a, x>`` (1 feature), ``y = 1[x_star + e > 0]``, ``e ~ N(0, 1)``:
  the teacher knows each sample's distance to the boundary, the labels are noisy. Paper: privileged 96 ± 0%,
  regular 88 ± 1%, distilled 95 ± 1%.
- ``clean_features`` (2): ``x_star ~ N(0, I)``, ``y = 1[<a, x_star> > 0]``, ``x = x_star + N(0, I)``: nothing to
  transfer beyond the labels. Paper: 90 ± 1 / 68 ± 1 / 70 ± 1.
- ``relevant_features`` (3): ``x ~ N(0, I)``, ``x_star = x_J`` for a random set J of 3 indices (per fold),
  ``y = 1[<a_J, x_star> > 0]``: the teacher knows which features matter. Paper: 98 ± 0 / 89 ± 1 / 97 ± 1.
- ``sample_relevant_features`` (4): as 3 with J drawn per sample (the label is then not linear in ``x``).
  Paper: 96 ± 2 / 55 ± 3 / 56 ± 4.

The paper trains on 200 samples and tests on 10,000 (100 repetitions; each a fold here). Training, validation and
test samples come from separate seeded streams; the validation split is not in the authors' protocol (they
train a fixed number of epochs and keep the last weights: ``train.select_on: last``).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from crossdistill.data.batch import FoldData
from crossdistill.data.generated import fold_streams, generated_fold

if TYPE_CHECKING:
    from crossdistill.tasks import Task

RELEVANT = 3  # |J| in experiments 3 and 4
Experiment = Literal["clean_labels", "clean_features", "relevant_features", "sample_relevant_features"]


class LupiOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    experiment: Experiment = "relevant_features"
    dim: int = Field(50, ge=RELEVANT, description="d, the regular features")
    n_train: int = Field(200, ge=2)
    n_val: int = Field(200, ge=2)
    n_test: int = Field(10000, ge=2)


def privileged_dim(options: LupiOptions) -> int:
    return {"clean_labels": 1, "clean_features": options.dim}.get(options.experiment, RELEVANT)


def draw(experiment: Experiment, a: np.ndarray, relevant: np.ndarray, n: int, rng: np.random.Generator
         ) -> dict[str, np.ndarray]:
    """n samples: x (n, d), x_star (n, d*) float32 and y (n,) int64 (``relevant``: J, for experiment 3)."""
    d = a.size
    if experiment == "clean_labels":
        x = rng.standard_normal((n, d))
        x_star = (x @ a)[:, None]
        y = x_star[:, 0] + rng.standard_normal(n) > 0
    elif experiment == "clean_features":
        x_star = rng.standard_normal((n, d))
        y = x_star @ a > 0
        x = x_star + rng.standard_normal((n, d))
    else:
        x = rng.standard_normal((n, d))
        if experiment == "relevant_features":
            columns = np.broadcast_to(relevant, (n, RELEVANT))
        else:  # a set J_i per sample
            columns = np.argsort(rng.random((n, d)), axis=1)[:, :RELEVANT]
        x_star = np.take_along_axis(x, columns, axis=1)
        y = x_star @ a[:RELEVANT] > 0
    return {"x": x.astype(np.float32), "x_star": x_star.astype(np.float32), "y": y.astype(np.int64)}


class SyntheticLUPI:
    name = "synthetic-lupi"
    licence = "generated (no data files)"
    Options = LupiOptions
    num_folds = 1000  # every fold an independent draw
    targets = "classes"

    def __init__(self, root: Path, options: dict, seed: int, task: Task) -> None:
        self.task, self.options, self.seed = task, LupiOptions.model_validate(options), seed

    def fold(self, fold: int) -> FoldData:
        if not 0 <= fold < self.num_folds:
            raise ValueError(f"{self.name}: fold {fold} out of range 0..{self.num_folds - 1}")
        plan, streams = fold_streams(self.seed, fold)
        a = plan.standard_normal(self.options.dim)
        relevant = plan.permutation(self.options.dim)[:RELEVANT]
        sizes = {"train": self.options.n_train, "val": self.options.n_val, "test": self.options.n_test}
        return generated_fold(fold, sizes, streams, partial(draw, self.options.experiment, a, relevant),
                              {"x": self.options.dim, "x_star": privileged_dim(self.options)}, self.task,
                              f"{self.name}:{self.options.model_dump_json()}:{self.seed}:{fold}", self.description())

    def description(self) -> str:
        return (f"Lopez-Paz et al. 2016, {self.options.experiment}: x {self.options.dim} features, x_star "
                f"{privileged_dim(self.options)}")

    def describe(self) -> dict:
        return {"name": self.name, "modalities": {"x": [self.options.dim], "x_star": [privileged_dim(self.options)]},
                "sizes (fold 0)": {"train": self.options.n_train, "val": self.options.n_val,
                                   "test": self.options.n_test},
                "folds": "any (independent draws)", "licence": self.licence}
