"""MST-Distill: a mixture of specialised teachers, chosen per sample by a router, for cross-modal distillation
(Li et al., "MST-Distill: Mixture of Specialized Teachers for Cross-Modal Knowledge Distillation", ACM MM 2025,
arXiv 2507.07015), in three stages as the authors' training script runs them:

1. co-training (``cotrain_epochs``): a copy of the teacher, an auxiliary teacher over the teacher's modalities the
   student lacks (the cross-modal teacher, built from the teacher's encoders) and the student train together:
   each its cross-entropy plus a KL divergence (T = 4) towards each of the two others, gradients flowing both ways;
2. masking (``mask_epochs``): the three models frozen, a masking network per (teacher, layer) learns a sigmoid
   gate on that layer's channels so that the masked teacher's prediction matches the student's (KL, T = 4),
   suppressing what the student's modality cannot see; the epoch with the lowest validation loss is kept;
3. the student's own training (the run's epochs): each masked teacher is a specialised teacher; a router reads the
   student's logits and picks the top-``k`` of them per sample; the loss is their KL to the student (T = 4) plus
   a load-balancing KL between the mean routing distribution and the uniform one.

Stages 1 and 2 run in ``prepare`` (before the student's epochs; their seconds count in the run's ``prepare_s``);
the teachers they train belong to this one (fold, seed) run and are never cached. Every cross-entropy reads only
the labels the student's budget allows (none at 0%: co-training is then mutual distillation alone).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crossdistill.config import ConfigError
from crossdistill.data.batch import Batch, SplitData
from crossdistill.losses.base import CLASSES, register_loss_module
from crossdistill.losses.logit import hinton_kd
from crossdistill.losses.masking import ChannelMask, mask_points, masked, output_of
from crossdistill.losses.task import budget_rows

log = logging.getLogger("crossdistill")
KD_TEMPERATURE = 4.0  # every KL of the authors' code


class Router(nn.Module):
    """The instance-level routing network: the student's logits -> one score per specialised teacher (two linear
    layers, K -> 2K -> E, no activation between them, as in the authors' GateNet)."""

    def __init__(self, num_classes: int, ways: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(num_classes, 2 * num_classes), nn.Linear(2 * num_classes, ways))

    def forward(self, student_logits: Tensor) -> Tensor:
        return self.layers(student_logits)  # (B, E)


def load_balancing(gate: Tensor) -> Tensor:
    """KL(uniform || mean routing distribution) / E: keeps the router from sending every sample to one teacher.
    gate: (B, E) softmax rows -> scalar (the authors' ``KLDivLoss(batchmean)`` over the E-vector)."""
    mean = gate.mean(dim=0)  # (E,)
    uniform = torch.full_like(mean, 1.0 / len(mean))
    return (uniform * (uniform.log() - mean.clamp_min(1e-12).log())).sum() / len(mean)


