"""The sections of an experiment that describe one thing each: augmentation, data, a model (encoders or an
external module), a loss term, training. ``config.Experiment`` assembles them (and re-exports them)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SpecAugment(Strict):
    """Random augmentation of (C, F, T) maps: circular time shift, SpecAugment masks (Park et al. 2019), and
    frequency warping / time stretching (vocal tract length perturbation, Jaitly & Hinton 2013)."""

    time_shift: int = Field(0, ge=0, description="max frames of random circular shift")
    freq_masks: int = Field(0, ge=0)
    freq_width: int = Field(0, ge=0)
    time_masks: int = Field(0, ge=0)
    time_width: int = Field(0, ge=0)
    freq_warp: float = Field(0.0, ge=0, lt=0.5, description="random frequency scaling 1 ± warp (VTLP-like)")
    time_stretch: float = Field(0.0, ge=0, lt=0.5, description="random time scaling 1 ± stretch (speed)")


class DataConfig(Strict):
    dataset: str = "av-digits"
    root: str | None = None
    folds: int | list[int] = Field(1, description="leave-speakers-out folds: k (the first k) or a list of fold ids")
    seed: int = Field(0, description="seed of the data split and of the audio-image pairing")
    options: dict[str, Any] = Field(default_factory=dict, description="dataset-specific options")
    augment: dict[str, SpecAugment] = Field(default_factory=dict, description="per-modality augmentation")
    workers: int | Literal["auto"] = Field(
        "auto", description="processes decoding files (manifest data): 0 decodes in this process; auto uses the "
        "available cores for tables of 5,000 rows or more, none for smaller ones (workers would only compete with "
        "the compute threads)")
    in_memory: bool | Literal["auto"] = Field(
        "auto", description="decoded files (manifest data) held in memory (true), or read from the decoded store "
        "on disk a batch at a time (false: data larger than memory); auto holds a modality when it takes at most "
        "a quarter of the memory available")
    loader_workers: int | Literal["auto"] = Field(
        "auto", description="DataLoader worker processes making the training batches (rows read and transformed, "
        "augmentation): 0 makes them in the training process; auto uses 2 when a split is read from the decoded "
        "store a batch at a time (in_memory), none when every input is already in memory")
    full_check: bool = Field(False, description="re-hash every shard of the decoded store when opening it (by "
                             "default only the files' sizes are checked)")

    def reading(self) -> dict[str, Any]:
        """How ``open_dataset`` reads files (workers, in memory or from the store, full check)."""
        return {"workers": self.workers, "in_memory": self.in_memory, "full_check": self.full_check}

    @field_validator("workers", "loader_workers")
    @classmethod
    def _workers_valid(cls, workers: int | str) -> int | str:
        if isinstance(workers, int) and workers < 0:
            raise ValueError("must be 0 (no worker process), a positive count, or auto")
        return workers


    @field_validator("folds")
    @classmethod
    def _folds_valid(cls, folds: int | list[int]) -> int | list[int]:
        if isinstance(folds, int) and folds < 1 or isinstance(folds, list) and (not folds or min(folds) < 0):
            raise ValueError("folds must be a positive count or a non-empty list of fold ids (0, 1, ...)")
        return folds

    @property
    def fold_ids(self) -> list[int]:
        return list(range(self.folds)) if isinstance(self.folds, int) else list(self.folds)


class EncoderSpec(BaseModel):
    """An encoder by registry name; every other key is passed to its builder (checked against its signature)."""

    model_config = ConfigDict(extra="allow")
    name: str

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class ExternalSpec(Strict):
    """A model built by your own code (any ``nn.Module``: torchvision, timm, Hugging Face, ...), wrapped to the
    ``Outputs`` contract by naming the layers to tap."""

    factory: str | None = Field(None, description="'package.module:callable' returning the nn.Module (or a name "
                                "registered from Python)")
    hf: str | None = Field(None, description="instead of a factory: a Hugging Face transformers model (a local "
                           "folder, a packaged name such as all-MiniLM-L6-v2, or a hub name when online) over text "
                           "tokenised by its own tokenizer")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="passed to the factory")
    inputs: list[str] = Field(min_length=1, description="modalities passed to forward(), in order")
    embed: str | None = Field(None, description="layer whose output is the embedding (default: the logits)")
    taps: dict[str, str] = Field(default_factory=dict, description="feature name -> layer, read as feats.<name>")
    trainable: bool = Field(False, description="train it on the labels like a teacher of ours (default: frozen, "
                            "used as given)")

    @model_validator(mode="after")
    def _one_source(self) -> ExternalSpec:
        if (self.factory is None) == (self.hf is None):
            raise ValueError("external: give `factory` ('package.module:callable') or `hf` (a model name), one")
        return self


class ModelSpec(Strict):
    encoders: dict[str, EncoderSpec] = Field(default_factory=dict,
                                             description="modality -> encoder; the modalities the model reads")
    external: ExternalSpec | None = Field(None, description="instead of encoders: a model from your own code")
    fusion: Literal["concat", "gated", "identity"] = "concat"
    embed_dim: int = Field(64, ge=1, description="size of the fused embedding fed to the head")
    dropout: float = Field(0.1, ge=0, lt=1)
    checkpoint: str | None = Field(None, description="safetensors weights to load instead of training")
    train: dict[str, Any] = Field(default_factory=dict, description="overrides of the experiment's train")

    @property
    def modalities(self) -> list[str]:
        return list(self.external.inputs) if self.external else list(self.encoders)

    @model_validator(mode="after")
    def _encoders_or_external(self) -> ModelSpec:
        if bool(self.encoders) == bool(self.external):
            raise ValueError("give either `encoders` (modality -> encoder) or `external` (a model of your own)")
        return self


class TermSpec(Strict):
    """One loss term: ``weight * loss(student.<reads>, teacher.<reads>, batch, **kwargs)``."""

    loss: str
    weight: float = 1.0
    reads: str | list[str] | None = Field(None, description="'logits', 'embed' or 'feats.<name>', or a list of "
                                          "them for a loss reading several (ofa); default: the loss's own")
    teacher_reads: str | None = Field(None, description="the teacher's output, when it differs from `reads` "
                                      "(e.g. feats.image.stage1 for a student reading feats.audio.stage1)")
    kwargs: dict[str, Any] = Field(default_factory=dict)
    warmup_epochs: float = Field(0.0, ge=0, description="ramp the weight linearly from 0 over this many epochs "
                                 "(DKD's recipe); 0: full weight from the start")
    teacher: str | dict[str, float] | None = Field(
        None, description="the teacher this term reads: a name ('teacher' or one of extra_teachers), or "
        "{name: weight, ...} for the weighted mean of several teachers' outputs; default: the run's teacher")


class TrainConfig(Strict):
    epochs: int = Field(40, ge=1)
    batch_size: int = Field(64, ge=1, description="the global batch: with N processes, each takes 1/N of it")
    lr: float = Field(3e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    warmup_epochs: int = Field(1, ge=0)
    clip_grad: float | None = Field(5.0, gt=0)
    patience: int | None = Field(12, ge=1, description="early stopping on the validation metric")
    ema_horizon: float | None = Field(
        0.2, gt=0, le=1, description="time constant of an exponential moving average of the weights, as a share "
        "of all training steps; the average is what gets validated and kept (None: the raw weights)")
    select_on: Literal["labels", "teacher", "last"] = Field(
        "labels", description="model selection: validation labels, agreement with the teacher, or none (the "
        "last epoch's weights, as protocols that fix the epoch count)"
    )
    optimizer: Literal["adamw", "sgd"] = "adamw"
    momentum: float = Field(0.0, ge=0, lt=1, description="sgd only")
    schedule: Literal["cosine", "constant"] = Field(
        "cosine", description="after the linear warm-up: cosine decay to 0, or a constant learning rate")
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32", description="autocast of the forward pass: bf16 (CPU or GPU), fp16 (GPU, with loss scaling)")
    nonfinite: Literal["stop", "skip"] = Field(
        "stop", description="a NaN/inf loss: stop with a message naming the term and step (the last checkpoint is "
        "kept), or skip the batch and count it (metrics.jsonl: skipped_steps)")
    checkpoint_every: int = Field(1, ge=1, description="write last.pt and metrics.jsonl every this many epochs "
                                  "(and at the end): long runs of tiny models spend their time writing otherwise")
    checkpoint_steps: int = Field(0, ge=0, description="also write last.pt every this many steps inside an epoch "
                                  "(0: at epoch ends only): a killed run resumes from that step, exactly")
    device: str = "auto"
    progress: bool = True
    log: list[Literal["tensorboard", "mlflow"]] = Field(
        default_factory=list, description="experiment trackers that record every model's hyper-parameters, "
        "per-epoch scalars and test metrics (optional extras: crossdistill[tensorboard], crossdistill[mlflow])")


Range = tuple[float, float]


class TuneSpec(Strict):
    """``crossdistill tune``'s search space (docs/tune.md). Each trial trains one student: the task's loss (where
    the student has labels) plus at most one distillation term drawn from ``terms`` ("none": no term, the student
    alone), with a log-uniform weight, the term's temperature and options, a warm-up and the learning rate.
    Every range is ``[low, high]``; a range with low == high fixes the value."""

    trials: int = Field(20, ge=1, description="trials per fold (a study continues up to this many)")
    terms: list[str] | None = Field(None, description="candidate terms ('none' = the student alone); default: "
                                    "none, kd, dist, dkd, ls_kd, mlld (those the task takes)")
    weight: Range = Field((0.1, 10.0), description="the term's weight, log-uniform")
    temperature: Range = Field((1.0, 8.0), description="for terms with a temperature, log-uniform")
    warmup_epochs: Range = Field((0.0, 0.0), description="the term's warm-up, uniform (0: none)")
    lr: Range | None = Field(None, description="learning rate, log-uniform; default: train.lr / 3 to train.lr * 3")
    options: dict[str, dict[str, Range]] = Field(default_factory=dict, description="more of a term's own options, "
                                                 "log-uniform: {dkd: {beta: [1, 8]}}")
    train: dict[str, Range] = Field(default_factory=dict, description="more trainer options, log-uniform: "
                                    "{weight_decay: [1e-5, 1e-2]}")
    pruner: Literal["median", "halving", "none"] = Field("median", description="stops trials whose validation "
                                                         "curve falls behind (median of earlier trials, or "
                                                         "successive halving)")
    final_seeds: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4], min_length=1,
                                   description="seeds of the final comparison runs")

    @field_validator("weight", "temperature", "warmup_epochs", "lr")
    @classmethod
    def _ordered(cls, value: Range | None) -> Range | None:
        if value is not None and not 0 <= value[0] <= value[1]:
            raise ValueError(f"a range is [low, high] with 0 <= low <= high, got {list(value)}")
        return value
