"""``hf``: a Hugging Face dataset read as a manifest (same column kinds, checks and cache), its own splits kept."""

from __future__ import annotations

from typing import Any

from crossdistill.data.hf import SPLIT_COLUMN, read_hf_rows
from crossdistill.data.manifest import Manifest


class HuggingFaceDataset(Manifest):
    """The ``hf`` data set: a Hugging Face dataset (``path``: a ``save_to_disk`` folder, or a hub name when online)
    mapped to modalities exactly as a manifest's columns; its train / validation / test splits are used unless
    ``split_column`` or ``ratios`` say otherwise."""

    name = "hf"
    usage = "a Hugging Face dataset: set data.options.path (a save_to_disk folder) and modalities (docs/guide.md)"

    def _read_table(self) -> list[dict[str, Any]]:
        rows, has_splits = read_hf_rows(self.path, self.options.path)
        if has_splits and not self.options.split_column and not {"ratios", "repeats"} & self.options.model_fields_set:
            self.options.split_column = SPLIT_COLUMN
        return rows
