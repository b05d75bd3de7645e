"""Tokenizers of a text column: a word or character vocabulary fitted on the training text, or the word pieces
of a pretrained model; both encode to fixed-length ids (the encoding itself lives in ``serve.text``, which a
deployed student uses too)."""

from __future__ import annotations

from crossdistill.serve.text import PAD, UNK, PieceTokenizer, WordTokenizer

__all__ = ["PAD", "UNK", "PretrainedTokenizer", "Tokenizer"]


class Tokenizer(WordTokenizer):
    """``fit`` on the training texts only, then ``encode`` any text to (max_length,) ids: 0 pads, 1 is unknown.
    A saved state may also name a pretrained model's tokenizer (``level: hf``)."""

    @classmethod
    def from_state(cls, state: dict) -> Tokenizer | PretrainedTokenizer:  # type: ignore[override]
        if state["level"] == "hf":
            return PretrainedTokenizer(state["model"], state["max_length"])
        return super().from_state(state)  # type: ignore[return-value]


class PretrainedTokenizer(PieceTokenizer):
    """A Hugging Face tokenizer (the ``tokenizers`` library, installed by the ``[text]`` extra): the word pieces
    of a pretrained model, e.g. MiniLM's (``all-MiniLM-L6-v2``, packaged offline), or a ``tokenizer.json`` path.
    Same interface as ``Tokenizer``; ``fit`` learns nothing. Its padding id must be 0 (BERT-style vocabularies)."""

    level = "hf"

    def __init__(self, model: str, max_length: int = 32) -> None:
        from crossdistill.data.pretrained import tokenizer_file

        path = tokenizer_file(model)  # (names the model when it has none)
        try:
            super().__init__(path, max_length)
        except ValueError:  # (the one it raises: the tokenizers package is missing)
            raise ValueError("tokenizer: hf needs the tokenizers package: pip install 'crossdistill[text]'") from None
        self.model = model
        if self.inner.token_to_id("[PAD]") not in (0, None):
            raise ValueError(f"tokenizer of {model}: its padding id is not 0")

    def fit(self, texts: list[str]) -> PretrainedTokenizer:
        return self

    @property
    def vocab_size(self) -> int:
        return self.inner.get_vocab_size()

    def state(self) -> dict:
        return {"level": "hf", "model": self.model, "max_length": self.max_length}
