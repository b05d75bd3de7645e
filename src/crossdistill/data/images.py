"""Image sources: scikit-learn's bundled 8x8 digits, MNIST subsets; AV-MNIST's PCA weakening."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

from crossdistill.data.sources import MNIST_TEST, MNIST_TEST_LABELS, MNIST_TRAIN5K


def sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """(1797, 8, 8) float32 in [0, 1], labels (1797,). Bundled with scikit-learn (UCI optdigits test set)."""
    bunch = load_digits()
    return (bunch.images / 16.0).astype(np.float32), bunch.target.astype(np.int64)


def mnist_train5k(root: Path) -> tuple[np.ndarray, np.ndarray]:
    """5000 MNIST training images (500 per digit) as (N, 28, 28) float32 in [0, 1]."""
    path = MNIST_TRAIN5K.locate(root) / MNIST_TRAIN5K.probe
    table = np.loadtxt(path, delimiter=",", dtype=np.float32)
    return (table[:, :-1].reshape(-1, 28, 28) / 255.0).astype(np.float32), table[:, -1].astype(np.int64)


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as handle:
        raw = handle.read()
    dims = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def mnist_test10k(root: Path) -> tuple[np.ndarray, np.ndarray]:
    folder = MNIST_TEST.locate(root)
    MNIST_TEST_LABELS.locate(root)
    images = _read_idx(folder / MNIST_TEST.probe).astype(np.float32) / 255.0
    return images, _read_idx(folder / MNIST_TEST_LABELS.probe).astype(np.int64)


def pca_weaken(train: np.ndarray, others: list[np.ndarray], energy: float) -> list[np.ndarray]:
    """Reconstruct images from the top principal components holding ``energy`` of the variance (AV-MNIST keeps
    25%). PCA is fitted on ``train`` only; returns [train, *others] reconstructed."""
    if energy >= 1.0:
        return [train, *others]
    shape = train.shape[1:]
    pca = PCA(n_components=energy, svd_solver="full").fit(train.reshape(len(train), -1))
    rebuild = lambda x: pca.inverse_transform(pca.transform(x.reshape(len(x), -1))).reshape(-1, *shape)  # noqa: E731
    return [rebuild(x).astype(np.float32) for x in (train, *others)]
