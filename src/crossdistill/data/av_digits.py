"""Audio-visual digits (the AV-MNIST construction): each spoken digit paired by label with a handwritten one.

``av-digits``: FSDD audio + scikit-learn's 8x8 digits. ``av-mnist``: FSDD audio + MNIST 28x28, optionally
weakened by PCA (``image_energy``) and with noisy audio (``snr_db``). Splits leave speakers out: fold k tests
on one speaker, validates on the next, trains on the rest; images are split once (seeded) and each clip draws
an image of its digit from its own split's pool, so no test image or test voice is seen in training.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from pydantic import Field

from crossdistill.data.batch import DataInfo, FoldData, ModalitySpec, SplitData
from crossdistill.data.fsdd import AudioOptions, SpokenDigits, load_spoken_digits
from crossdistill.data.images import mnist_test10k, mnist_train5k, pca_weaken, sklearn_digits
from crossdistill.data.sources import FSDD, MNIST_TEST, MNIST_TRAIN5K
from crossdistill.data.splits import pair_by_label, stratified_fractions

if TYPE_CHECKING:
    from crossdistill.tasks import Task

SPLITS = ("train", "val", "test")


class AVMnistOptions(AudioOptions):
    image_energy: float = Field(1.0, gt=0, le=1, description="share of image variance kept (AV-MNIST: 0.25)")
    val_fraction: float = Field(0.1, gt=0, lt=1, description="share of the MNIST-5k pool used for validation")


def speaker_fold(speakers: list[str], fold: int) -> tuple[str, str]:
    """(test speaker, validation speaker) of a fold."""
    return speakers[fold % len(speakers)], speakers[(fold + 1) % len(speakers)]


class AudioVisualDigits:
    """Shared machinery; subclasses say where the images come from."""

    name = ""
    licence = ""
    targets = "classes"  # what its label is (a task must accept it)
    Options: type[AudioOptions] = AudioOptions

    def __init__(self, root: Path, options: dict, seed: int, task: Task) -> None:
        self.task = task
        self.root, self.seed = root, seed
        self.options = self.Options.model_validate(options)
        self.audio: SpokenDigits = load_spoken_digits(root, self.options, seed)
        self.speakers = sorted(set(self.audio.speakers.tolist()))
        self.pools = self._image_pools()  # split -> (images (P, H, W), labels (P,))

    @property
    def num_folds(self) -> int:
        return len(self.speakers)

    def _image_pools(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        raise NotImplementedError

    def split_rows(self, fold: int) -> dict[str, np.ndarray]:
        test, val = speaker_fold(self.speakers, fold)
        who = self.audio.speakers
        return {"train": np.flatnonzero((who != test) & (who != val)),
                "val": np.flatnonzero(who == val), "test": np.flatnonzero(who == test)}

    def fold(self, fold: int) -> FoldData:
        if not 0 <= fold < self.num_folds:
            raise ValueError(f"{self.name}: fold {fold} out of range 0..{self.num_folds - 1}")
        rows = self.split_rows(fold)
        mean, std = self._image_moments()
        splits, digest = {}, hashlib.sha256(f"{self.name}:{self.options.model_dump_json()}:{self.seed}".encode())
        for split in SPLITS:
            clips = rows[split]
            chosen = self.pairing(fold, split)
            image = torch.from_numpy((self.pools[split][0][chosen] - mean) / std).unsqueeze(1).float()  # (N,1,H,W)
            splits[split] = SplitData(
                inputs={"audio": self.audio.spectrograms[clips], "image": image},
                target=torch.from_numpy(self.audio.digits[clips]),
                index=torch.from_numpy(clips),
                groups=self.audio.speakers[clips].tolist(),
            )
            digest.update(clips.tobytes() + chosen.tobytes())
            for tensor in splits[split].inputs.values():  # the preprocessed values themselves, not just options
                digest.update(tensor.numpy().tobytes())
        test, val = speaker_fold(self.speakers, fold)
        return FoldData(fold, splits, self.info({k: len(v) for k, v in splits.items()}),
                        f"test speaker {test}, validation speaker {val}", digest.hexdigest()[:20])

    def pairing(self, fold: int, split: str) -> np.ndarray:
        """(N,) the pool image each clip of the split is paired with (seeded by fold and split)."""
        clips, labels = self.split_rows(fold)[split], self.pools[split][1]
        return pair_by_label(self.audio.digits[clips], labels, self.seed * 1000 + 31 * fold + SPLITS.index(split))

    def paired_images(self, fold: int, split: str) -> np.ndarray:
        """(N, 1, H, W) the split's images as drawn (values in [0, 1], before standardisation)."""
        return self.pools[split][0][self.pairing(fold, split)][:, None]

    def _image_moments(self) -> tuple[float, float]:
        return float(self.pools["train"][0].mean()), float(self.pools["train"][0].std())

    def _normalise(self) -> dict:
        """The training pool's statistics the images are standardised with (an encoder may undo them)."""
        mean, std = self._image_moments()
        return {"mean": [mean], "std": [std]}

    def _image_recipe(self) -> dict:
        """How a deployed model's image is fed: a grayscale picture (or an array in [0, 1]) of the pool's size,
        standardised with the training pool's statistics."""
        return {"kind": "image", "size": int(self.pools["train"][0].shape[-1]), "grayscale": True}

    def info(self, sizes: dict[str, int]) -> DataInfo:
        image_shape = self.pools["train"][0].shape[1:]
        audio = self.options
        audio_recipe = {"kind": "audio", "sample_rate": audio.sample_rate, "samples": audio.clip_samples,
                        "n_fft": audio.n_fft, "hop": audio.hop, "n_mels": audio.n_mels, "top_db": audio.top_db,
                        "band_norm": audio.band_norm}
        if audio.snr_db is not None:  # (training mixed noise into clean clips; a device hears noisy ones)
            audio_recipe["noise"] = f"white noise at {audio.snr_db} dB SNR mixed in during training"
        return DataInfo(
            num_samples=sizes, num_classes=10,
            modalities={"audio": ModalitySpec(tuple(self.audio.spectrograms.shape[1:]),
                                              meta={"serving": audio_recipe}),
                        "image": ModalitySpec((1, *image_shape), meta={"normalise": self._normalise(),
                                                                      "serving": self._image_recipe()})},
            task=self.task, class_names=[str(d) for d in range(10)],
        )

    def describe(self) -> dict:
        sizes = {k: int(v.size) for k, v in self.split_rows(0).items()}
        info = self.info(sizes)
        return {"name": self.name, "modalities": {k: list(v.shape) for k, v in info.modalities.items()},
                "sizes (fold 0)": sizes, "folds": self.num_folds, "licence": self.licence}


