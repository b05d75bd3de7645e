"""What a model costs, checked on models whose costs are known by hand, and how runs are aggregated."""

import pytest
import torch
from torch import nn

from crossdistill.data.batch import ModalitySpec
from crossdistill.evaluate.efficiency import count_flops, count_params, efficiency, latency_ms
from crossdistill.results import summarize


class TwoLayers(nn.Module):
    """x (16) -> Linear(16, 32) -> ReLU -> Linear(32, 4): 2 * (16 * 32 + 32 * 4) FLOPs for one sample."""

    modalities = ["x"]

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))

    def forward(self, inputs):
        return self.net(inputs["x"])


SPECS = {"x": ModalitySpec((16,))}


def test_flops_params_latency_and_size_of_a_known_model(tmp_path):
    from crossdistill.checkpoint import save_weights

    model = TwoLayers()
    assert count_params(model) == 16 * 32 + 32 + 32 * 4 + 4
    assert count_flops(model, SPECS) == 2 * (16 * 32 + 32 * 4)  # a multiply-add counts as 2
    assert latency_ms(model, SPECS, 1, 5) > 0
    weights = tmp_path / "w.safetensors"
    save_weights(model.state_dict(), weights)
    cost = efficiency(model, SPECS, weights, 3)
    assert cost["size_bytes"] == weights.stat().st_size and not cost["latency_excludes_pretrained"]
    # a modality computed by a frozen pretrained model is counted in parameters and size, said for latency
    specs = {"x": ModalitySpec((16,), meta={"pretrained_params": 1000})}
    cost = efficiency(model, specs, weights, 3)
    assert cost["params"] == count_params(model) + 1000 and cost["frozen_pretrained_params"] == 1000
    assert cost["size_bytes"] == weights.stat().st_size + 4000 and cost["latency_excludes_pretrained"]


def test_latency_is_the_median_of_its_repeats(monkeypatch):
    ticks = iter([0.0, 0.001, 0.0, 0.005, 0.0, 0.002])  # three timed calls: 1 ms, 5 ms, 2 ms
    monkeypatch.setattr("crossdistill.evaluate.efficiency.time.perf_counter", lambda: next(ticks))
    assert latency_ms(TwoLayers(), SPECS, 1, 3) == pytest.approx(2.0)


def test_runs_aggregate_as_mean_and_sample_std():
    assert summarize([0.5, 0.7, 0.9]) == {"mean": pytest.approx(0.7), "std": pytest.approx(0.2),
                                          "per_seed": [0.5, 0.7, 0.9]}
    assert summarize([0.8]) == {"mean": 0.8, "std": 0.0, "per_seed": [0.8]}  # (shown as "n = 1", not "± 0")
    assert torch.tensor(summarize([1.0, 2.0])["std"]) == pytest.approx(2 ** -0.5)
