import pytest
import torch

from crossdistill.config import ConfigError, ModelSpec
from crossdistill.data.batch import Batch, DataInfo, ModalitySpec
from crossdistill.models import ENCODERS, build_model
from crossdistill.tasks import build_task

INFO = DataInfo(num_samples={}, num_classes=7, modalities={
    "audio": ModalitySpec((1, 32, 63)), "image": ModalitySpec((1, 8, 8)), "vector": ModalitySpec((20,)),
    "text": ModalitySpec((10,), "int64", {"vocab_size": 50}),
    "table": ModalitySpec((5,), "float32", {"numeric": 3, "categories": [4, 3]})}, task=build_task("classification"))
INPUT_OF = {"image_cnn": "image", "spec_cnn": "audio", "mlp": "vector", "text_bag": "text", "text_gru": "text",
            "text_transformer": "text", "tabular_mlp": "table", "identity": "vector", "efficientnet_lite0": "image"}
FROZEN = {"efficientnet_lite0"}  # pretrained, frozen unless trainable: only the model's head and fusion learn
NO_LAYERS = {"identity"}  # the input itself: no intermediate layer to tap


def batch(size=3):
    inputs = {m: torch.randn(size, *s.shape) for m, s in INFO.modalities.items()}
    inputs["text"] = torch.randint(1, 50, (size, 10))
    inputs["text"][0, 6:] = 0  # padding
    inputs["table"][:, 3] = torch.tensor([0.0, 1.0, 3.0])[:size]  # category ids, 0 = unseen
    inputs["table"][:, 4] = torch.tensor([2.0, 0.0, 1.0])[:size]
    return Batch(inputs, torch.zeros(size).long(), torch.arange(size))


@pytest.mark.parametrize("name", ENCODERS.names())
def test_every_encoder_fits_the_output_contract(name):
    if name in FROZEN:
        pytest.importorskip("efficientnet_lite_pytorch")
    modality = INPUT_OF[name]
    model = build_model(ModelSpec.model_validate({"encoders": {modality: {"name": name}}, "embed_dim": 12}), INFO)
    out = model(batch())
    assert out.logits.shape == (3, 7) and out.embed.shape == (3, 12)
    assert (bool(out.feats) or name in NO_LAYERS) and all(k.startswith(f"{modality}.") for k in out.feats)
    assert model.modalities == [modality]
    out.logits.sum().backward()
    trained = [p for n, p in model.named_parameters() if not (name in FROZEN and n.startswith("encoders."))]
    assert all(p.grad is not None for p in trained)


@pytest.mark.parametrize("name", ["text_bag", "text_gru", "text_transformer"])
def test_text_encoders_ignore_padding(name):
    torch.manual_seed(0)
    model = build_model(ModelSpec.model_validate({"encoders": {"text": {"name": name}}}), INFO).eval()
    short = torch.tensor([[5, 9, 2, 7, 0, 0]])  # four tokens, padded to 6 ...
    long = torch.tensor([[5, 9, 2, 7, 0, 0, 0, 0, 0, 0]])  # ... and to 10
    assert torch.allclose(model({"text": short}).embed, model({"text": long}).embed, atol=1e-5)


def test_an_encoder_that_does_not_fit_the_modality_is_named():
    with pytest.raises(ConfigError, match="encoder 'text_bag' does not fit modality 'vector'"):
        build_model(ModelSpec.model_validate({"encoders": {"vector": {"name": "text_bag"}}}), INFO)
    with pytest.raises(ConfigError, match="encoder 'mlp' does not fit modality 'text', which holds token ids"):
        build_model(ModelSpec.model_validate({"encoders": {"text": {"name": "mlp"}}}), INFO)


@pytest.mark.parametrize("fusion", ["concat", "gated"])
def test_fusion_of_several_modalities(fusion):
    spec = ModelSpec.model_validate({"encoders": {"image": {"name": "image_cnn", "channels": [4, 8]},
                                                  "audio": {"name": "spec_cnn", "channels": [4]}},
                                     "fusion": fusion, "embed_dim": 10})
    model = build_model(spec, INFO).eval()
    out = model(batch())
    assert out.logits.shape == (3, 7)
    assert {"image.stage1", "audio.stage0"} <= set(out.feats)
    zeroed = batch()
    zeroed.inputs["image"].zero_()
    assert not torch.allclose(model(zeroed).logits, out.logits)  # both modalities matter


def test_unknown_encoder_and_option_are_named():
    available = "available: efficientnet_lite0, identity, image_cnn, mlp, spec_cnn"
    with pytest.raises(KeyError, match=f"unknown encoder 'resnet9'; {available}"):
        build_model(ModelSpec.model_validate({"encoders": {"image": {"name": "resnet9"}}}), INFO)
    with pytest.raises(ConfigError, match="encoder 'image_cnn' has no option widht; its options: channels"):
        build_model(ModelSpec.model_validate({"encoders": {"image": {"name": "image_cnn", "widht": 3}}}), INFO)


def test_model_reading_a_missing_modality_is_refused():
    spec = ModelSpec.model_validate({"encoders": {"video": {"name": "image_cnn"}}})
    expected = "teacher reads modality 'video' but the dataset has: audio, image, table, text, vector"
    with pytest.raises(ConfigError, match=expected):
        build_model(spec, INFO, role="teacher")


@pytest.mark.parametrize(("builder", "in_shape", "pool", "map_side"), [
    ("spec_cnn", (1, 32, 63), (2, 4), (4, 7)),  # the documented 2 bands x 4 time steps
    ("image_cnn", (1, 8, 8), (1, 1), (1, 1)),  # global average pooling of the last 1x1 map
    ("image_cnn", (3, 16, 16), (2, 2), (2, 2)),
])
def test_pool_sets_the_final_grid_and_out_dim(builder, in_shape, pool, map_side):
    """``pool`` is the final average-pooling grid: it sets ``out_dim`` and the flattened output's width,
    whatever the stages' own max-pooling did to the map (an earlier version let the last stage's 2x2 max-pool
    size overwrite it)."""
    encoder = ENCODERS.get(builder)(in_shape, pool=pool)
    assert encoder.pool == pool
    channels = encoder.stages[-1][0].out_channels
    assert encoder.out_dim == channels * pool[0] * pool[1]
    embed, feats = encoder(torch.randn(2, *in_shape))
    assert embed.shape == (2, encoder.out_dim)
    assert tuple(feats[f"stage{len(encoder.stages) - 1}"].shape[2:]) == map_side
