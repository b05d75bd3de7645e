"""``synthetic-mfh``: the controlled two-modality Gaussian data of Xue et al., "The Modality Focusing Hypothesis:
Towards Understanding Crossmodal Knowledge Distillation", ICLR 2023 (section 3 and the authors' ``gauss``
experiments), on which a teacher sees modality ``x1`` and a student modality ``x2``.

Decisive features ``x_s ~ N(0, I)``; label ``y = 1[x_s . a > 0]`` for a random hyperplane ``a ~ N(0, I)``
(drawn once per fold). Each modality copies some decisive features into its first channels and fills the others
with N(0, 1) noise. Decisive features present in both modalities are modality-general, the others
modality-specific. Three constructions, after the authors' code:

- ``gamma`` (experiment 1): 20 decisive features; ``x2`` (50 channels) carries features 0..9; ``x1``
  (25 channels) carries features 10-o .. 19-o, so ``o = overlap`` of its 10 are shared:
  gamma = o / (20 - o).
- ``alpha`` (experiment 2): ``x1`` and ``x2`` have 50 channels; the label depends on 50 decisive features
  (the authors' code draws as many as ``x1`` has channels); ``x2`` carries features 0..9, ``x1`` features
  0..9+k, ``k = extra``: alpha = k / (k + 10).
- ``general`` (experiment 3): 50 channels each; ``shared`` + 10 decisive features; ``x2`` carries the first
  ``shared``, ``x1`` all of them (the other 10 are specific to ``x1``).

Every construction also gives ``x1_general``: ``x1`` with its modality-specific decisive channels replaced by
fresh noise, the input of a "modality-general" teacher. Fold ``k`` is an independent draw (hyperplane,
training, validation and test samples from separate seeded streams: the test set comes from another seed than
the training set). The validation split is not part of the authors' protocol (they train a fixed 1000 epochs
and keep the last weights: ``train.select_on: last``); it is there for the logged curves and for runs that do
select.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from crossdistill.data.batch import FoldData
from crossdistill.data.generated import fold_streams, generated_fold

if TYPE_CHECKING:
    from crossdistill.tasks import Task

HYPERPLANE_DIM = 500  # the authors draw a once in this many dimensions and use its first entries


class MfhOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    experiment: Literal["gamma", "alpha", "general"] = "gamma"
    overlap: int = Field(10, ge=0, le=10, description="gamma: decisive features shared by x1 and x2 (of 10 each)")
    extra: int = Field(0, ge=0, le=40, description="alpha: decisive features of x1 beyond the 10 it shares")
    shared: int = Field(10, ge=1, le=40, description="general: decisive features shared (x1 has 10 more)")
    n_train: int = Field(200, ge=2)
    n_val: int = Field(200, ge=2)
    n_test: int = Field(1000, ge=2)

    @model_validator(mode="after")
    def _fits(self) -> MfhOptions:
        if self.experiment == "general" and self.shared + 10 > 50:
            raise ValueError("general: shared + 10 decisive features must fit in x1's 50 channels")
        return self


@dataclass(frozen=True)
class Layout:
    """Where the decisive features go: x_s column ranges copied into the first channels of each modality."""

    decisive: int  # number of decisive features (the label's inputs)
    x1_dim: int
    x2_dim: int
    x1_features: range  # x_s columns that x1 carries ...
    x1_channels: range  # ... in these channels
    x2_features: range  # x2 carries these x_s columns in its channels 0..len-1

    @property
    def shared_features(self) -> set[int]:
        return set(self.x1_features) & set(self.x2_features)

    @property
    def x1_specific_channels(self) -> list[int]:
        """x1 channels holding decisive features x2 lacks."""
        return [c for f, c in zip(self.x1_features, self.x1_channels, strict=True) if f not in self.shared_features]

    @property
    def x1_shared_channels(self) -> list[int]:
        return [c for f, c in zip(self.x1_features, self.x1_channels, strict=True) if f in self.shared_features]

    @property
    def gamma(self) -> float:
        """Shared decisive features over the other decisive features (the paper's gamma: overlap / (20 -
        overlap) in experiment 1)."""
        shared = len(self.shared_features)
        return shared / (self.decisive - shared)

    @property
    def alpha(self) -> float:
        """Share of x1's decisive features that x2 lacks (the paper's alpha)."""
        return len(self.x1_specific_channels) / len(self.x1_features)


def layout(options: MfhOptions) -> Layout:
    if options.experiment == "gamma":
        o = options.overlap
        return Layout(20, 25, 50, range(10 - o, 20 - o), range(10 - o, 20 - o), range(0, 10))
    if options.experiment == "alpha":
        k = options.extra
        return Layout(50, 50, 50, range(0, 10 + k), range(0, 10 + k), range(0, 10))
    s = options.shared
    return Layout(s + 10, 50, 50, range(0, s + 10), range(0, s + 10), range(0, s))


def draw(plan: Layout, hyperplane: np.ndarray, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """n samples: x1, x2, x1_general (N, C) float32 and y (N,) int64."""
    xs = rng.standard_normal((n, plan.decisive))  # decisive features
    y = (xs @ hyperplane[: plan.decisive] > 0).astype(np.int64)
    x1 = rng.standard_normal((n, plan.x1_dim))
    x1[:, list(plan.x1_channels)] = xs[:, list(plan.x1_features)]
    x2 = rng.standard_normal((n, plan.x2_dim))
    x2[:, : len(plan.x2_features)] = xs[:, list(plan.x2_features)]
    general = x1.copy()
    general[:, plan.x1_specific_channels] = rng.standard_normal((n, len(plan.x1_specific_channels)))
    return {"x1": x1.astype(np.float32), "x2": x2.astype(np.float32), "x1_general": general.astype(np.float32),
            "y": y}


class SyntheticMFH:
    name = "synthetic-mfh"
    licence = "generated (no data files)"
    Options = MfhOptions
    num_folds = 1000  # every fold an independent draw
    targets = "classes"  # what its label is (a task must accept it)

    def __init__(self, root: Path, options: dict, seed: int, task: Task) -> None:
        self.task = task
        self.options, self.seed = MfhOptions.model_validate(options), seed
        self.layout = layout(self.options)

    def fold(self, fold: int) -> FoldData:
        if not 0 <= fold < self.num_folds:
            raise ValueError(f"synthetic-mfh: fold {fold} out of range 0..{self.num_folds - 1}")
        plan_rng, streams = fold_streams(self.seed, fold)
        hyperplane = plan_rng.standard_normal(HYPERPLANE_DIM)
        sizes = {"train": self.options.n_train, "val": self.options.n_val, "test": self.options.n_test}
        plan = self.layout
        return generated_fold(fold, sizes, streams, partial(draw, plan, hyperplane),
                              {"x1": plan.x1_dim, "x2": plan.x2_dim, "x1_general": plan.x1_dim}, self.task,
                              f"synthetic-mfh:{self.options.model_dump_json()}:{self.seed}:{fold}", self.description())

    def description(self) -> str:
        plan = self.layout
        return (f"{self.options.experiment}: x1 {plan.x1_dim} ch, x2 {plan.x2_dim} ch, {plan.decisive} decisive "
                f"features, {len(plan.shared_features)} shared; gamma {plan.gamma:.2f}, alpha {plan.alpha:.2f}")

    def describe(self) -> dict:
        plan = self.layout
        return {"name": self.name, "modalities": {"x1": [plan.x1_dim], "x2": [plan.x2_dim],
                                                  "x1_general": [plan.x1_dim]},
                "sizes (fold 0)": {"train": self.options.n_train, "val": self.options.n_val,
                                   "test": self.options.n_test},
                "folds": "any (independent draws)", "licence": self.licence}
