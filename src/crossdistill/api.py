"""The public Python API (``import crossdistill``): the pipeline from Python, your own models in it, and our
loss terms in your own training loop. docs/api.md shows each with a runnable example under ``examples/``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from torch import nn

from crossdistill import config, pipeline
from crossdistill.config import ConfigError, Experiment
from crossdistill.distill.distiller import Term, resolve_terms
from crossdistill.models.external import ExternalModel, register_model
from crossdistill.rundir import Results, RunDir
from crossdistill.specs import ExternalSpec, ModelSpec, TermSpec

ModelFactory = Callable[..., nn.Module]


def load_config(path: str | Path, overrides: list[str] | None = None) -> Experiment:
    """A YAML experiment, validated, with ``overrides`` such as ``["train.epochs=5"]`` applied (as ``--set``)."""
    return config.load(path, overrides)


def own_model(factory: ModelFactory, inputs: list[str], *, embed: str | None = None,
              taps: Mapping[str, str] | None = None, trainable: bool = True, **kwargs: Any) -> ModelSpec:
    """A model spec for your own ``nn.Module``: ``factory(**kwargs)`` builds a fresh one (each fold and seed
    trains its own), ``forward(*inputs)`` reads these modalities in order and returns the logits; ``embed`` and
    ``taps`` name layers whose outputs feature terms read (``feats.<name>``). The factory is registered in this
    process under its qualified name; ``run`` with ``jobs`` > 1, ``export`` and ``predict`` in another process
    need it registered there too (``crossdistill.register_model``), or a factory importable as
    'package.module:callable' in the YAML instead."""
    name = f"{getattr(factory, '__module__', 'python')}.{getattr(factory, '__qualname__', repr(factory))}"
    register_model(name, factory)
    return ModelSpec(external=ExternalSpec(factory=name, kwargs=kwargs, inputs=list(inputs), embed=embed,
                                           taps=dict(taps or {}), trainable=trainable))


def run(experiment: Experiment | str | Path, out: str | Path = "runs", *, overrides: list[str] | None = None,
        student: ModelSpec | None = None, teacher: ModelSpec | None = None, full: bool = False,
        resume: bool = True, jobs: int = 1, overwrite: bool = False) -> Results:
    """Train and evaluate every model of ``experiment`` (a loaded config or a YAML path) into
    ``out/<name>/`` and return its results (``results.json``, typed). ``student`` / ``teacher`` replace the
    config's models, e.g. ``own_model(MyNet, ["audio"])``."""
    exp = experiment if isinstance(experiment, Experiment) else load_config(experiment, overrides)
    if overrides and isinstance(experiment, Experiment):
        raise ConfigError("overrides apply to a YAML path; for a loaded config, use load_config(path, overrides)")
    replaced = {k: v for k, v in (("student", student), ("teacher", teacher)) if v is not None}
    if replaced:
        exp = exp.model_copy(update=replaced)  # (checked with everything else before training, by pipeline.check)
    run_dir = pipeline.run(exp, Path(out), full=full, resume=resume, jobs=jobs, overwrite=overwrite)
    return RunDir(run_dir).load_results()


def terms(specs: list[Mapping[str, Any] | TermSpec]) -> list[Term]:
    """Loss terms for a ``Distiller`` in your own loop, written as in a config:
    ``terms([{"loss": "ce"}, {"loss": "kd", "weight": 1.0, "kwargs": {"temperature": 4.0}}])``."""
    return resolve_terms([s if isinstance(s, TermSpec) else TermSpec.model_validate(dict(s)) for s in specs],
                         where="terms")


def wrap_model(module: nn.Module, inputs: list[str], *, embed: str | None = None,
               taps: Mapping[str, str] | None = None, trainable: bool = True) -> ExternalModel:
    """Your ``nn.Module`` (``forward(*inputs) -> logits``) as a model a ``Distiller`` reads: its outputs become
    ``Outputs`` (``logits``, ``embed``: the named layer's output or the logits, ``feats.<name>``: tapped layers).
    Frozen (a teacher as given) when ``trainable`` is False."""
    return ExternalModel(module, list(inputs), embed, dict(taps or {}), trainable)
