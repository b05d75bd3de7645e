"""The real cases and retrieval configs the docs publish (docs/real_cases.md, docs/retrieval.md), each run as
`crossdistill run CONFIG` would, its stamped results.json kept as ``benchmarks/results/cases/<folder>_<name>.json``
for ``benchmarks/published.py`` to render.

    python benchmarks/cases.py [CONFIG ...]      # default: every config below
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "cases"
CONFIGS = ["configs/mfeat/all_views_to_two.yaml", "configs/emoji/text_student.yaml", "configs/emoji/image_student.yaml",
           "configs/vader/minilm_to_bag.yaml", "configs/vader/minilm_regression.yaml",
           "configs/retrieval/emoji_image_text.yaml", "configs/retrieval/av_digits_image_audio.yaml",
           "configs/medical/breast_cancer.yaml", "configs/medical/diabetes.yaml",
           "configs/privileged/lopez_paz_relevant_features.yaml", "configs/slu/fsdd_text_teacher.yaml",
           "configs/emoji_sentiment/classes_name_student.yaml", "configs/emoji_sentiment/classes_picture_student.yaml",
           "configs/emoji_sentiment/score_name_student.yaml", "configs/emoji_sentiment/score_picture_student.yaml",
           "configs/slu/spoken_commands.yaml"]


def result_file(config: str) -> Path:
    path = Path(config)
    return OUT / f"{path.parent.name}_{path.stem}.json"


def generated_data(name: str) -> list[str]:
    """Overrides that point a config at data this benchmark makes (spoken commands: under the data root if made
    there, else made once under the cache)."""
    if Path(name).stem != "spoken_commands":
        return []
    from crossdistill.data.sources import cache_root, data_root
    from crossdistill.data.spoken_commands import make_spoken_commands

    table = data_root() / "spoken_commands" / "commands.csv"
    if not table.is_file():
        table = cache_root() / "generated" / "spoken_commands" / "commands.csv"
        if not table.is_file():
            make_spoken_commands(table.parent)
    return [f"data.options.path={table}"]


def main() -> None:
    from crossdistill import config, pipeline

    OUT.mkdir(parents=True, exist_ok=True)
    for name in sys.argv[1:] or CONFIGS:
        tic = time.perf_counter()
        with tempfile.TemporaryDirectory() as out:
            run_dir = pipeline.run(config.load(ROOT / name, ["train.progress=false", *generated_data(name)]), Path(out))
            shutil.copy(run_dir / "results.json", result_file(name))
        print(f"{name}: {time.perf_counter() - tic:.0f} s", flush=True)


if __name__ == "__main__":
    main()
