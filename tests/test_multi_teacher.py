"""Several teachers through the whole pipeline on real data: per-teacher terms and a weighted ensemble."""

import json

from crossdistill.config import load
from crossdistill.pipeline import run

AUDIO_TEACHER = "extra_teachers={audio_teacher: {encoders: {audio: {name: spec_cnn, channels: [4, 8]}}, " \
                "embed_dim: 16, train: {epochs: 1}}}"
PER_TEACHER = ("distill.terms=[{loss: ce}, {loss: kd, weight: 0.7}, "
               "{loss: kd, weight: 0.3, teacher: audio_teacher}]")
ENSEMBLE = ("variants={ensemble: {terms: [{loss: ce}, {loss: kd, teacher: {teacher: 1, audio_teacher: 3}}]}}")


def test_two_teachers_train_once_and_feed_their_terms(tiny_config, tmp_path):
    exp = load(tiny_config, [AUDIO_TEACHER, PER_TEACHER, ENSEMBLE, "train.epochs=1"])
    run_dir = run(exp, tmp_path)
    results = json.loads((run_dir / "results.json").read_text())
    models = results["models"]
    assert {"teacher", "audio_teacher", "baseline", "distilled", "ensemble"} <= set(models)
    assert models["audio_teacher"]["modalities"] == ["audio"]
    assert models["distilled"]["teachers"] == ["audio_teacher", "teacher"]
    assert [t.get("teachers") for t in models["distilled"]["terms"]] == [None, None, {"audio_teacher": 1.0}]
    assert models["ensemble"]["terms"][1]["teachers"] == {"teacher": 0.25, "audio_teacher": 0.75}
    assert (run_dir / "models" / "audio_teacher" / "fold0" / "checkpoints" / "best.safetensors").is_file()
