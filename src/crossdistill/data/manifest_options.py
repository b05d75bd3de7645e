"""The configuration of a ``manifest`` data set: which table, which columns are which modality, the label, how to
split (what the label means is the experiment's ``task``). Validated by pydantic before any file is read."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

FILE_KINDS = ("image", "audio")


class ModalityColumns(BaseModel):
    """Which column(s) make a modality, and how to decode them."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["image", "audio", "text", "tabular", "features", "text_embedding", "distribution"]
    column: str | None = Field(None, description="the column (image/audio path, text, feature vector)")
    folder: str = Field("", description="file columns: paths are relative to this folder (itself relative to "
                        "the manifest's)")
    numeric: list[str] = Field(default_factory=list, description="tabular: numeric columns (standardised)")
    categorical: list[str] = Field(default_factory=list, description="tabular: categorical columns (embedded)")
    size: int = Field(32, ge=4, description="image: resized to size x size")
    grayscale: bool = False
    sample_rate: int = Field(8000, gt=0, description="audio: resampled to this rate")
    seconds: float = Field(1.0, gt=0, description="audio: centre-padded or cropped to this length")
    n_fft: int = 256
    hop: int = 128
    n_mels: int = 32
    tokenizer: Literal["word", "char", "hf"] = Field("word", description="text: a vocabulary of words or "
                                                     "characters fitted on the training rows, or hf: the pretrained "
                                                     "word pieces of `model`")
    max_length: int = Field(32, ge=1, description="text: tokens kept")
    min_count: int = Field(1, ge=1, description="text: rarer tokens become the unknown token")
    vocabulary: str | None = Field(None, description="text: reuse the tokenizer of this modality from a run's "
                                   "data_info.json (so a teacher trained there reads the text the same way)")
    model: str = Field("all-MiniLM-L6-v2", description="text_embedding: the pretrained sentence model (frozen; "
                       "its embeddings are computed once and cached with the data); text with tokenizer hf: "
                       "whose tokenizer")
    optional: bool = Field(False, description="rows may lack this modality (empty cell): the models fuse the "
                           "modalities present (masked fusion)")

    @model_validator(mode="after")
    def _columns_given(self) -> ModalityColumns:
        if self.kind == "tabular" and not (self.numeric or self.categorical):
            raise ValueError("a tabular modality needs numeric and/or categorical columns")
        if self.kind in ("tabular", "text_embedding") and self.optional:
            raise ValueError(f"a {self.kind} modality cannot be optional")
        if self.kind != "tabular" and not self.column:
            raise ValueError(f"a {self.kind} modality needs `column`")
        return self

    def columns(self) -> list[str]:
        return [*self.numeric, *self.categorical] if self.kind == "tabular" else [str(self.column)]


class JoinSpec(BaseModel):
    """A second table whose columns are added to each row with the same key (e.g. per-rater scores by id)."""

    model_config = ConfigDict(extra="forbid")
    path: str
    key: str = Field(description="the key column, in both tables (e.g. id)")
    format: Literal["csv", "tsv", "jsonl", "json", "parquet"] | None = None
    column_names: list[str] | None = None


class ManifestOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="the manifest file; relative file paths in it are relative to its folder")
    modalities: dict[str, ModalityColumns]
    format: Literal["csv", "tsv", "jsonl", "json", "parquet"] | None = Field(
        None, description="the table's format when its extension does not say (e.g. tsv for a .txt)")
    column_names: list[str] | None = Field(None, description="names of the columns of a CSV/TSV without header")
    label: str | None = Field(None, description="label column: class name or number (or a value to regress)")
    label_bins: list[float] | None = Field(None, description="a numeric label column cut into classes at these "
                                           "edges (e.g. [0.0]: negative <= 0 < positive)")
    drop_labels: list[str] = Field(default_factory=list, description="label values whose rows are left out "
                                   "(e.g. a class too small to split)")
    split_column: str | None = Field(None, description="column holding train / val / test")
    ratios: tuple[float, float, float] = Field((0.7, 0.15, 0.15), description="train/val/test when no column")
    group_column: str | None = Field(None, description="keep each group (speaker, patient) in one split")
    val_groups: list[str] | None = Field(None, description="with group_column: the groups that form the "
                                         "validation split (give test_groups too; the other groups train)")
    test_groups: list[str] | None = Field(None, description="with group_column: the groups that form the test split")
    repeats: int = Field(1, ge=1, description="folds: this many seeded random splits (stratified ratios, or "
                         "group fractions), fold k cut with seed data.seed + k, so that results are not those of "
                         "one small test set")
    skip_bad_rows: bool = Field(False, description="drop rows that do not decode (counted in the log)")
    join: JoinSpec | None = Field(None, description="add the columns of a second table, matched by a key")
    eval_path: str | None = Field(None, description="supervision transfer: `path` holds unlabelled pairs (all "
                                  "for training, no label column needed); this labelled manifest, with the same "
                                  "columns, gives the validation and test splits (cut by `ratios`' last two)")

    @model_validator(mode="after")
    def _repeats_are_random_cuts(self) -> ManifestOptions:
        if self.repeats > 1 and (self.split_column or self.val_groups or self.test_groups or self.eval_path):
            raise ValueError("repeats > 1 needs random splits (ratios, or group_column without named groups): "
                             "a split column, named groups or an eval_path give one fixed split")
        return self
