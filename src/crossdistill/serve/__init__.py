"""Serving a trained student without PyTorch: numpy preprocessing that follows the recipes saved at training,
onnxruntime for the model. Training decodes files and tokenises text through these same modules, and every
export folder carries a copy of this package (``crossdistill_serve``), so a device runs::

    python -m crossdistill_serve predict EXPORT_FOLDER INPUT --out predictions.csv

with numpy, scipy, Pillow and onnxruntime installed (``tokenizers`` for word-piece text). Nothing here imports
PyTorch or the rest of crossdistill; imports inside the package are relative so that the copy works on its own.
"""

from .inputs import InputError, InputRows, read_inputs
from .model import ExportedModel, ExportError, check_golden, load_export
from .predict import BadRow, predict_rows, read_outputs, write_records
from .recipes import NotServable, Preprocessor, recipes_from_info

__all__ = ["BadRow", "ExportError", "ExportedModel", "InputError", "InputRows", "NotServable", "Preprocessor",
           "check_golden", "load_export", "predict_rows", "read_inputs", "read_outputs", "recipes_from_info",
           "write_records"]
