"""Encoders by name and ``build_model``: a ``ModelSpec`` + ``DataInfo`` -> ``MultiModalModel``."""

from __future__ import annotations

import inspect
from collections.abc import Callable

from torch import nn

from crossdistill.config import ConfigError, ModelSpec
from crossdistill.data.batch import DataInfo
from crossdistill.models.conv import image_cnn, spec_cnn
from crossdistill.models.external import build_external
from crossdistill.models.fusion import MultiModalModel
from crossdistill.models.outputs import Outputs
from crossdistill.models.pretrained_image import efficientnet_lite0
from crossdistill.models.tabular import tabular_mlp
from crossdistill.models.text import text_bag, text_gru, text_transformer
from crossdistill.models.vector import identity, mlp
from crossdistill.registry import Registry

ENCODERS: Registry[Callable[..., nn.Module]] = Registry("encoder")
ENCODERS.register("image_cnn")(image_cnn)
ENCODERS.register("spec_cnn")(spec_cnn)
ENCODERS.register("mlp")(mlp)
ENCODERS.register("identity")(identity)
ENCODERS.register("text_bag")(text_bag)
ENCODERS.register("text_gru")(text_gru)
ENCODERS.register("text_transformer")(text_transformer)
ENCODERS.register("tabular_mlp")(tabular_mlp)
ENCODERS.register("efficientnet_lite0")(efficientnet_lite0)


def check_modalities(spec: ModelSpec, info: DataInfo, role: str) -> None:
    """Stop before training when a model reads a modality the data set lacks."""
    for modality in spec.modalities:
        if modality not in info.modalities:
            raise ConfigError(f"{role} reads modality {modality!r} but the dataset has: "
                              f"{', '.join(sorted(info.modalities))}")


def build_encoder(modality: str, spec: ModelSpec, info: DataInfo, role: str) -> nn.Module:
    encoder_spec = spec.encoders[modality]
    builder = ENCODERS.get(encoder_spec.name)
    modality_spec = info.modalities[modality]
    parameters = [p for p in inspect.signature(builder).parameters if p != "in_shape"]
    from_data = {k: v for k, v in modality_spec.meta.items() if k in parameters}  # e.g. vocab_size, categories
    allowed = [p for p in parameters if p not in from_data]
    unknown = sorted(set(encoder_spec.kwargs) - set(allowed))
    if unknown:
        raise ConfigError(f"{role}.encoders.{modality}: encoder {encoder_spec.name!r} has no option "
                          f"{', '.join(unknown)}; its options: {', '.join(allowed)}")
    text_encoder = "vocab_size" in parameters
    if text_encoder != (modality_spec.dtype == "int64"):
        kind = "token ids" if modality_spec.dtype == "int64" else f"{modality_spec.dtype} tensors"
        raise ConfigError(f"{role}.encoders.{modality}: encoder {encoder_spec.name!r} does not fit modality "
                          f"{modality!r}, which holds {kind} of shape {modality_spec.shape}")
    return builder(modality_spec.shape, **from_data, **encoder_spec.kwargs)


def build_model(spec: ModelSpec, info: DataInfo, role: str = "model") -> nn.Module:
    """A randomly initialised model over ``spec``'s modalities (or the ``external`` model its factory builds);
    ``role`` ("teacher", "student") names it in error messages."""
    check_modalities(spec, info, role)
    if spec.external is not None:
        return build_external(spec.external, info)
    encoders = {m: build_encoder(m, spec, info, role) for m in spec.modalities}
    return info.task.build_model(encoders, spec, info, role)  # the model the task needs (a head, two towers)


__all__ = ["ENCODERS", "MultiModalModel", "Outputs", "build_model", "check_modalities"]
