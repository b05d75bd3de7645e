"""Atomic, pickle-free checkpoint files: weights as safetensors, training state loadable with
``torch.load(weights_only=True)``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn


def atomic_path(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` so that readers see the old file or the complete new one, never a half-written one."""
    tmp = atomic_path(path)
    tmp.write_text(text)
    os.replace(tmp, path)


def save_weights(state: dict[str, torch.Tensor], path: Path) -> None:
    tmp = atomic_path(path)
    save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(tmp))
    os.replace(tmp, path)


def save_state(state: dict[str, Any], path: Path) -> None:
    tmp = atomic_path(path)
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_state(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


class CheckpointMismatchError(ValueError):
    """A checkpoint whose keys or shapes do not fit the model."""


def load_weights(model: nn.Module, path: Path) -> None:
    """Load safetensors weights, naming every missing, unexpected or mis-shaped key before touching the model."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        state = load_file(str(path))
    except Exception as error:  # safetensors raises its own error types
        raise CheckpointMismatchError(f"{path}: not a readable safetensors file ({error})") from None
    expected = model.state_dict()
    problems = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
                for k, v in expected.items() if k in state and state[k].shape != v.shape]
    problems += [f"unexpected {k}" for k in state if k not in expected]
    problems += [f"missing {k}" for k in expected if k not in state]
    if problems:
        shown = "; ".join(problems[:6]) + (f"; ... {len(problems) - 6} more" if len(problems) > 6 else "")
        raise CheckpointMismatchError(f"checkpoint {path} does not fit the model: {shown}")
    model.load_state_dict(state)
