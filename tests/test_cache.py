import numpy as np
import pytest
import torch

from crossdistill.config import TermSpec
from crossdistill.distill import CacheRefused, Distiller, TeacherCache, resolve_terms
from crossdistill.distill import cache as cache_module
from crossdistill.models import build_model


@pytest.fixture
def teacher(av_fold, small_specs):
    torch.manual_seed(1)
    return build_model(small_specs[0], av_fold.info).eval()


def open_cache(teacher, fold, root, reads=("logits",), augmented=()):
    return TeacherCache.open(teacher, fold["train"], split="train", data_fingerprint=fold.fingerprint,
                             reads=list(reads), root=root, augmented=set(augmented))


@pytest.fixture
def builds(monkeypatch):
    calls = []
    original = cache_module._build
    monkeypatch.setattr(cache_module, "_build", lambda *a, **k: (calls.append(1), original(*a, **k))[1])
    return calls


def test_cache_hit_reuses_files(teacher, av_fold, tmp_path, builds):
    first = open_cache(teacher, av_fold, tmp_path)
    second = open_cache(teacher, av_fold, tmp_path)
    assert builds == [1] and first.directory == second.directory
    assert isinstance(second.arrays["logits"], np.memmap)  # memory-mapped, not loaded
    assert second.arrays["logits"].shape == (len(av_fold["train"]), 10)


def test_changed_teacher_weights_or_data_give_a_new_cache(teacher, av_fold, tmp_path, builds):
    first = open_cache(teacher, av_fold, tmp_path)
    with torch.no_grad():
        next(teacher.parameters()).add_(0.01)
    second = open_cache(teacher, av_fold, tmp_path)
    assert second.directory != first.directory and builds == [1, 1]
    other = TeacherCache.open(teacher, av_fold["train"], split="train", data_fingerprint="other-data",
                              reads=["logits"], root=tmp_path, augmented=set())
    assert other.directory not in (first.directory, second.directory)


def test_corrupt_cache_is_detected_and_rebuilt(teacher, av_fold, tmp_path, builds):
    first = open_cache(teacher, av_fold, tmp_path)
    path = first.directory / "logits.npy"
    del first
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0xFF  # flip bits in the last logit
    path.write_bytes(bytes(raw))
    rebuilt = open_cache(teacher, av_fold, tmp_path)
    assert builds == [1, 1]
    expected = teacher(av_fold["train"].batch(torch.arange(len(av_fold["train"]) - 1, len(av_fold["train"]))))
    assert np.allclose(rebuilt.arrays["logits"][-1], expected.logits[0].detach().numpy(), atol=1e-5)


def test_cached_and_online_distillation_give_the_same_losses(teacher, av_fold, tmp_path, small_specs):
    torch.manual_seed(0)
    student = build_model(small_specs[1], av_fold.info)
    probe = av_fold["train"].batch(torch.arange(4))
    terms = resolve_terms([TermSpec(loss="ce"), TermSpec(loss="kd"), TermSpec(loss="feature_mse")])
    distiller = Distiller(student, teacher, terms, probe=probe).eval()
    batch = av_fold["train"].batch(torch.tensor([5, 900, 17, 1999, 3]))
    online = distiller(batch)
    distiller.use_teacher_source(open_cache(teacher, av_fold, tmp_path, reads=distiller.teacher_reads()))
    cached = distiller(batch)
    for name in online:
        assert cached[name].item() == pytest.approx(online[name].item(), rel=1e-5, abs=1e-6), name


def test_random_teacher_side_augmentation_is_refused(teacher, av_fold, tmp_path):
    with pytest.raises(CacheRefused, match="augmented modality image"):
        open_cache(teacher, av_fold, tmp_path, augmented={"image"})
    assert open_cache(teacher, av_fold, tmp_path, augmented={"audio"})  # the student's side may be augmented


def test_unknown_sample_is_an_error(teacher, av_fold, tmp_path):
    cache = open_cache(teacher, av_fold, tmp_path)
    test_batch = av_fold["test"].batch(torch.arange(3))  # test clips were never cached
    with pytest.raises(KeyError, match="no entry for sample ids"):
        cache(test_batch)


def test_opening_a_valid_cache_hashes_no_file(teacher, av_fold, tmp_path, monkeypatch):
    """A second open checks the files' recorded sizes and times, not their bytes: no pass over the data."""
    open_cache(teacher, av_fold, tmp_path)

    def no_hashing(path):
        raise AssertionError(f"hashed {path}")

    monkeypatch.setattr(cache_module, "sha256_file", no_hashing)
    assert open_cache(teacher, av_fold, tmp_path).arrays["logits"].shape[0] == len(av_fold["train"])


def test_the_full_check_finds_an_alteration_the_cheap_one_cannot(teacher, av_fold, tmp_path, builds):
    import os

    first = open_cache(teacher, av_fold, tmp_path)
    path = first.directory / "logits.npy"
    del first
    stat = path.stat()
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0xFF
    path.write_bytes(bytes(raw))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size, same time: invisible to the cheap check
    open_cache(teacher, av_fold, tmp_path)
    assert builds == [1]
    TeacherCache.open(teacher, av_fold["train"], split="train", data_fingerprint=av_fold.fingerprint,
                      reads=["logits"], root=tmp_path, augmented=set(), full_check=True)
    assert builds == [1, 1]  # found and rebuilt


def test_a_cache_the_disk_cannot_hold_is_refused_with_the_numbers(teacher, av_fold, tmp_path, monkeypatch):
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(cache_module.shutil, "disk_usage", lambda folder: usage(10**6, 10**6 - 1000, 1000))
    with pytest.raises(CacheRefused, match=r"teacher cache \(\d+ rows of embed \(16,\), logits \(10,\), float32\) "
                                           r"needs 0\.\d\d GB but \S+ has 0\.00 GB free"):
        open_cache(teacher, av_fold, tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing half-written left behind
