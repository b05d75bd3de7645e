"""The one output contract of every model."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor

from crossdistill.errors import CrossdistillError

Reads = str | tuple[str, ...]  # one named output, or several (a loss reading a tuple of them)


class MissingOutputError(CrossdistillError, KeyError):
    """A loss term reads an output the model does not produce."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass
class Outputs:
    logits: Tensor | None  # (B, K) a head's outputs; None for a model without a head (a dual encoder)
    embed: Tensor  # (B, D), the fused representation before the head
    feats: dict[str, Tensor] = field(default_factory=dict)  # named outputs and intermediate features

    def names(self) -> list[str]:
        return [*(["logits"] if self.logits is not None else []), "embed", *(f"feats.{k}" for k in self.feats)]

    def read(self, name: Reads) -> Tensor | tuple[Tensor, ...]:
        """``"logits"``, ``"embed"`` or ``"feats.<name>"`` -> tensor (a tuple of names -> a tuple of tensors);
        errors list what exists."""
        if isinstance(name, tuple):
            return tuple(self.read(n) for n in name)
        if name == "logits" and self.logits is not None or name == "embed":
            return getattr(self, name)
        if name.startswith("feats.") and name[6:] in self.feats:
            return self.feats[name[6:]]
        raise MissingOutputError(f"model has no output {name!r}; available: {', '.join(self.names())}")
