"""The one output contract of every model."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor


class MissingOutputError(KeyError):
    """A loss term reads an output the model does not produce."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass
class Outputs:
    logits: Tensor  # (B, num_classes)
    embed: Tensor  # (B, D), the fused representation before the head
    feats: dict[str, Tensor] = field(default_factory=dict)  # named intermediate features

    def read(self, name: str) -> Tensor:
        """``"logits"``, ``"embed"`` or ``"feats.<name>"`` -> tensor; errors list what exists."""
        if name in ("logits", "embed"):
            return getattr(self, name)
        if name.startswith("feats.") and name[6:] in self.feats:
            return self.feats[name[6:]]
        known = ", ".join(["logits", "embed", *(f"feats.{k}" for k in self.feats)])
        raise MissingOutputError(f"model has no output {name!r}; available: {known}")
