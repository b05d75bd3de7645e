"""A dual encoder for cross-modal retrieval: one tower per modality, each projected to a shared space and
L2-normalised, and a learnable temperature (CLIP: Radford et al., "Learning Transferable Visual Models From
Natural Language Supervision", ICML 2021).

The Outputs contract: no head, so no ``logits``; the towers are named outputs: ``feats.query`` and
``feats.gallery`` (B, D) normalised embeddings and ``feats.log_scale`` (B, 1) the log logit scale (the same
value in every row, so that it is a per-sample output the teacher cache can store like any other). ``embed`` is
``[z_query | z_gallery]``; ``feats`` also holds the encoders' own features as ``<modality>.<name>``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crossdistill.data.batch import Batch
from crossdistill.models.outputs import Outputs

MAX_LOG_SCALE = math.log(100.0)  # CLIP clips the logit scale at 100


TOWER_OUTPUTS = ("feats.query", "feats.gallery", "feats.log_scale")  # what retrieval losses and metrics read


def logit_scale(log_scale: Tensor) -> Tensor:
    """(B, 1) per-sample log logit scale -> the scale s (scalar, the batch mean of exp(log s))."""
    return log_scale.exp().mean()


class Tower(nn.Module):
    """One modality's encoder, a linear projection to the shared space, L2 normalisation."""

    def __init__(self, encoder: nn.Module, embed_dim: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.project = nn.Linear(encoder.out_dim, embed_dim)

    def forward(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        embed, feats = self.encoder(x)
        return F.normalize(self.project(embed), dim=1), feats  # (B, D)


class DualEncoder(nn.Module):
    """Query tower over the first modality of the spec, gallery tower over the second."""

    def __init__(self, encoders: dict[str, nn.Module], embed_dim: int, temperature: float = 0.07) -> None:
        super().__init__()
        if len(encoders) != 2:
            raise ValueError(f"a dual encoder has two towers, got modalities {list(encoders)}")
        self.modalities = list(encoders)  # [query, gallery]
        self.towers = nn.ModuleDict({m: Tower(e, embed_dim) for m, e in encoders.items()})
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))

    def embed_one(self, modality: str, x: Tensor) -> Tensor:
        """(B, ...) inputs of one modality -> (B, D) normalised embeddings (what ``search`` and export run)."""
        return self.towers[modality](x)[0]

    def forward(self, batch: Batch | dict[str, Tensor]) -> Outputs:
        inputs = batch.inputs if isinstance(batch, Batch) else batch
        (query, q_feats), (gallery, g_feats) = (self.towers[m](inputs[m]) for m in self.modalities)
        log_scale = self.log_scale.clamp(max=MAX_LOG_SCALE).expand(query.shape[0], 1)  # (B, 1)
        feats = {f"{m}.{k}": v for m, fs in zip(self.modalities, (q_feats, g_feats), strict=True)
                 for k, v in fs.items()}
        return Outputs(logits=None, embed=torch.cat([query, gallery], 1),
                       feats={"query": query, "gallery": gallery, "log_scale": log_scale, **feats})