def routed_kd(student_logits: Tensor, teacher_logits: Tensor, gate: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The top-``k`` specialised teachers of each sample (by routing score) teach it: mean over the k picks of
    T^2 KL(p^teacher || p^student) at T = 4. The pick is not differentiable: the router learns from the
    load-balancing term alone, as in the authors' code.

    student_logits: (B, K), teacher_logits: (B, E, K), gate: (B, E) -> (scalar loss, (B, k) picks).
    """
    picks = gate.topk(k, dim=1).indices  # (B, k)
    chosen = teacher_logits.gather(1, picks.unsqueeze(-1).expand(-1, -1, teacher_logits.shape[2]))  # (B, k, K)
    loss = torch.stack([hinton_kd(student_logits, chosen[:, i].detach(), temperature=KD_TEMPERATURE)
                        for i in range(k)]).mean()
    return loss, picks


def _rows_of(split: SplitData, batch_size: int, generator: torch.Generator | None) -> Iterator[Tensor]:
    n = len(split)
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for start in range(0, n, batch_size):
        rows = order[start : start + batch_size]
        if generator is None or len(rows) > 1:  # (no training batch of one sample for BatchNorm)
            yield rows


@register_loss_module("mst", reads="logits", single_teacher=True, needs=CLASSES)
class MixtureOfSpecialisedTeachers(nn.Module):
    """MST-Distill: the student is taught, sample by sample, by the specialised teacher a router picks among the
    masked versions of a co-trained teacher and of a co-trained cross-modal auxiliary teacher (Li et al.,
    "MST-Distill: Mixture of Specialized Teachers for Cross-Modal Knowledge Distillation", ACM MM 2025; the stages
    and defaults of the authors' code: T = 4, top-1 routing, 3 attention heads, two masked layers per teacher,
    w_kl halved after epochs 0, 30, 60, ... and w_lb times 0.9 after epochs 0, 10, 20, ...).

    student: (B, K) logits; the teacher's value is not read (its masked copies run online on the batch). Stages
    1-2 run in ``prepare`` (module docstring); the student's own cross-entropy is not included: add a ``ce`` term.
    """

    def __init__(self, student: Tensor, teacher: Tensor, *, cotrain_epochs: int = 10, mask_epochs: int = 10,
                 k: int = 1, mask_layers: int = 2, heads: int = 3, kl_weight: float = 1.0,
                 balance_weight: float = 1.0) -> None:
        super().__init__()
        if min(cotrain_epochs, mask_epochs) < 0 or k < 1 or mask_layers < 1:
            raise ConfigError("loss 'mst': epochs >= 0, k >= 1 and mask_layers >= 1 "
                              f"(got {cotrain_epochs}, {mask_epochs}, {k}, {mask_layers})")
        self.num_classes = student.shape[1]
        self.cotrain_epochs, self.mask_epochs, self.k, self.mask_layers, self.heads = (
            cotrain_epochs, mask_epochs, k, mask_layers, heads)
        self.kl_weight, self.balance_weight = kl_weight, balance_weight
        self.epoch = 0.0  # set by the Distiller: the weights' schedule follows the student's epochs
        self.teachers = nn.ModuleDict()  # "teacher", "auxiliary": built in prepare
        self.masks = nn.ModuleDict()  # "<teacher>|<point with / for .>": one per specialised teacher
        self.router: Router | None = None
        self.register_buffer("routing_share", torch.zeros(0))  # (E,) share of the last batch sent to each
        self.register_buffer("prepared", torch.zeros((), dtype=torch.bool))

    # ---- stage 0: building --------------------------------------------------------------------------------------
    def _build(self, teacher: nn.Module, context) -> None:  # noqa: ANN001  (a PrepareContext)
        if context.student is None or context.new_teacher_over is None:
            raise ConfigError("loss 'mst' trains the student and an auxiliary teacher before the student's "
                              "epochs: its PrepareContext needs `student` and `new_teacher_over`")
        student_modalities = set(getattr(context.student, "modalities", []))
        teacher_modalities = list(getattr(teacher, "modalities", []))
        other = [m for m in teacher_modalities if m not in student_modalities] or teacher_modalities
        if not teacher_modalities:
            raise ConfigError("loss 'mst' needs a teacher built from encoders (it masks their layers)")
        self.teachers["teacher"] = copy.deepcopy(teacher).requires_grad_(True)
        self.teachers["auxiliary"] = context.new_teacher_over(other)
        probe = context.train.batch(torch.arange(min(4, len(context.train))))
        for name, model in self.teachers.items():
            for point in mask_points(model, self.mask_layers):
                feature = output_of(model, point, probe)
                self.masks[f"{name}|{point.replace('.', '/')}"] = ChannelMask(feature, self.heads)
        self.router = Router(self.num_classes, len(self.masks))
        self.routing_share = torch.zeros(len(self.masks))
        log.info("mst: %d specialised teachers (%s); the auxiliary teacher reads %s", len(self.masks),
                 ", ".join(self.masks), ", ".join(other))

    def prepare(self, teacher: nn.Module, context) -> None:  # noqa: ANN001  (a PrepareContext)
        """Stages 1 and 2 (module docstring), seeded by the run's seed; the caller's random stream is untouched."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(context.seed)
            self._build(teacher, context)
            generator = torch.Generator().manual_seed(context.seed)
            self._cotrain(context, generator)
            self._train_masks(context, generator)
        self.teachers.eval().requires_grad_(False)
        self.masks.eval().requires_grad_(False)
        for p in [*self.parameters(), *context.student.parameters()]:
            p.grad = None  # the stages' last gradients are not the student's training's
        self.prepared.fill_(True)

    # ---- stage 1: co-training -----------------------------------------------------------------------------------
    def _cotrain(self, context, generator: torch.Generator) -> None:  # noqa: ANN001
        student = context.student
        models = {"student": student, **self.teachers}
        parameters = [p for m in models.values() for p in m.parameters()]
        optimizer = torch.optim.Adam(parameters, lr=context.lr)
        for epoch in range(self.cotrain_epochs):
            for m in models.values():
                m.train()
            total = 0.0
            for rows in _rows_of(context.train, context.batch_size, generator):
                batch = context.train.batch(rows, None if context.labeled is None else context.labeled[rows])
                logits = {name: m(batch).logits for name, m in models.items()}  # each (B, K)
                known = budget_rows(batch, "mst")  # the labels the student's budget allows
                loss = logits["student"].new_zeros(())
                for name, z in logits.items():
                    if bool(known.any()):
                        loss = loss + F.cross_entropy(z[known], batch.target[known])
                    for other, z_other in logits.items():  # KL towards each other model, both sides trained
                        if other != name:
                            loss = loss + hinton_kd(z, z_other, temperature=KD_TEMPERATURE)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += loss.item()
            log.info("mst co-training epoch %d/%d: loss %.4f", epoch + 1, self.cotrain_epochs, total)
        for m in models.values():
            m.eval()

    # ---- stage 2: masking networks ------------------------------------------------------------------------------
    def _specialised(self, key: str, batch: Batch) -> Tensor:
        """The logits of the specialised teacher ``key`` (a teacher with one layer masked) on ``batch``."""
        name, point = key.split("|")
        with masked(self.teachers[name], point.replace("/", "."), self.masks[key]):
            return self.teachers[name](batch).logits  # (B, K)

    def _train_masks(self, context, generator: torch.Generator) -> None:  # noqa: ANN001
        student = context.student.eval()
        self.teachers.eval().requires_grad_(False)
        optimizers = {key: torch.optim.Adam(mask.parameters(), lr=context.lr) for key, mask in self.masks.items()}
        best, best_state = float("inf"), copy.deepcopy(self.masks.state_dict())
        for epoch in range(self.mask_epochs):
            self.masks.train()
            for rows in _rows_of(context.train, context.batch_size, generator):
                batch = context.train.batch(rows)
                with torch.no_grad():
                    target = student(batch).logits  # (B, K) what the masked teacher should predict
                for key, optimizer in optimizers.items():
                    loss = hinton_kd(self._specialised(key, batch), target, temperature=KD_TEMPERATURE)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
            val_loss = self._mask_loss(context.val if context.val is not None else context.train, student)
            log.info("mst masking epoch %d/%d: validation KL %.4f", epoch + 1, self.mask_epochs, val_loss)
            if val_loss < best:  # the authors keep the masks of the epoch with the lowest validation loss
                best, best_state = val_loss, copy.deepcopy(self.masks.state_dict())
        self.masks.load_state_dict(best_state)

    @torch.no_grad()
    def _mask_loss(self, split: SplitData, student: nn.Module) -> float:
        self.masks.eval()
        total, batches = 0.0, 0
        for rows in _rows_of(split, 256, None):
            batch = split.batch(rows)
            target = student(batch).logits
            total += sum(float(hinton_kd(self._specialised(key, batch), target, temperature=KD_TEMPERATURE))
                         for key in self.masks) / len(self.masks)
            batches += 1
        return total / max(batches, 1)

    # ---- stage 3: the student's training ------------------------------------------------------------------------
    def weights_at(self, epoch: float) -> tuple[float, float]:
        """(w_kl, w_lb) during ``epoch``: the authors multiply w_lb by 0.9 after epochs 0, 10, 20, ... and w_kl by
        0.5 after epochs 0, 30, 60, ..."""
        done = int(epoch)  # epochs completed
        return (self.kl_weight * 0.5 ** len(range(0, done, 30)), self.balance_weight * 0.9 ** len(range(0, done, 10)))

    def train(self, mode: bool = True) -> MixtureOfSpecialisedTeachers:
        super().train(mode)
        self.teachers.eval()  # frozen after stage 2: BatchNorm and dropout in inference mode
        self.masks.eval()
        return self

    def forward(self, student: Tensor, teacher: Tensor | None = None, batch: Batch | None = None) -> Tensor:
        if not bool(self.prepared) or self.router is None or batch is None:
            raise RuntimeError("mst has not run its co-training and masking stages: call Distiller.prepare(context)")
        with torch.no_grad():
            specialised = torch.stack([self._specialised(key, batch) for key in self.masks], dim=1)  # (B, E, K)
        gate = F.softmax(self.router(student), dim=1)  # (B, E)
        kd, picks = routed_kd(student, specialised, gate, self.k)
        with torch.no_grad():
            self.routing_share = torch.bincount(picks.flatten(), minlength=len(self.masks)).float() / picks.numel()
        w_kl, w_lb = self.weights_at(self.epoch if self.epoch != float("inf") else 0.0)
        return w_kl * kd + w_lb * load_balancing(gate)
