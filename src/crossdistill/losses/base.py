"""What a registered loss is: a function of tensors plus what it reads and needs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor

from crossdistill.registry import Registry, summary

LossFn = Callable[..., Tensor]  # (student: Tensor, teacher: Tensor | None, batch: Batch, **kwargs) -> scalar


@dataclass(frozen=True)
class LossDef:
    fn: LossFn
    reads: str = "logits"  # default output read on both sides
    needs_teacher: bool = True
    adapter: bool = False  # the student side goes through a learned adapter sized to the teacher's
    summary: str = ""


LOSSES: Registry[LossDef] = Registry("loss")


def register_loss(name: str, *, reads: str = "logits", needs_teacher: bool = True,
                  adapter: bool = False) -> Callable[[LossFn], LossFn]:
    def add(fn: LossFn) -> LossFn:
        LOSSES.register(name)(LossDef(fn, reads, needs_teacher, adapter, summary(fn)))
        return fn

    return add


