"""A Hugging Face ``transformers`` model by name (``external: {hf: <local model folder, packaged name, or hub
name>}``) as a teacher over a text modality. The text column must be tokenised by the model's own tokenizer
(``tokenizer: hf, model: <the same>``): the keyword inputs (``input_ids``, ``attention_mask``, and
``token_type_ids`` where the model takes them) are built here from those ids, padding id 0. The embedding is the
attention-masked mean of the last hidden states (``pooled``, as sentence-transformers pool); the logits are the
model's own when it is a sequence classifier of the task's classes, else a linear head on ``pooled`` that the
teacher's training fits (the body stays frozen unless ``trainable``).
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import torch
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


class HuggingFaceTower(nn.Module):
    """``forward(ids (B, L) int64) -> logits (B, K)``; ``pooled`` sees the (B, hidden) embedding."""

    def __init__(self, name: str, num_classes: int, trainable: bool) -> None:
        super().__init__()
        try:
            from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification
        except ImportError:
            raise ConfigError("external.hf needs transformers: pip install 'crossdistill[text]'") from None
        where, local = model_location(name)
        config = AutoConfig.from_pretrained(where, local_files_only=local)
        classifier = config.num_labels == num_classes and any(
            a.endswith("ForSequenceClassification") for a in (config.architectures or []))
        loader = AutoModelForSequenceClassification if classifier else AutoModel
        self.model = loader.from_pretrained(where, local_files_only=local)
        self.accepts = set(inspect.signature(self.model.forward).parameters)
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

    def forward(self, ids: Tensor) -> Tensor:
        mask = (ids != 0).long()  # (B, L)
        inputs = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.accepts:
            inputs["token_type_ids"] = torch.zeros_like(ids)
        out = self.model(**inputs, output_hidden_states=True)
        hidden = out.hidden_states[-1]  # (B, L, hidden)
        weights = mask.unsqueeze(-1).to(hidden.dtype)
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
