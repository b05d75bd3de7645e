"""crossdistill: cross-modal knowledge distillation, from data to an exported student.

The public API (docs/api.md), imported on first use so that ``import crossdistill`` stays light (and
``crossdistill.serve`` runs without PyTorch)::

    import crossdistill
    exp = crossdistill.load_config("configs/av_digits/kd.yaml", ["train.epochs=5"])
    results = crossdistill.run(exp, out="runs")
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> (module, attribute)
_PUBLIC = {
    "load_config": ("crossdistill.api", "load_config"),
    "run": ("crossdistill.api", "run"),
    "own_model": ("crossdistill.api", "own_model"),
    "terms": ("crossdistill.api", "terms"),
    "wrap_model": ("crossdistill.api", "wrap_model"),
    "register_model": ("crossdistill.models.external", "register_model"),
    "Experiment": ("crossdistill.config", "Experiment"),
    "ConfigError": ("crossdistill.config", "ConfigError"),
    "Results": ("crossdistill.rundir", "Results"),
    "Batch": ("crossdistill.data.batch", "Batch"),
    "Outputs": ("crossdistill.models.outputs", "Outputs"),
    "Distiller": ("crossdistill.distill.distiller", "Distiller"),
    "TeacherCache": ("crossdistill.distill.cache", "TeacherCache"),
    "export": ("crossdistill.export", "export"),
    "predict": ("crossdistill.predict", "predict"),
    "ExportedModel": ("crossdistill.serve.model", "ExportedModel"),
    "losses": ("crossdistill.losses", None),
}
__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'crossdistill' has no attribute {name!r}")
    module, attribute = _PUBLIC[name]
    value = importlib.import_module(module)
    return value if attribute is None else getattr(value, attribute)


def __dir__() -> list[str]:
    return sorted(__all__)
