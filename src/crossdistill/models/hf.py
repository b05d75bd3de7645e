"""A Hugging Face ``transformers`` model by name (``external: {hf: <local model folder, packaged name, or hub
name>}``) as a teacher over one modality, its keyword inputs built as its own tokenizer or image processor says:

- text: the column must be tokenised by the model's own tokenizer (``tokenizer: hf, model: <the same>``); the
  inputs are ``input_ids``, ``attention_mask`` (padding id 0) and ``token_type_ids`` where the model takes them;
- images: ``pixel_values`` as its ``preprocessor_config.json`` says (the data source's standardisation undone,
  gray repeated to RGB, resized to its ``size``, normalised with its ``image_mean`` / ``image_std``).

The embedding is the (attention-masked) mean of the last hidden states (``pooled``, as sentence-transformers
pool); the logits are the model's own when it is a classifier of the task's classes, else a linear head on
``pooled`` that the teacher's training fits (the body stays frozen unless ``trainable``).
"""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crossdistill.config import ConfigError
from crossdistill.data.pretrained import PACKAGED, pretrained_folder


def model_location(name: str) -> tuple[str, bool]:
    """(what ``from_pretrained`` reads, whether only local files may be read); a folder that holds no model is
    named."""
    if name in PACKAGED or Path(name).expanduser().is_dir():
        folder = pretrained_folder(name)
        if not (folder / "config.json").is_file():
            raise ConfigError(f"external.hf: {folder} is not a Hugging Face model folder (no config.json)")
        return str(folder), True
    return name, os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "")


def image_processing(where: str, local: bool) -> dict[str, Any]:
    """(size, mean, std) of a model's ``preprocessor_config.json``."""
    from transformers.utils import cached_file

    path = cached_file(where, "preprocessor_config.json", local_files_only=local,
                       _raise_exceptions_for_missing_entries=False)
    if path is None:
        raise ConfigError(f"external.hf {where}: no preprocessor_config.json, so its image inputs are unknown")
    config = json.loads(Path(path).read_text())
    size = config.get("size", 224)
    side = size if isinstance(size, int) else size.get("height", size.get("shortest_edge", 224))
    return {"size": int(side), "mean": list(config.get("image_mean", [0.5] * 3)),
            "std": list(config.get("image_std", [0.5] * 3))}


class HuggingFaceTower(nn.Module):
    """``forward(ids (B, L) int64, or images (B, C, H, W)) -> logits (B, K)``; ``pooled`` sees the (B, hidden)
    embedding. ``normalise``: an image modality's standardisation (to undo)."""

    def __init__(self, name: str, num_classes: int, trainable: bool, image: bool = False,
                 normalise: dict | None = None) -> None:
        super().__init__()
        try:
            from transformers import (
                AutoConfig,
                AutoModel,
                AutoModelForImageClassification,
                AutoModelForSequenceClassification,
            )
        except ImportError:
            raise ConfigError("external.hf needs transformers: pip install 'crossdistill[text]'") from None
        where, local = model_location(name)
        config = AutoConfig.from_pretrained(where, local_files_only=local)
        suffix = "ForImageClassification" if image else "ForSequenceClassification"
        classifier = config.num_labels == num_classes and any(a.endswith(suffix) for a in config.architectures or [])
        loader = (AutoModelForImageClassification if image else AutoModelForSequenceClassification) if classifier \
            else AutoModel
        self.model = loader.from_pretrained(where, local_files_only=local)
        self.accepts = set(inspect.signature(self.model.forward).parameters)
        self.image = image_processing(where, local) if image else None
        if image:
            for key, values in (("data_mean", (normalise or {}).get("mean", [0.0])),
                                ("data_std", (normalise or {}).get("std", [1.0])),
                                ("model_mean", self.image["mean"]), ("model_std", self.image["std"])):
                self.register_buffer(key, torch.tensor(values, dtype=torch.float32).view(1, -1, 1, 1))
        self.pooled = nn.Identity()
        self.head = None if classifier else nn.Linear(config.hidden_size, num_classes)
        self.trainable = trainable
        if not trainable:
            self.model.requires_grad_(False)

    @property
    def needs_training(self) -> bool:
        """A head of ours to fit, or a body to fine-tune."""
        return self.head is not None or self.trainable

    def train(self, mode: bool = True) -> HuggingFaceTower:
        super().train(mode)
        self.model.train(mode and self.trainable)  # a frozen body stays in inference mode (no dropout)
        return self

    def _pixels(self, x: Tensor) -> Tensor:
        """(B, C, H, W) as the data source standardised it -> the model's ``pixel_values``."""
        pixels = x * self.data_std + self.data_mean  # back in [0, 1]
        if pixels.shape[1] == 1:
            pixels = pixels.expand(-1, 3, -1, -1)
        side = self.image["size"]
        if pixels.shape[-2:] != (side, side):
            pixels = F.interpolate(pixels, size=(side, side), mode="bilinear", align_corners=False)
        return (pixels - self.model_mean) / self.model_std

    def forward(self, x: Tensor) -> Tensor:
        if self.image is not None:
            out = self.model(pixel_values=self._pixels(x), output_hidden_states=True)
            mask = None
        else:
            mask = (x != 0).long()  # (B, L)
            inputs = {"input_ids": x, "attention_mask": mask}
            if "token_type_ids" in self.accepts:
                inputs["token_type_ids"] = torch.zeros_like(x)
            out = self.model(**inputs, output_hidden_states=True)
        hidden = out.hidden_states[-1]  # (B, L, hidden): tokens or patches
        weights = torch.ones_like(hidden[..., :1]) if mask is None else mask.unsqueeze(-1).to(hidden.dtype)
        pooled = self.pooled((hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0))  # (B, hidden)
        return out.logits if self.head is None else self.head(pooled)


def check_tokenizer(name: str, modality: str, meta: dict) -> None:
    """The text modality a model reads must hold the ids of that model's own tokenizer."""
    state = meta.get("tokenizer") or {}
    same = state.get("level") == "hf" and (state.get("model") == name or (
        Path(str(state.get("model"))).expanduser().is_dir() and Path(name).expanduser().is_dir()
        and Path(str(state["model"])).expanduser().resolve() == Path(name).expanduser().resolve()))
    if not same:
        raise ConfigError(f"external.hf {name!r} reads modality {modality!r}, whose text is not tokenised by its "
                          f"tokenizer: give that column `tokenizer: hf, model: {name}`")