class AVDigits(AudioVisualDigits):
    name = "av-digits"
    licence = f"audio: {FSDD.licence}; images: scikit-learn digits (UCI optdigits, CC BY 4.0)"

    def _image_pools(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        images, labels = sklearn_digits()
        # The audio splits are 4/1/1 speakers; the image pool is cut in the same proportions.
        parts = stratified_fractions(labels, [4, 1, 1], self.seed)
        return {split: (images[rows], labels[rows]) for split, rows in zip(SPLITS, parts, strict=True)}


class AVMnist(AudioVisualDigits):
    name = "av-mnist"
    licence = f"audio: {FSDD.licence}; images: {MNIST_TRAIN5K.licence}; {MNIST_TEST.licence}"
    Options = AVMnistOptions

    def _image_pools(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        images, labels = mnist_train5k(self.root)
        test_images, test_labels = mnist_test10k(self.root)
        val_share = self.options.val_fraction  # type: ignore[attr-defined]
        train_rows, val_rows = stratified_fractions(labels, [1 - val_share, val_share], self.seed)
        train, val, test = pca_weaken(images[train_rows], [images[val_rows], test_images],
                                      self.options.image_energy)  # type: ignore[attr-defined]
        return {"train": (train, labels[train_rows]), "val": (val, labels[val_rows]), "test": (test, test_labels)}

    def _image_recipe(self) -> dict:
        if self.options.image_energy < 1:  # type: ignore[attr-defined]
            return {"kind": "unservable", "why": "PCA-weakened images (image_energy < 1): the basis is not saved"}
        return super()._image_recipe()
