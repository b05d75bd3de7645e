"""The public Python API: light to import, every public name resolves, and the pieces a user's own loop needs
(Batch.collate, TeacherCache.over) behave (the examples run them end to end: tests/test_examples.py)."""

import subprocess
import sys

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

import crossdistill
from crossdistill import Batch, TeacherCache
from crossdistill.data.mfeat import MultipleFeatures
from crossdistill.tasks import build_task


def test_import_is_light_and_every_public_name_resolves():
    done = subprocess.run([sys.executable, "-c", "import sys, crossdistill; print('torch' in sys.modules)"],
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
    for name in crossdistill.__all__:
        assert getattr(crossdistill, name) is not None, name
    with pytest.raises(AttributeError, match="has no attribute 'distil'"):
        crossdistill.distil  # noqa: B018


def mfeat_samples(data_root, count=300):
    data = MultipleFeatures(data_root, {}, 0, build_task("classification"))
    views = {v: torch.from_numpy(data.views[v][:count]).float() for v in ("mor", "zer")}
    return [{"mor": views["mor"][i], "zer": views["zer"][i], "label": int(data.labels[i]), "index": 1000 + i,
             "labeled": i % 2 == 0} for i in range(count)]


def test_batch_collate_reads_a_users_samples(data_root):
    samples = mfeat_samples(data_root, 4)
    batch = Batch.collate(samples)
    assert set(batch.inputs) == {"mor", "zer"} and batch.inputs["zer"].shape == (4, 47)
    assert batch.index.tolist() == [1000, 1001, 1002, 1003] and batch.labeled.tolist() == [True, False, True, False]
    with pytest.raises(KeyError, match="each sample needs index"):
        Batch.collate([{"mor": samples[0]["mor"], "label": 1}])


def test_teacher_cache_over_a_users_loader_stores_and_reuses_its_outputs(data_root, tmp_path):
    torch.manual_seed(0)
    teacher = crossdistill.wrap_model(nn.Sequential(nn.Linear(6, 10)), ["mor"], trainable=False)
    samples = mfeat_samples(data_root)
    loader = DataLoader(samples, batch_size=64, collate_fn=Batch.collate)
    cache = TeacherCache.over(teacher, loader, root=tmp_path, data_key="mfeat-300")
    batch = Batch.collate([samples[i] for i in (7, 250, 3)])
    with torch.no_grad():
        assert torch.allclose(cache(batch).logits, teacher(batch).logits, atol=1e-6)
    again = TeacherCache.over(teacher, loader, root=tmp_path, data_key="mfeat-300")
    assert again.directory == cache.directory and len(list(tmp_path.iterdir())) == 1  # opened, not rebuilt
    other = TeacherCache.over(teacher, loader, root=tmp_path, data_key="mfeat-300-v2")  # a new key rebuilds
    assert other.directory != cache.directory
    with pytest.raises(ValueError, match="the batches held 300 rows, 500 were announced"):
        TeacherCache.over(teacher, loader, root=tmp_path / "short", data_key="x", rows=500)


def test_run_refuses_overrides_for_a_loaded_config(tiny_config):
    exp = crossdistill.load_config(tiny_config)
    with pytest.raises(crossdistill.ConfigError, match="overrides apply to a YAML path"):
        crossdistill.run(exp, overrides=["train.epochs=1"])
