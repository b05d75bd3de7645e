"""``crossdistill search``: what a retrieval student is deployed for. Embed a gallery (a folder of files, or a
table) with one tower of a trained dual encoder, embed a query (a text, or a file path) with the other, answer
with the top-k gallery items by cosine similarity.

Files and texts are preprocessed exactly as in training: the run's manifest columns say how (image size, sample
rate, ...) and its ``data_info.json`` holds the tokenizer and the training split's normalisation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from crossdistill import config
from crossdistill.config import ConfigError
from crossdistill.data.batch import ModalitySpec
from crossdistill.data.columns import COLUMN_KINDS
from crossdistill.data.columns import preprocess as column_preprocess
from crossdistill.data.manifest_options import ManifestOptions, ModalityColumns
from crossdistill.data.table import read_rows
from crossdistill.export import load_run_model
from crossdistill.rundir import RunDir
from crossdistill.serve.decode import BadCell


def preprocess(cells: list[Any], columns: ModalityColumns, spec: ModalitySpec, base: Path,
               options: ManifestOptions) -> Tensor:
    """Cells of one modality (texts, or file paths relative to ``base``) -> the tensor its tower reads, through
    the column kind and the state training saved (the same code as training: no train/serve skew)."""
    try:
        return column_preprocess(columns, cells, base, spec.meta, options)
    except BadCell as why:
        raise ConfigError(f"search: {why}") from None


def suffixes(columns: ModalityColumns) -> frozenset[str]:
    return COLUMN_KINDS.get(columns.kind).file_suffixes


def gallery_cells(gallery: Path, columns: ModalityColumns) -> tuple[list[Any], Path]:
    """A folder (its files of the tower's kind, sorted) or a table (the tower's column): cells and their base."""
    if gallery.is_dir():
        files = sorted(p.name for p in gallery.iterdir() if p.suffix.lower() in suffixes(columns))
        if not files:
            raise ConfigError(f"search: {gallery} holds no {columns.kind} files "
                              f"({', '.join(sorted(suffixes(columns)))})")
        return files, gallery
    if not gallery.is_file():
        raise ConfigError(f"search: gallery {gallery} is neither a folder nor a table")
    rows = read_rows(gallery, None, None)
    if not rows or columns.column not in rows[0]:
        raise ConfigError(f"search: gallery table {gallery} has no column {columns.column!r}")
    return [row[columns.column] for row in rows], gallery.parent


@torch.no_grad()
def search(run_dir: Path, query: str, gallery: Path, k: int = 5, model: str = "distilled", fold: int | None = None,
           seed: int | None = None) -> dict:
    """Top-``k`` gallery items for ``query`` (a text, or a path to a file of the other tower's kind)."""
    exp = config.load(RunDir(run_dir).config)
    net, info, _ = load_run_model(Path(run_dir), model, fold, seed)
    if "towers" not in info.task.provides or exp.data.dataset != "manifest":
        raise ConfigError("search needs a retrieval run on a manifest (its columns say how to read new files)")
    options = ManifestOptions.model_validate(exp.data.options)
    columns = options.modalities
    is_file = Path(query).is_file()
    suffix = Path(query).suffix.lower()
    query_side = [m for m in net.modalities
                  if (suffix in suffixes(columns[m]) if is_file else COLUMN_KINDS.get(columns[m].kind).reads_text)]
    if not query_side:
        raise ConfigError(f"search: no tower of {model!r} reads a {'file' if is_file else 'text'} query "
                          f"(towers: {', '.join(f'{m} ({columns[m].kind})' for m in net.modalities)})")
    query_modality = query_side[0]
    gallery_modality = next(m for m in net.modalities if m != query_modality)
    cells, base = gallery_cells(Path(gallery), columns[gallery_modality])
    # A gallery folder's files are named relative to the folder itself, not to the manifest column's ``folder``.
    gallery_columns = (columns[gallery_modality].model_copy(update={"folder": ""}) if Path(gallery).is_dir()
                       else columns[gallery_modality])
    embedded = torch.cat([net.embed_one(gallery_modality, preprocess(cells[i : i + 256], gallery_columns,
                                                                      info.modalities[gallery_modality], base,
                                                                      options))
                          for i in range(0, len(cells), 256)])  # (G, D)
    as_given = columns[query_modality].model_copy(update={"folder": ""})  # a query path is used as given
    query_input = preprocess([query], as_given, info.modalities[query_modality], Path.cwd(), options)
    scores = embedded @ net.embed_one(query_modality, query_input)[0]  # (G,)
    top = scores.topk(min(k, len(cells)))
    return {"query": query, "query_modality": query_modality, "gallery_modality": gallery_modality,
            "gallery_size": len(cells),
            "results": [{"rank": r + 1, "item": str(cells[i]), "score": float(s)}
                        for r, (s, i) in enumerate(zip(top.values.tolist(), top.indices.tolist(), strict=True))]}
