"""Atomic, pickle-free checkpoint files: weights as safetensors, training state loadable with
``torch.load(weights_only=True)``."""

from __future__ import annotations

import hashlib
import io
import pickle
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from crossdistill.atomic import atomic_file
from crossdistill.errors import CrossdistillError

DIGEST_KEY = "crossdistill_sha256"  # safetensors metadata: the tensors' digest
STATE_FORMAT = 2


def tensors_digest(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of ``state`` in name order."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def save_weights(state: dict[str, torch.Tensor], path: Path) -> None:
    """safetensors, with the tensors' SHA-256 in its metadata (checked by ``load_weights``)."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    with atomic_file(path) as tmp:
        save_file(tensors, str(tmp), metadata={DIGEST_KEY: tensors_digest(tensors)})


def stored_digest(path: Path) -> str | None:
    """The digest a safetensors file of ours records (None: no such file, or one without it)."""
    if not Path(path).is_file():
        return None
    try:
        with safe_open(str(path), "pt") as handle:
            return (handle.metadata() or {}).get(DIGEST_KEY)
    except Exception:  # (unreadable: treated as absent, and rewritten)  # noqa: BLE001
        return None


def save_state(state: dict[str, Any], path: Path) -> None:
    """Training state (tensors, numbers, strings) in one atomic file: the ``torch.save`` payload wrapped with
    its SHA-256, so that a truncated or altered file is refused on load instead of resuming from wrong values."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    with atomic_file(path) as tmp:
        torch.save({"format": STATE_FORMAT, "sha256": hashlib.sha256(payload).hexdigest(),
                    "payload": torch.frombuffer(bytearray(payload), dtype=torch.uint8)}, tmp)


class CorruptCheckpointError(CrossdistillError, ValueError):
    """A checkpoint that is truncated, altered, or holds more than tensors (a pickle payload)."""


def _load_tensors_only(source: Any, path: Path) -> Any:
    try:
        return torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CorruptCheckpointError(f"{path}: refused: it holds Python objects beyond tensors and numbers (a "
                                     "pickle payload); crossdistill never unpickles files") from None
    except (RuntimeError, OSError, EOFError) as error:
        raise CorruptCheckpointError(f"{path}: truncated or not a checkpoint ({str(error).splitlines()[0]})") \
            from None


def load_state(path: Path) -> dict[str, Any]:
    """The training state ``save_state`` wrote, after checking its SHA-256."""
    outer = _load_tensors_only(path, path)
    if not isinstance(outer, dict) or outer.get("format") != STATE_FORMAT:
        raise CorruptCheckpointError(f"{path}: not a crossdistill training checkpoint (format {STATE_FORMAT})")
    payload = outer["payload"].numpy().tobytes()
    if hashlib.sha256(payload).hexdigest() != outer["sha256"]:
        raise CorruptCheckpointError(f"{path}: checksum mismatch: the file was altered or corrupted")
    return _load_tensors_only(io.BytesIO(payload), path)


class CheckpointMismatchError(CrossdistillError, ValueError):
    """A checkpoint whose keys or shapes do not fit the model."""


def load_weights(model: nn.Module, path: Path) -> None:
    """Load safetensors weights, naming every missing, unexpected or mis-shaped key before touching the model."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        state = load_file(str(path))
        with safe_open(str(path), "pt") as handle:
            stored = (handle.metadata() or {}).get(DIGEST_KEY)
    except Exception as error:  # safetensors raises its own error types
        raise CheckpointMismatchError(f"{path}: not a readable safetensors file ({error})") from None
    if stored is not None and stored != tensors_digest(state):  # (weights from elsewhere may carry none)
        raise CorruptCheckpointError(f"{path}: checksum mismatch: the weights were altered or corrupted")
    expected = model.state_dict()
    problems = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
                for k, v in expected.items() if k in state and state[k].shape != v.shape]
    problems += [f"unexpected {k}" for k in state if k not in expected]
    problems += [f"missing {k}" for k in expected if k not in state]
    if problems:
        shown = "; ".join(problems[:6]) + (f"; ... {len(problems) - 6} more" if len(problems) > 6 else "")
        raise CheckpointMismatchError(f"checkpoint {path} does not fit the model: {shown}")
    model.load_state_dict(state)
