import numpy as np
import pytest
import torch

from crossdistill.config import SpecAugment
from crossdistill.data import DATASETS, open_dataset
from crossdistill.data.audio import log_mel
from crossdistill.data.loader import BatchLoader, spec_augment
from crossdistill.data.sources import FSDD, MFEAT
from crossdistill.data.splits import label_budget_mask, pair_by_label, stratified_fractions
from crossdistill.serve.decode import fit_length
from crossdistill.serve.frontend import mel_filterbank
from crossdistill.tasks import build_task

CLASSIFICATION = build_task("classification")


def test_pairing_matches_labels_without_replacement_then_cycles():
    clips = np.array([0] * 5 + [1] * 2)
    pool = np.array([0, 0, 1, 1, 1, 0])  # class 0 has 3 images, class 1 has 3
    chosen = pair_by_label(clips, pool, seed=3)
    assert (pool[chosen] == clips).all()
    first_three = chosen[:3]
    assert len(set(first_three.tolist())) == 3  # without replacement until exhausted
    assert chosen[3] == chosen[0] and chosen[4] == chosen[1]  # then cycles in the same order
    assert (pair_by_label(clips, pool, seed=3) == chosen).all()  # deterministic
    assert not (pair_by_label(clips, pool, seed=4) == chosen).all()


def test_stratified_fractions_partition_every_class():
    labels = np.repeat(np.arange(4), 30)
    parts = stratified_fractions(labels, [4, 1, 1], seed=0)
    assert sorted(np.concatenate(parts).tolist()) == list(range(120))
    assert [np.bincount(labels[p]).tolist() for p in parts] == [[20] * 4, [5] * 4, [5] * 4]


def test_label_budget_is_stratified_seeded_and_keeps_every_class():
    labels = np.repeat(np.arange(10), 200)
    mask = label_budget_mask(labels, 0.1, seed=1)
    assert mask.sum() == 200 and (np.bincount(labels[mask]) == 20).all()
    assert (label_budget_mask(labels, 0.1, seed=1) == mask).all()
    assert (label_budget_mask(labels, 0.001, seed=1).sum()) == 10  # at least one per class
    assert label_budget_mask(labels, 0.0, seed=1).sum() == 0


def test_av_digits_splits_leave_speakers_out(av_fold):
    groups = {split: set(av_fold[split].groups) for split in ("train", "val", "test")}
    assert groups["test"] == {"george"} and groups["val"] == {"jackson"}
    assert not groups["train"] & (groups["test"] | groups["val"])
    assert len(groups["train"]) == 4
    sizes = {split: len(av_fold[split]) for split in ("train", "val", "test")}
    assert sizes == {"train": 2000, "val": 500, "test": 500}
    assert av_fold.info.modalities["audio"].shape == (1, 32, 63)
    assert av_fold.info.modalities["image"].shape == (1, 8, 8)
    indices = torch.cat([av_fold[s].index for s in ("train", "val", "test")])
    assert indices.unique().numel() == 3000  # every clip once, with its global index


def test_each_split_draws_images_from_its_own_pool():
    dataset = open_dataset("av-digits", None, {}, 0, CLASSIFICATION)
    fold = dataset.fold(0)
    train_pool = dataset.pools["train"][0]
    mean, std = float(train_pool.mean()), float(train_pool.std())
    rows = lambda x: {tuple(np.round(r, 4)) for r in x.reshape(len(x), -1)}  # noqa: E731
    for split in ("train", "val", "test"):
        drawn = fold[split].inputs["image"].numpy() * std + mean
        assert rows(drawn) <= rows(dataset.pools[split][0]), split
    pools = [set(map(tuple, dataset.pools[s][0].reshape(len(dataset.pools[s][0]), -1))) for s in ("train", "test")]
    assert len(pools[0] & pools[1]) <= 2  # disjoint rows (scikit-learn digits holds a few exact duplicates)


def test_image_label_agrees_with_clip_label(av_fold):
    """A nearest-centroid classifier on the paired images recovers the clip labels (pairing is by label)."""
    data = av_fold["train"]
    x = data.inputs["image"].flatten(1)
    centroids = torch.stack([x[data.target == c].mean(0) for c in range(10)])
    predicted = torch.cdist(x, centroids).argmin(1)
    assert (predicted == data.target).float().mean() > 0.85


