"""The product's claim, checked end to end on real data: with scarce audio labels, an image teacher makes the
audio student better than the same student trained alone (same data, labels, seed, steps)."""

import pytest

from crossdistill import config, pipeline

CONFIG = """
data:
  dataset: av-digits
  folds: [2]
  augment:
    audio: {time_shift: 6, freq_masks: 1, freq_width: 4, time_masks: 1, time_width: 8}
student_labels: 0.02
seeds: [0]
teacher:
  encoders:
    image: {name: image_cnn, channels: [32, 64, 128]}
  embed_dim: 64
  train: {epochs: 5}
student:
  encoders:
    audio: {name: spec_cnn, channels: [8, 16, 32]}
  embed_dim: 32
distill:
  terms:
    - {loss: ce}
    - {loss: kd, kwargs: {temperature: 4.0}}
train: {epochs: 20, batch_size: 128, lr: 0.004, progress: false}
evaluate: {latency_repeats: 3}
"""


@pytest.mark.e2e
def test_image_teacher_lifts_the_audio_student_at_two_percent_labels(tmp_path):
    (tmp_path / "helps.yaml").write_text(CONFIG)
    run_dir = pipeline.run(config.load(tmp_path / "helps.yaml"), tmp_path / "runs")
    import json

    models = json.loads((run_dir / "results.json").read_text())["models"]
    teacher = models["teacher"]["metrics"]["accuracy"]["mean"]
    alone = models["baseline"]["metrics"]["accuracy"]["mean"]
    distilled = models["distilled"]["metrics"]["accuracy"]["mean"]
    assert teacher > 0.9
    assert distilled > alone + 0.05, (alone, distilled)
