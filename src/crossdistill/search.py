"""``crossdistill search``: what a retrieval student is deployed for. Embed a gallery (a folder of files, or a
table) with one tower of a trained dual encoder, embed a query (a text, or a file path) with the other, answer
with the top-k gallery items by cosine similarity.

Files and texts are preprocessed exactly as in training: the run's manifest columns say how (image size, sample
rate, ...) and its ``data_info.json`` holds the tokenizer and the training split's normalisation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from crossdistill import config
from crossdistill.config import ConfigError
from crossdistill.data.audio import log_mel
from crossdistill.data.batch import ModalitySpec
from crossdistill.data.decoders import BadCell, decode_audio, decode_image
from crossdistill.data.manifest_options import ManifestOptions, ModalityColumns
from crossdistill.data.table import read_rows
from crossdistill.data.text import Tokenizer
from crossdistill.export import load_run_model
from crossdistill.rundir import RunDir

SUFFIXES = {"image": {".png", ".jpg", ".jpeg"}, "audio": {".wav"}}


def preprocess(cells: list[Any], columns: ModalityColumns, spec: ModalitySpec, base: Path) -> Tensor:
    """Cells of one modality (texts, or file paths relative to ``base``) -> the tensor its tower reads."""
    if columns.kind == "text":
        return torch.from_numpy(Tokenizer.from_state(spec.meta["tokenizer"]).encode([str(c) for c in cells]))
    try:
        if columns.kind == "image":
            array = np.stack([decode_image(c, base / columns.folder, columns.size, columns.grayscale) for c in cells])
            if "normalise" not in spec.meta:
                raise ConfigError("search: the run's data_info.json lacks the image normalisation (written since "
                                  "search exists): run the same config again to refresh it (finished models resume)")
            stats = spec.meta["normalise"]
            shape = (1, -1, 1, 1)
            normalised = (array - np.reshape(stats["mean"], shape)) / np.reshape(stats["std"], shape)
            return torch.from_numpy(normalised.astype(np.float32))
        if columns.kind == "audio":
            samples = int(columns.sample_rate * columns.seconds)
            waves = np.stack([decode_audio(c, base / columns.folder, columns.sample_rate, samples) for c in cells])
            return log_mel(waves, columns.sample_rate, columns.n_fft, columns.hop, columns.n_mels)
    except BadCell as why:
        raise ConfigError(f"search: {why}") from None
    raise ConfigError(f"search reads text, image and audio towers; this tower reads a {columns.kind} column")


def gallery_cells(gallery: Path, columns: ModalityColumns) -> tuple[list[Any], Path]:
    """A folder (its files of the tower's kind, sorted) or a table (the tower's column): cells and their base."""
    if gallery.is_dir():
        files = sorted(p.name for p in gallery.iterdir() if p.suffix.lower() in SUFFIXES.get(columns.kind, ()))
        if not files:
            raise ConfigError(f"search: {gallery} holds no {columns.kind} files "
                              f"({', '.join(sorted(SUFFIXES.get(columns.kind, ())))})")
        return files, gallery
    if not gallery.is_file():
        raise ConfigError(f"search: gallery {gallery} is neither a folder nor a table")
    rows = read_rows(gallery, None, None)
    if not rows or columns.column not in rows[0]:
        raise ConfigError(f"search: gallery table {gallery} has no column {columns.column!r}")
    return [row[columns.column] for row in rows], gallery.parent


@torch.no_grad()
def search(run_dir: Path, query: str, gallery: Path, k: int = 5, model: str = "distilled", fold: int = 0,
           seed: int | None = None) -> dict:
    """Top-``k`` gallery items for ``query`` (a text, or a path to a file of the other tower's kind)."""
    exp = config.load(RunDir(run_dir).config)
    net, info, _ = load_run_model(Path(run_dir), model, fold, seed)
    if "towers" not in info.task.provides or exp.data.dataset != "manifest":
        raise ConfigError("search needs a retrieval run on a manifest (its columns say how to read new files)")
    columns = ManifestOptions.model_validate(exp.data.options).modalities
    is_file = Path(query).is_file()
    suffix = Path(query).suffix.lower()
    query_side = [m for m in net.modalities
                  if (suffix in SUFFIXES.get(columns[m].kind, ()) if is_file else columns[m].kind == "text")]
    if not query_side:
        raise ConfigError(f"search: no tower of {model!r} reads a {'file' if is_file else 'text'} query "
                          f"(towers: {', '.join(f'{m} ({columns[m].kind})' for m in net.modalities)})")
    query_modality = query_side[0]
    gallery_modality = next(m for m in net.modalities if m != query_modality)
    cells, base = gallery_cells(Path(gallery), columns[gallery_modality])
    embedded = torch.cat([net.embed_one(gallery_modality, preprocess(cells[i : i + 256], columns[gallery_modality],
                                                                      info.modalities[gallery_modality], base))
                          for i in range(0, len(cells), 256)])  # (G, D)
    as_given = columns[query_modality].model_copy(update={"folder": ""})  # a query path is used as given
    query_input = preprocess([query], as_given, info.modalities[query_modality], Path.cwd())
    scores = embedded @ net.embed_one(query_modality, query_input)[0]  # (G,)
    top = scores.topk(min(k, len(cells)))
    return {"query": query, "query_modality": query_modality, "gallery_modality": gallery_modality,
            "gallery_size": len(cells),
            "results": [{"rank": r + 1, "item": str(cells[i]), "score": float(s)}
                        for r, (s, i) in enumerate(zip(top.values.tolist(), top.indices.tolist(), strict=True))]}
