"""Beyond one machine: ``torchrun --nnodes 2`` (two node ranks on this machine, rendezvous on localhost) reading one
decoded store from shared storage, the store's build split across the ranks (each decodes its share of the
shards, rank 0 finishes it): what every rank reads equals a store built by one process."""

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from test_manifest import emoji_options, write_csv
from test_store import mixed_rate_rows

from crossdistill.data import open_dataset
from crossdistill.tasks import build_task

SCRIPT = Path(__file__).resolve().parent / "store_ranks.py"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_nodes_build_one_store_together(emoji_rows, data_root, tmp_path, monkeypatch):
    """Pictures, and clips of which rows 51-100 must be resampled: the ranks find it (each in its own share),
    start again together with the audio as float32, and read what one process building alone reads."""
    clips = mixed_rate_rows(data_root, tmp_path / "wav", 100, native=50)
    rows = [picture | clip for picture, clip in zip(emoji_rows[:100], clips, strict=True)]
    options = emoji_options(write_csv(tmp_path / "e.csv", rows), ratios=[0.6, 0.2, 0.2])
    options["modalities"]["audio"] = {"kind": "audio", "column": "wav", "sample_rate": 8000, "seconds": 0.5}
    (tmp_path / "options.json").write_text(json.dumps(options))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CROSSDISTILL_CACHE": str(tmp_path / "shared")}
    port = free_port()
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes=2", f"--node_rank={r}",
                               "--nproc_per_node=1", "--master_addr=127.0.0.1", f"--master_port={port}",
                               str(SCRIPT), str(tmp_path / "options.json"), str(tmp_path)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for r in (0, 1)]
    for node in nodes:
        output = node.communicate(timeout=300)[0]
        assert node.returncode == 0, output[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    # 100 rows in shards of 16: rank 0 decodes shards 0, 2, 4, 6 (16 + 16 + 16 + 4 rows), rank 1 shards 1, 3, 5;
    # before that, rank 0 stopped at shard 4 (rows 65-80, resampled) after 48 rows, rank 1 at shard 3 after 32
    assert [r["decoded"] for r in ranks] == [48 + 52, 32 + 48]
    assert ranks[0]["digest"] == ranks[1]["digest"] and ranks[0]["fingerprint"] == ranks[1]["fingerprint"]
    assert len(list((tmp_path / "shared" / "store").glob("manifest-*[0-9a-f]/store.json"))) == 1
    monkeypatch.setenv("CROSSDISTILL_CACHE", str(tmp_path / "alone"))
    fold = open_dataset("manifest", None, options, 0, build_task("classification"), in_memory=True).fold(0)
    alone = hashlib.sha256(b"".join(fold[s].inputs[m].numpy().tobytes() for s in ("train", "val", "test")
                                    for m in ("image", "audio")))
    assert alone.hexdigest() == ranks[0]["digest"]
