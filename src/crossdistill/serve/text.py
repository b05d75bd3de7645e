"""Text as token ids, for training and for a deployed student alike: a word or character vocabulary fitted on
the training rows (numpy only), or the word pieces of a pretrained model's ``tokenizer.json`` (the
``tokenizers`` package, no PyTorch)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

PAD, UNK = 0, 1
WORD = re.compile(r"\w+|[^\w\s]")


class WordTokenizer:
    """``fit`` on the training texts only, then ``encode`` any text to (max_length,) ids: 0 pads, 1 is unknown.
    Words are lower-cased ``\\w+`` runs and single punctuation marks; ``char`` keeps every lower-cased character."""

    def __init__(self, level: str = "word", max_length: int = 32, min_count: int = 1, max_vocab: int = 20000
                 ) -> None:
        if level not in ("word", "char"):
            raise ValueError(f"tokenizer level must be 'word' or 'char', got {level!r}")
        self.level, self.max_length, self.min_count, self.max_vocab = level, max_length, min_count, max_vocab
        self.vocab: dict[str, int] = {}

    def tokens(self, text: str) -> list[str]:
        text = text.lower()
        return WORD.findall(text) if self.level == "word" else list(text)

    def fit(self, texts: list[str]) -> WordTokenizer:
        counts = Counter(token for text in texts for token in self.tokens(text))
        kept = sorted((t for t, c in counts.items() if c >= self.min_count), key=lambda t: (-counts[t], t))
        self.vocab = {token: i + 2 for i, token in enumerate(kept[: self.max_vocab - 2])}
        return self

    @property
    def vocab_size(self) -> int:
        return len(self.vocab) + 2

    def encode(self, texts: list[str]) -> np.ndarray:
        """(N, max_length) int64 ids."""
        ids = np.full((len(texts), self.max_length), PAD, dtype=np.int64)
        for row, text in enumerate(texts):
            tokens = [self.vocab.get(t, UNK) for t in self.tokens(text)][: self.max_length]
            ids[row, : len(tokens)] = tokens
        return ids

    @classmethod
    def from_state(cls, state: dict) -> WordTokenizer:
        tokenizer = cls(state["level"], state["max_length"])
        tokenizer.vocab = dict(state["vocab"])
        return tokenizer

    def state(self) -> dict:
        """Everything needed to encode text at inference (saved beside an exported student)."""
        return {"level": self.level, "max_length": self.max_length, "vocab": self.vocab}


def pad_pieces(encodings: list[Any], max_length: int) -> np.ndarray:
    """Word-piece encodings (each with ``.ids``) -> (N, max_length) int64 ids, truncated and padded with 0."""
    ids = np.zeros((len(encodings), max_length), dtype=np.int64)
    for row, encoding in enumerate(encodings):
        tokens = encoding.ids[:max_length]
        ids[row, : len(tokens)] = tokens
    return ids


class PieceTokenizer:
    """The word pieces of a ``tokenizer.json`` (a pretrained model's), padded with id 0 to ``max_length``."""

    def __init__(self, path: Path, max_length: int) -> None:
        try:
            from tokenizers import Tokenizer as HFTokenizer
        except ImportError:
            raise ValueError("word-piece text needs the tokenizers package: pip install tokenizers") from None
        self.max_length = max_length
        self.inner = HFTokenizer.from_file(str(path))
        self.inner.no_padding()
        self.inner.no_truncation()

    def encode(self, texts: list[str]) -> np.ndarray:
        """(N, max_length) int64 ids."""
        return pad_pieces(self.inner.encode_batch(texts), self.max_length)