def test_folds_rotate_test_and_validation_speakers():
    dataset = open_dataset("av-digits", None, {}, 0, CLASSIFICATION)
    assert dataset.num_folds == 6
    described = [dataset.fold(k).description for k in (1, 5)]
    assert described == ["test speaker jackson, validation speaker lucas",
                         "test speaker yweweler, validation speaker george"]
    with pytest.raises(ValueError, match="fold 6 out of range"):
        dataset.fold(6)


def test_preprocessing_is_cached_on_disk(monkeypatch):
    import crossdistill.data.fsdd as fsdd

    open_dataset("av-digits", None, {}, 0, CLASSIFICATION)  # warm
    calls = []
    monkeypatch.setattr(fsdd, "log_mel", lambda *a, **k: calls.append(1))
    open_dataset("av-digits", None, {}, 0, CLASSIFICATION)
    assert calls == []  # second run reads the cache, no spectrogram recomputed


def test_av_mnist_weakens_images_and_adds_noise():
    plain = open_dataset("av-mnist", None, {}, 0, CLASSIFICATION)
    weak = open_dataset("av-mnist", None, {"image_energy": 0.25, "snr_db": 0.0}, 0, CLASSIFICATION)
    fold_plain, fold_weak = plain.fold(0), weak.fold(0)
    assert fold_weak.info.modalities["image"].shape == (1, 28, 28)
    assert len(fold_weak["test"]) == 500
    a, b = fold_plain["train"].inputs["image"], fold_weak["train"].inputs["image"]
    assert not torch.allclose(a, b)
    assert (b.flatten(1).var(0).sum() < a.flatten(1).var(0).sum())  # less image variance kept
    assert not torch.allclose(fold_plain["train"].inputs["audio"], fold_weak["train"].inputs["audio"])


def test_log_mel_shapes_and_normalisation():
    assert mel_filterbank(32, 256, 8000).shape == (32, 129)
    waves = np.stack([fit_length(np.random.default_rng(i).standard_normal(3000).astype(np.float32), 8000)
                      for i in range(2)])
    spec = log_mel(waves, 8000, 256, 128, 32)
    assert spec.shape == (2, 1, 32, 63)
    assert torch.allclose(spec.std(dim=(1, 2, 3)), torch.ones(2), atol=1e-3)
    assert fit_length(np.ones(10, np.float32), 4).shape == (4,)


def test_spec_augment_changes_inputs_and_keeps_shape():
    x = torch.randn(8, 1, 32, 63)
    aug = SpecAugment(time_shift=5, freq_masks=1, freq_width=4, time_masks=1, time_width=8,
                      freq_warp=0.1, time_stretch=0.1)
    y = spec_augment(x, aug, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and not torch.allclose(x, y)


def test_loader_gives_every_budget_the_same_number_of_steps(av_fold):
    labeled = torch.from_numpy(label_budget_mask(av_fold["train"].target.numpy(), 0.02, 0))
    alone = BatchLoader(av_fold["train"], 64, shuffle=True, labeled=labeled, only_labeled=True)
    full = BatchLoader(av_fold["train"], 64, shuffle=True, labeled=labeled)
    batches = list(alone)
    assert len(batches) == len(list(full)) == 2000 // 64
    assert all(bool(b.labeled.all()) for b in batches)  # only the labelled share, cycled
    assert set(torch.cat([b.index for b in batches]).tolist()) <= set(av_fold["train"].index[labeled].tolist())


def test_list_datasets_describes_modalities_sizes_and_licence():
    desc = open_dataset("av-digits", None, {}, 0, CLASSIFICATION).describe()
    assert desc["modalities"] == {"audio": [1, 32, 63], "image": [1, 8, 8]}
    assert "CC BY-SA 4.0" in desc["licence"]
    assert DATASETS.names() == ["av-digits", "av-mnist", "emoji-sentiment", "fsdd-transcripts", "hf", "manifest",
                                "mfeat", "sklearn", "synthetic-lupi", "synthetic-mfh"]


def test_content_digests_match_the_pinned_releases(data_root):
    """The digest ``fetch`` verifies downloads against is the one of the real files."""
    assert FSDD.content_digest(data_root) == FSDD.sha256
    assert MFEAT.content_digest(data_root) == MFEAT.sha256


def test_label_budget_never_marks_unlabelled_pairs():
    labels = np.array([-1, -1, 0, 0, 1, 1, -1, 1])
    mask = label_budget_mask(labels, 1.0, seed=0)
    assert mask.tolist() == (labels >= 0).tolist()
