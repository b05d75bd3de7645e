"""Models from elsewhere. ``ExternalModel``: any ``nn.Module`` (torchvision, timm, Hugging Face, your own) as a
teacher, its layers tapped by name. (Pretrained sentence models that preprocess a text column live in
``data.pretrained``: they run once, with the data.)"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from torch import Tensor, nn

from crossdistill.config import ConfigError, ExternalSpec
from crossdistill.data.batch import Batch, DataInfo
from crossdistill.models.outputs import Outputs


class ExternalModel(nn.Module):
    """Any ``nn.Module`` as a crossdistill model: ``forward(*inputs)`` gives the logits (a tensor, a tuple whose
    first item is the logits, or an object/dict with ``logits``); forward hooks on the named layers give the
    embedding and the feature maps. Frozen (eval mode, no gradients) unless ``trainable``."""

    def __init__(self, module: nn.Module, inputs: list[str], embed: str | None, taps: dict[str, str],
                 trainable: bool) -> None:
        super().__init__()
        self.module, self.modalities, self.trainable = module, list(inputs), trainable
        self._captured: dict[str, Tensor] = {}
        layers = dict(module.named_modules())
        for name, layer in (({"embed": embed} if embed else {}) | taps).items():
            if layer not in layers:
                shown = ", ".join(n for n in layers if n)[:300]
                raise ConfigError(f"external model has no layer {layer!r} (for {name}); its layers: {shown}")
            layers[layer].register_forward_hook(self._capture(name))
        self.embed_layer, self.taps = embed, dict(taps)
        if not trainable:
            self.requires_grad_(False)

    def _capture(self, name: str):  # noqa: ANN202
        def hook(module: nn.Module, args: tuple, output: Tensor) -> None:
            self._captured[name] = output[0] if isinstance(output, tuple) else output
        return hook

    def train(self, mode: bool = True) -> ExternalModel:
        return super().train(mode and self.trainable)  # a frozen model stays in inference mode

    def forward(self, batch: Batch | dict[str, Tensor]) -> Outputs:
        inputs = batch.inputs if isinstance(batch, Batch) else batch
        self._captured.clear()
        out = self.module(*[inputs[m] for m in self.modalities])
        logits = out[0] if isinstance(out, tuple | list) else out.get("logits") if isinstance(out, dict) \
            else getattr(out, "logits", out)
        embed = self._captured.get("embed", logits).flatten(1)  # (B, D)
        return Outputs(logits=logits, embed=embed, feats={n: self._captured[n] for n in self.taps})


REGISTERED: dict[str, Callable[..., nn.Module]] = {}  # factories named from Python (crossdistill.register_model)


def register_model(name: str, factory: Callable[..., nn.Module]) -> None:
    """Let configs name ``factory`` as ``external: {factory: <name>}`` in this process."""
    REGISTERED[name] = factory


def build_external(spec: ExternalSpec, info: DataInfo) -> ExternalModel:
    """Build ``spec.factory`` (a name registered from Python, or 'package.module:callable' to import) with
    ``spec.kwargs``, or the Hugging Face model ``spec.hf``; wrap the module."""
    if spec.hf is not None:
        from crossdistill.models.hf import HuggingFaceTower, check_tokenizer

        if len(spec.inputs) != 1:
            raise ConfigError(f"external.hf reads one modality, got inputs {spec.inputs}")
        modality = info.modalities[spec.inputs[0]]
        image = modality.dtype != "int64"
        if not image:
            check_tokenizer(spec.hf, spec.inputs[0], modality.meta)
        elif len(modality.shape) != 3:
            raise ConfigError(f"external.hf reads text (token ids) or images (C, H, W); modality {spec.inputs[0]!r} "
                              f"holds {modality.dtype} of shape {modality.shape}")
        tower = HuggingFaceTower(spec.hf, info.task.output_dim(info), spec.trainable, image,
                                 modality.meta.get("normalise"))
        return ExternalModel(tower, spec.inputs, spec.embed or "pooled", spec.taps, tower.needs_training)
    assert spec.factory is not None  # (the spec's validator: a factory or hf)
    factory = REGISTERED.get(spec.factory)
    if factory is None:
        module_name, _, attribute = spec.factory.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError, ValueError) as error:
            raise ConfigError(f"external factory {spec.factory!r} cannot be imported ({error}); write it as "
                              "'package.module:callable', or register it in this process with "
                              "crossdistill.register_model") from None
    module = factory(**spec.kwargs)
    if not isinstance(module, nn.Module):
        raise ConfigError(f"external factory {spec.factory!r} returned {type(module).__name__}, not an nn.Module")
    return ExternalModel(module, spec.inputs, spec.embed, spec.taps, spec.trainable)
