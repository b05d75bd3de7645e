"""Your data, your models, your training loop; crossdistill's loss terms and teacher cache.

UCI Multiple Features read straight from its CSV files (six views of 2000 handwritten digits): a teacher over
three views, a student over the two cheapest (morphological, Zernike) that may use 10% of the labels, both
plain PyTorch modules of your own. Run from the repository root:

    python examples/own_training_loop.py            (data under $CROSSDISTILL_DATA, else ../shared/data)
"""

import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

import crossdistill
from crossdistill import Batch, Distiller, TeacherCache
from crossdistill.losses import kd

DATA = Path(os.environ.get("CROSSDISTILL_DATA", "../shared/data")) / "mfeat"
VIEWS = {"fou": 76, "kar": 64, "pix": 240, "mor": 6, "zer": 47}
torch.manual_seed(0)


class Digits(Dataset):
    """Your dataset: each sample a dict of views, its label, its id and whether the student may use the label."""

    def __init__(self, rows: np.ndarray, views: dict[str, np.ndarray], labels: np.ndarray, labeled: np.ndarray):
        self.rows, self.views, self.labels, self.labeled = rows, views, labels, labeled

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        row = self.rows[i]
        return {**{v: torch.from_numpy(x[row]) for v, x in self.views.items()}, "label": int(self.labels[row]),
                "index": int(row), "labeled": bool(self.labeled[row])}


class Teacher(nn.Module):  # forward(fou, kar, pix) -> logits
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(76 + 64 + 240, 128), nn.ReLU())
        self.head = nn.Linear(128, 10)

    def forward(self, fou, kar, pix):
        return self.head(self.body(torch.cat([fou, kar, pix], 1)))


class Student(nn.Module):  # forward(mor, zer) -> logits
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6 + 47, 32), nn.ReLU())
        self.head = nn.Linear(32, 10)

    def forward(self, mor, zer):
        return self.head(self.body(torch.cat([mor, zer], 1)))


def load_mfeat() -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(views, labels, training rows, test rows, rows whose label the student may use)."""
    tables = {v: np.loadtxt(DATA / f"mfeat-{v}.csv", delimiter=",", skiprows=1) for v in VIEWS}
    labels = tables["fou"][:, -1].astype(np.int64)
    order = np.random.default_rng(0).permutation(len(labels))
    train, test = order[:1600], order[1600:]
    views = {}
    for v, t in tables.items():  # standardised with the training rows' statistics
        x = t[:, :-1]
        views[v] = ((x - x[train].mean(0)) / (x[train].std(0) + 1e-6)).astype(np.float32)
    labeled = np.zeros(len(labels), bool)
    labeled[train[:160]] = True  # the student may use 10% of the training labels
    return views, labels, train, test, labeled


def main() -> None:
    views, labels, train, test, labeled = load_mfeat()
    loader = lambda rows, shuffle: DataLoader(Digits(rows, views, labels, labeled), batch_size=64,  # noqa: E731
                                              shuffle=shuffle, collate_fn=Batch.collate)

    # 1. the teacher, trained on every training label (crossdistill's ``ce`` term, in your loop)
    teacher = crossdistill.wrap_model(Teacher(), ["fou", "kar", "pix"])
    fit_teacher = Distiller(teacher, None, crossdistill.terms([{"loss": "ce"}]))
    optimiser = torch.optim.AdamW(teacher.parameters(), lr=3e-3)
    for _ in range(15):
        for batch in loader(train, True):
            batch.labeled = torch.ones(len(batch), dtype=torch.bool)
            loss = fit_teacher(batch)["loss"]
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    teacher.eval()

    # 2. its outputs computed once over the training rows, kept on disk, looked up by sample id
    cache = TeacherCache.over(teacher, loader(train, False), root=Path(tempfile.mkdtemp()), data_key="mfeat-v1")

    # 3. the student: cross-entropy on its labelled share + Hinton KD on every row, from the cache
    student = crossdistill.wrap_model(Student(), ["mor", "zer"])
    distiller = Distiller(student, teacher, crossdistill.terms([{"loss": "ce"},
                                                                {"loss": "kd", "kwargs": {"temperature": 4.0}}]))
    distiller.use_teacher_source(cache)
    optimiser = torch.optim.AdamW(student.parameters(), lr=3e-3)
    for _ in range(30):
        for batch in loader(train, True):
            losses = distiller(batch)  # {"loss": total, "ce": ..., "kd": ...}
            optimiser.zero_grad()
            losses["loss"].backward()
            optimiser.step()

    # the losses are plain functions too
    batch = next(iter(loader(test, False)))
    with torch.no_grad():
        value = kd(student(batch).logits, teacher(batch).logits, temperature=4.0)
    student.eval()
    with torch.no_grad():
        correct = sum(int((student(b).logits.argmax(1) == b.target).sum()) for b in loader(test, False))
    print(f"KD loss on a test batch: {float(value):.3f}")
    print(f"student (mor + zer, 10% of the labels) test accuracy: {correct / len(test):.3f}")


if __name__ == "__main__":
    main()
