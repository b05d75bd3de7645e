"""The peer's side of ``benchmarks/peer.py``, run by the peer's own interpreter (a venv with torch 2.13.0,
torchvision 0.28.0 and torchdistill 1.1.5): Hinton KD through torchdistill's DistillationBox, driven by its own
config dict and its documented epoch loop. The models are the same ``nn.Module``s (built by crossdistill's model
code, same seeds); the data are the same tensors (an ``.npz`` written by peer.py), batched in the same order.

    python peer_torchdistill.py WORK_DIR   ->   prints one JSON line: seconds, per-seed test accuracy
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

# torchvision 0.28.0 beside the CPU build of torch 2.13.0 needs these two operator names before it is imported
# (../shared/ENVIRONMENT.md).
_lib = torch.library.Library("torchvision", "FRAGMENT")
_lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
_lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")

from safetensors.torch import load_file  # noqa: E402
from torch import nn  # noqa: E402
from torchdistill.core.distillation import get_distillation_box  # noqa: E402

from crossdistill.config import ModelSpec  # noqa: E402
from crossdistill.data.batch import DataInfo, ModalitySpec  # noqa: E402
from crossdistill.models import build_model  # noqa: E402
from crossdistill.tasks import build_task  # noqa: E402


class OneModality(nn.Module):
    """A crossdistill model as a plain ``model(sample) -> logits`` (torchdistill's forward contract)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, sample: dict) -> torch.Tensor:
        return self.model({m: sample[m] for m in self.model.modalities}).logits


class SameOrder(torch.utils.data.Sampler):
    """Each epoch, the permutation crossdistill's loader draws for the same seed (``torch.randperm`` from a
    generator seeded once): both libraries see the same batches in the same order."""

    def __init__(self, dataset: torch.utils.data.Dataset, seed: int) -> None:
        self.size, self.generator = len(dataset), torch.Generator().manual_seed(seed)

    def __iter__(self):  # noqa: ANN204
        return iter(torch.randperm(self.size, generator=self.generator).tolist())

    def __len__(self) -> int:
        return self.size


class PairedTensors(torch.utils.data.Dataset):
    def __init__(self, arrays: dict, split: str) -> None:
        self.inputs = {m: torch.from_numpy(arrays[f"{split}.{m}"]) for m in ("image", "audio")}
        self.target = torch.from_numpy(arrays[f"{split}.target"])

    def __len__(self) -> int:
        return len(self.target)

    def __getitem__(self, i: int) -> tuple[dict, torch.Tensor]:
        return {m: x[i] for m, x in self.inputs.items()}, self.target[i]


def main() -> None:
    work = Path(sys.argv[1])
    setup = json.loads((work / "setup.json").read_text())
    arrays = dict(np.load(work / "data.npz"))
    info = DataInfo({}, setup["num_classes"], {m: ModalitySpec(tuple(s)) for m, s in setup["shapes"].items()},
                    build_task("classification"))
    torch.set_num_threads(setup["threads"])
    teacher = build_model(ModelSpec.model_validate(setup["teacher"]), info)
    teacher.load_state_dict(load_file(work / "teacher.safetensors"))
    teacher.eval()  # (torchdistill leaves the teacher's mode to the user: inference mode, as crossdistill does)
    train, test = PairedTensors(arrays, "train"), PairedTensors(arrays, "test")
    accuracies, tic = [], time.perf_counter()
    for seed in setup["seeds"]:
        torch.manual_seed(seed)
        student = build_model(ModelSpec.model_validate(setup["student"]), info)
        kd = {"student_module_path": ".", "student_module_io": "output", "teacher_module_path": ".",
              "teacher_module_io": "output", "temperature": setup["temperature"], "alpha": 1.0, "beta": 1.0,
              "reduction": "batchmean"}
        train_config = {
            "num_epochs": setup["epochs"],
            "train_data_loader": {"dataset_id": "train",
                                  "sampler": {"class_or_func": SameOrder, "kwargs": {"seed": seed}},
                                  "kwargs": {"batch_size": setup["batch_size"], "num_workers": 0, "drop_last": True}},
            "teacher": {"forward_proc": "forward_batch_only", "requires_grad": False},
            "student": {"forward_proc": "forward_batch_only", "requires_grad": True},
            "optimizer": {"key": "Adam", "kwargs": {"lr": setup["lr"]}},
            "criterion": {"key": "WeightedSumLoss",
                          "kwargs": {"sub_terms": {"kd": {"criterion": {"key": "KDLoss", "kwargs": kd},
                                                          "weight": 1.0}}}},
        }
        box = get_distillation_box(OneModality(teacher), OneModality(student), {"train": train}, train_config,
                                   torch.device("cpu"), None, False, 1.0)
        for epoch in range(box.num_epochs):
            box.pre_epoch_process(epoch=epoch)
            for sample_batch, targets, supp_dict in box.train_data_loader:
                loss = box.forward_process(sample_batch, targets, supp_dict)
                box.post_forward_process(loss=loss)
            box.post_epoch_process()
        student.eval()
        with torch.no_grad():
            logits = student({"audio": test.inputs["audio"]}).logits
        accuracies.append(float((logits.argmax(1) == test.target).float().mean()))
    print(json.dumps({"seconds": time.perf_counter() - tic, "accuracy": accuracies}))


if __name__ == "__main__":
    main()
