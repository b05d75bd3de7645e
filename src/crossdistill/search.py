"""``crossdistill search``: what a retrieval student is deployed for. Embed a gallery (a folder of files, a
table, or a ``.npy`` of arrays) with one tower of a trained dual encoder, embed a query (a text, or a file) with
the other, answer with the top-k gallery items by cosine similarity.

Any retrieval run serves (a manifest's, av-digits'): files and texts are preprocessed exactly as in training,
through the recipes its ``data_info.json`` holds (``crossdistill.serve``) with training's own front ends. A table
gallery is read like a manifest (relative paths start from the table's folder and the column's ``folder``); a
folder gallery's files are taken as they are. Answers name each item by the table's ``name`` column (or
``--show``), else by its file or row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from crossdistill.config import ConfigError
from crossdistill.export import load_run_model
from crossdistill.predict import training_preprocessor
from crossdistill.serve import InputRows, read_inputs
from crossdistill.serve.recipes import FILE_SUFFIXES

TEXT_KINDS = ("text", "text_embedding")
ARRAY_KINDS = ("image", "features")  # a query .npy holds one array of such a modality
NAME_COLUMNS = ("name", "title", "label", "id")


def query_modality(query: str, recipes: dict[str, dict]) -> str:
    """The tower that reads ``query``: a file of its kind (an array ``.npy`` for image/feature towers), else a
    text tower."""
    path = Path(query)
    suffix = path.suffix.lower() if path.is_file() else None
    for modality, recipe in recipes.items():
        kind = recipe["kind"]
        if (suffix is None and kind in TEXT_KINDS) or (suffix is not None and (
                suffix in FILE_SUFFIXES.get(kind, ()) or (suffix == ".npy" and kind in ARRAY_KINDS))):
            return modality
    towers = ", ".join(f"{m} ({r['kind']})" for m, r in recipes.items())
    raise ConfigError(f"search: no tower reads a {'file ' + repr(suffix) if suffix else 'text'} query "
                      f"(towers: {towers})")


def item_names(rows: InputRows, gallery: Path, show: str | None) -> list[str]:
    """How answers name gallery items: a table's ``show`` column (default: the first of name, title, label, id
    present), else the item's file or row."""
    if rows.table:
        columns = set(rows.table[0])
        if show is not None and show not in columns:
            raise ConfigError(f"search: --show {show!r} is not a column of {gallery} (columns: "
                              f"{', '.join(sorted(columns))})")
        column = show or next((c for c in NAME_COLUMNS if c in columns), None)
        if column is not None:
            return [str(row[column]) for row in rows.table]
    return list(rows.ids)


def file_of(rows: InputRows, modality: str, i: int) -> str:
    """The file a gallery item was read from (an array row of a ``.npy``: its row number)."""
    cell = rows.cells[modality][i]
    return str(cell) if isinstance(cell, str | Path) else rows.ids[i]


@torch.no_grad()
def search(run_dir: Path, query: str, gallery: Path, k: int = 5, model: str = "distilled", fold: int | None = None,
           seed: int | None = None, show: str | None = None) -> dict[str, Any]:
    """Top-``k`` gallery items for ``query`` (a text, or a path to a file of the other tower's kind)."""
    net, info, _ = load_run_model(Path(run_dir), model, fold, seed)
    if "towers" not in info.task.provides:
        raise ConfigError(f"search needs a retrieval run (a dual encoder); {run_dir} is a {info.task.name} run: "
                          "use `crossdistill predict`")
    recipes, preprocess = training_preprocessor(Path(run_dir), list(net.modalities))
    asked = query_modality(query, recipes)
    answered = next(m for m in net.modalities if m != asked)
    rows = read_inputs(Path(gallery), [answered], recipes)
    embedded = torch.cat([net.embed_one(answered, torch.from_numpy(preprocess(
        answered, rows.cells[answered][i : i + 256], rows.bases[answered]))) for i in range(0, len(rows), 256)])
    query_path = Path(query)
    cell: Any = str(query_path.resolve()) if query_path.is_file() else query
    if query_path.suffix.lower() == ".npy" and query_path.is_file():
        cell = np.load(query_path, allow_pickle=False).tolist()
    question = torch.from_numpy(preprocess(asked, [cell], Path.cwd()))
    scores = embedded @ net.embed_one(asked, question)[0]  # (G,)
    top = scores.topk(min(k, len(rows)))
    names = item_names(rows, Path(gallery), show)
    return {"query": query, "query_modality": asked, "gallery_modality": answered, "gallery_size": len(rows),
            "results": [{"rank": r + 1, "item": names[i], "file": file_of(rows, answered, i), "score": float(s)}
                        for r, (s, i) in enumerate(zip(top.values.tolist(), top.indices.tolist(), strict=True))]}
