"""The pipeline from Python: load a config, swap in a student of your own, run, read the typed results, export
and predict. An image model teaches an audio model (av-digits) with your own small audio network. Run from the
repository root (about 30 seconds on 2 cores):

    python examples/python_api.py                    (data under $CROSSDISTILL_DATA, else ../shared/data)
"""

import os
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

import crossdistill

os.environ.setdefault("CROSSDISTILL_DATA", "../shared/data")


class TinyAudioNet(nn.Module):
    """Your student: (B, 1, mels, frames) log-mel spectrogram -> (B, 10) logits."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        stages, channels = [], 1
        for out in (width, 2 * width, 4 * width):
            stages += [nn.Conv2d(channels, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU(), nn.MaxPool2d(2)]
            channels = out
        self.body = nn.Sequential(*stages, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(channels, 10)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(audio))


def main(out: Path) -> None:
    exp = crossdistill.load_config("configs/av_digits/kd.yaml", ["seeds=[0]", "train.epochs=12",
                                                                  "teacher.train.epochs=3", "train.progress=false",
                                                                  "teacher.encoders.image.channels=[16,32]"])
    student = crossdistill.own_model(TinyAudioNet, ["audio"], embed="body", width=8)
    results = crossdistill.run(exp, out=out, student=student)
    for name, model in results.models.items():
        print(f"{name:10s} {', '.join(model.modalities):12s} accuracy {model.metrics['accuracy']['mean']:.3f} "
              f"({model.params} parameters)")
    for comparison in results.comparisons:
        d = comparison.paired_diff  # one (fold, seed) run: no verdict; run more seeds for one
        print(f"{comparison.model} vs {comparison.reference}: {d.mean:+.3f} accuracy ({d.n_runs} paired run: "
              f"{d.verdict})")
    written = crossdistill.export(out / exp.name, ["onnx"])
    print(f"exported: {written['onnx']}")
    clips = Path(os.environ["CROSSDISTILL_DATA"]) / "fsdd" / "recordings"
    table = out / "clips.csv"  # a table of new inputs: one column per modality the student reads
    table.write_text("id,audio\n" + "".join(f"{p.stem},{p}\n" for p in sorted(clips.glob("7_*_1.wav"))))
    records, _ = crossdistill.predict(out / exp.name / "export", table, progress=False)
    print("predicted:", ", ".join(f"{r['id']} -> {r['prediction']} ({r['probability']:.2f})" for r in records))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()))
