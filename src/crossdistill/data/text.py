"""A tokenizer built from the training text: word or character vocabulary, unknown token, fixed length."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

PAD, UNK = 0, 1
WORD = re.compile(r"\w+|[^\w\s]")


class Tokenizer:
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

    def fit(self, texts: list[str]) -> Tokenizer:
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
    def from_state(cls, state: dict) -> Tokenizer | PretrainedTokenizer:
        if state["level"] == "hf":
            return PretrainedTokenizer(state["model"], state["max_length"])
        tokenizer = cls(state["level"], state["max_length"])
        tokenizer.vocab = dict(state["vocab"])
        return tokenizer

    def state(self) -> dict:
        """Everything needed to encode text at inference (saved beside an exported student)."""
        return {"level": self.level, "max_length": self.max_length, "vocab": self.vocab}


class PretrainedTokenizer:
    """A Hugging Face tokenizer (the ``tokenizers`` library, installed by the ``[text]`` extra): the word pieces
    of a pretrained model, e.g. MiniLM's (``all-MiniLM-L6-v2``, packaged offline), or a ``tokenizer.json`` path.
    Same interface as ``Tokenizer``; ``fit`` learns nothing. Its padding id must be 0 (BERT-style vocabularies)."""

    level = "hf"

    def __init__(self, model: str, max_length: int = 32) -> None:
        from crossdistill.data.pretrained import tokenizer_file

        try:
            from tokenizers import Tokenizer as HFTokenizer
        except ImportError:
            raise ValueError("tokenizer: hf needs the tokenizers package: pip install 'crossdistill[text]'") from None
        self.model, self.max_length = model, max_length
        self.inner = HFTokenizer.from_file(str(tokenizer_file(model)))
        self.inner.no_padding()
        self.inner.no_truncation()
        if self.inner.token_to_id("[PAD]") not in (0, None):
            raise ValueError(f"tokenizer of {model}: its padding id is not 0")

    def fit(self, texts: list[str]) -> PretrainedTokenizer:
        return self

    @property
    def vocab_size(self) -> int:
        return self.inner.get_vocab_size()

    def encode(self, texts: list[str]) -> np.ndarray:
        """(N, max_length) int64 ids, truncated and padded with 0."""
        ids = np.zeros((len(texts), self.max_length), dtype=np.int64)
        for row, encoding in enumerate(self.inner.encode_batch(texts)):
            tokens = encoding.ids[: self.max_length]
            ids[row, : len(tokens)] = tokens
        return ids

    def state(self) -> dict:
        return {"level": "hf", "model": self.model, "max_length": self.max_length}
