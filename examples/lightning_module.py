"""crossdistill's Distiller inside a PyTorch Lightning ``LightningModule``: Lightning runs the loop (devices,
logging, checkpoints), the Distiller computes ``L = CE + KD`` from your student and a frozen teacher. The data
and models are those of ``own_training_loop.py`` (mfeat, a teacher over three views, a student over two).

    pip install lightning        (checked beside torch 2.13.0 CPU: lightning 2.6.6 does not replace it)
    python examples/lightning_module.py
"""

import lightning as L
import numpy as np
import torch
from own_training_loop import Digits, Student, Teacher, load_mfeat
from torch.utils.data import DataLoader

import crossdistill
from crossdistill import Batch, Distiller


class DistillationModule(L.LightningModule):
    """The Distiller's total loss is the training loss; each term is logged by name."""

    def __init__(self, distiller: Distiller, lr: float = 3e-3) -> None:
        super().__init__()
        self.distiller, self.lr = distiller, lr

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        losses = self.distiller(batch)
        self.log_dict({f"train/{name}": value for name, value in losses.items()}, batch_size=len(batch))
        return losses["loss"]

    def validation_step(self, batch: Batch, batch_idx: int) -> None:  # (fed the test rows: nothing selects on it)
        logits = self.distiller.student(batch).logits
        self.log("test/accuracy", (logits.argmax(1) == batch.target).float().mean(), batch_size=len(batch))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        # the student, and any adapter or loss module the terms own; never the frozen teacher
        return torch.optim.AdamW(self.distiller.trainable_parameters(), lr=self.lr)


def main() -> None:
    torch.manual_seed(0)
    views, labels, train, test, labeled = load_mfeat()
    loader = lambda rows, shuffle, only=None: DataLoader(  # noqa: E731
        Digits(rows, views, labels, labeled if only is None else only), batch_size=64, shuffle=shuffle,
        collate_fn=Batch.collate)
    everything = np.ones_like(labeled)  # the teacher learns from every training label
    trainer = lambda epochs: L.Trainer(max_epochs=epochs, accelerator="cpu", logger=False,  # noqa: E731
                                       enable_checkpointing=False, enable_progress_bar=False,
                                       enable_model_summary=False)

    teacher = crossdistill.wrap_model(Teacher(), ["fou", "kar", "pix"])
    trainer(15).fit(DistillationModule(Distiller(teacher, None, crossdistill.terms([{"loss": "ce"}]))),
                    loader(train, True, everything))
    teacher.eval()

    student = crossdistill.wrap_model(Student(), ["mor", "zer"])
    module = DistillationModule(Distiller(student, teacher, crossdistill.terms(
        [{"loss": "ce"}, {"loss": "kd", "kwargs": {"temperature": 4.0}}])))
    run = trainer(30)
    run.fit(module, loader(train, True), loader(test, False))
    print(f"student (mor + zer, 10% of the labels) test accuracy: {run.callback_metrics['test/accuracy']:.3f}")


if __name__ == "__main__":
    main()
