"""Run by ``tests/test_store_ranks.py`` under torchrun (two node ranks on this machine): every rank opens the same
manifest through one decoded store on shared storage (``$CROSSDISTILL_CACHE``), which the ranks build together,
and writes what it decoded and a digest of what it read to ``OUT/rank<r>.json``.

    torchrun --nnodes 2 --node_rank R ... tests/store_ranks.py OPTIONS_JSON OUT
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import crossdistill.data.row_decoding as row_decoding
import crossdistill.data.store as store
from crossdistill.data import open_dataset
from crossdistill.distributed import process_group, rank
from crossdistill.tasks import build_task


def main() -> None:
    options, out = json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2])
    store.SHARD_ROWS = 16
    decoded = {"rows": 0}
    real = row_decoding.decode_row

    def counting(*args, **kwargs):
        decoded["rows"] += 1
        return real(*args, **kwargs)

    row_decoding.decode_row = counting
    with process_group():
        fold = open_dataset("manifest", None, options, 0, build_task("classification"), workers=0,
                            in_memory=True).fold(0)
        digest = hashlib.sha256(b"".join(fold[s].inputs[m].numpy().tobytes() for s in ("train", "val", "test")
                                         for m in ("image", "audio")))
        (out / f"rank{rank()}.json").write_text(json.dumps({"decoded": decoded["rows"], "digest": digest.hexdigest(),
                                                            "fingerprint": fold.fingerprint}))


if __name__ == "__main__":
    main()
