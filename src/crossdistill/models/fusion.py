"""A model over one or several modalities: per-modality encoders, a fusion, a classification head."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from crossdistill.data.batch import Batch
from crossdistill.models.outputs import Outputs


def _masked(embeds: list[Tensor], present: Tensor | None) -> list[Tensor]:
    """Zero the embedding of each row's missing modalities; ``present`` (B, M) in {0, 1}."""
    if present is None:
        return embeds
    return [e * present[:, i : i + 1] for i, e in enumerate(embeds)]


class IdentityFusion(nn.Module):
    """Concatenate the embeddings as they are, no projection (``embed_dim`` unused): over one identity encoder
    the whole model is its linear head."""

    def __init__(self, dims: list[int], embed_dim: int) -> None:
        super().__init__()
        self.out_dim = sum(dims)

    def forward(self, embeds: list[Tensor], present: Tensor | None = None) -> Tensor:
        return torch.cat(_masked(embeds, present), dim=1)  # (B, sum of dims)


class ConcatFusion(nn.Module):
    """Concatenate the encoders' embeddings, project to ``embed_dim``. A missing modality's embedding is zero."""

    def __init__(self, dims: list[int], embed_dim: int) -> None:
        super().__init__()
        self.out_dim = embed_dim
        self.project = nn.Sequential(nn.Linear(sum(dims), embed_dim), nn.ReLU())

    def forward(self, embeds: list[Tensor], present: Tensor | None = None) -> Tensor:
        return self.project(torch.cat(_masked(embeds, present), dim=1))  # (B, embed_dim)


class GatedFusion(nn.Module):
    """Project each embedding to ``embed_dim``, sum them weighted by softmax gates computed from all of them
    (a gated multimodal unit in the spirit of Arevalo et al. 2017). A missing modality gets no gate weight."""

    def __init__(self, dims: list[int], embed_dim: int) -> None:
        super().__init__()
        self.out_dim = embed_dim
        self.projections = nn.ModuleList(nn.Linear(d, embed_dim) for d in dims)
        self.gate = nn.Linear(sum(dims), len(dims))

    def forward(self, embeds: list[Tensor], present: Tensor | None = None) -> Tensor:
        embeds = _masked(embeds, present)
        logits = self.gate(torch.cat(embeds, dim=1))  # (B, M)
        if present is not None:
            logits = logits.masked_fill(present == 0, -1e4)  # a missing modality gets no weight
        gates = torch.softmax(logits, dim=1)  # (B, M)
        projected = torch.stack([p(e) for p, e in zip(self.projections, embeds, strict=True)], dim=1)  # (B,M,D)
        return torch.relu((gates.unsqueeze(-1) * projected).sum(dim=1))  # (B, embed_dim)


FUSIONS = {"concat": ConcatFusion, "gated": GatedFusion, "identity": IdentityFusion}


class MultiModalModel(nn.Module):
    """``Batch`` (or a dict of modality tensors) -> ``Outputs``. Reads exactly ``self.modalities``, and for each
    the optional ``"<modality>.present"`` (B,) mask: rows where a modality is missing are fused without it
    (masked fusion), so data with missing modalities trains and a modality can be removed at test time."""

    def __init__(self, encoders: dict[str, nn.Module], num_classes: int, fusion: str = "concat",
                 embed_dim: int = 64, dropout: float = 0.1) -> None:
        super().__init__()
        self.modalities = list(encoders)
        self.encoders = nn.ModuleDict(encoders)
        self.fusion = FUSIONS[fusion]([e.out_dim for e in encoders.values()], embed_dim)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.fusion.out_dim, num_classes))

    def forward(self, batch: Batch | dict[str, Tensor]) -> Outputs:
        inputs = batch.inputs if isinstance(batch, Batch) else batch
        embeds, feats = [], {}
        for name in self.modalities:
            embed, encoder_feats = self.encoders[name](inputs[name])
            embeds.append(embed)
            feats.update({f"{name}.{k}": v for k, v in encoder_feats.items()})
        masks = [inputs.get(f"{name}.present") for name in self.modalities]
        present = None  # every modality present: no masking (and an export graph without it)
        if any(m is not None for m in masks):
            present = torch.stack([torch.ones_like(e[:, 0]) if m is None else m.to(e.dtype)
                                   for m, e in zip(masks, embeds, strict=True)], dim=1)  # (B, M)
        fused = self.fusion(embeds, present)  # (B, embed_dim)
        return Outputs(logits=self.head(fused), embed=fused, feats=feats)
