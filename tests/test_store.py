"""The decoded store on real files (emoji images + names, FSDD recordings): data read a batch at a time equals data
held in memory bit for bit, down to a whole training run; a build stopped midway resumes; a truncated or altered
shard is named and decoded again; a store of another format is rebuilt."""

import json
import logging
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from test_manifest import TINY_MANIFEST_RUN, emoji_options, write_csv

import crossdistill.data.row_decoding as row_decoding
import crossdistill.data.store as store_module
import crossdistill.data.store_writer as store_writer
from crossdistill.data import open_dataset
from crossdistill.data.loader import BatchLoader
from crossdistill.data.rows import TransformedRows
from crossdistill.data.store_files import STORE_FORMAT
from crossdistill.data.stored_rows import Rows, moments
from crossdistill.tasks import build_task

CLASSIFICATION = build_task("classification")
SPLITS = ("train", "val", "test")


@pytest.fixture
def small_shards(monkeypatch, tmp_path):
    """Shards of 16 rows (so that a table of ~100 rows has several) in a cache of this test's own."""
    monkeypatch.setattr(store_module, "SHARD_ROWS", 16)
    monkeypatch.setenv("CROSSDISTILL_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def counted(monkeypatch):
    """How many rows were decoded (in this process)."""
    calls = {"rows": 0}
    real = row_decoding.decode_row

    def counting(*args, **kwargs):
        calls["rows"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(row_decoding, "decode_row", counting)
    return calls


def speech_options(data_root, tmp_path, **extra):
    files = sorted((data_root / "fsdd" / "recordings").glob("*_[0-2].wav"))[:90]
    rows = [{"wav": str(f), "digit": f.stem.split("_")[0], "optional_wav": str(f) if i % 3 else ""}
            for i, f in enumerate(files)]
    path = write_csv(tmp_path / "speech.csv", rows)
    return {"path": str(path), "label": "digit", "ratios": [0.6, 0.2, 0.2],
            "modalities": {"audio": {"kind": "audio", "column": "wav", "sample_rate": 8000, "seconds": 0.5},
                           "again": {"kind": "audio", "column": "optional_wav", "sample_rate": 8000,
                                     "seconds": 0.5, "optional": True}}, **extra}


def batches(fold, split, seed=3):
    loader = BatchLoader(fold[split], 16, shuffle=split == "train", seed=seed)
    return list(loader)


@pytest.mark.parametrize("which", ["emoji", "speech"])
def test_rows_read_a_batch_at_a_time_equal_rows_held_in_memory(which, emoji_rows, data_root, tmp_path, small_shards):
    """Images (standardised per channel), audio (log-mel) with an optional modality, text: every batch of every
    split, the fitted state and the shapes are the same whether the decoded rows are held or read from disk."""
    if which == "emoji":
        options = emoji_options(write_csv(tmp_path / "e.csv", emoji_rows[:100]), ratios=[0.6, 0.2, 0.2])
    else:
        options = speech_options(data_root, tmp_path)
    held = open_dataset("manifest", None, options, 0, CLASSIFICATION, in_memory=True).fold(0)
    streamed = open_dataset("manifest", None, options, 0, CLASSIFICATION, in_memory=False).fold(0)
    decoded = [m for m, spec in options["modalities"].items() if spec["kind"] != "text"]
    assert all(isinstance(streamed["train"].inputs[m], TransformedRows) for m in decoded)
    assert all(isinstance(held["train"].inputs[m], torch.Tensor) for m in decoded)
    assert held.info.modalities == streamed.info.modalities
    assert [s.meta for s in held.info.modalities.values()] == [s.meta for s in streamed.info.modalities.values()]
    for split in SPLITS:
        for a, b in zip(batches(held, split), batches(streamed, split), strict=True):
            assert torch.equal(a.index, b.index) and torch.equal(a.target, b.target)
            assert a.inputs.keys() == b.inputs.keys()
            for name in a.inputs:
                assert torch.equal(a.inputs[name], b.inputs[name]), (split, name)


def test_a_run_from_the_store_trains_exactly_as_from_memory(emoji_rows, tmp_path, small_shards):
    """The whole pipeline (teacher, teacher cache, student, evaluation) on data read a batch at a time: the same
    weights and metrics as on data held in memory."""
    from crossdistill import config, pipeline

    path = write_csv(tmp_path / "emoji.csv", emoji_rows[:120])
    results = {}
    for in_memory in (True, False):
        spec = tmp_path / f"run-{in_memory}.yaml"
        text = TINY_MANIFEST_RUN.format(path=path, student="text_bag").replace(
            "  dataset: manifest\n", f"  dataset: manifest\n  in_memory: {str(in_memory).lower()}\n")
        spec.write_text(text.replace("text: {name: text_bag, dim: 8}", "image: {name: image_cnn, channels: [4]}"))
        run_dir = pipeline.run(config.load(spec), tmp_path / f"out-{in_memory}")
        results[in_memory] = json.loads((run_dir / "results.json").read_text())
    for model in ("teacher", "baseline", "distilled"):
        assert results[True]["models"][model]["metrics"] == results[False]["models"][model]["metrics"], model
        assert results[True]["models"][model]["runs"] == results[False]["models"][model]["runs"], model


def test_a_build_stopped_midway_resumes(emoji_rows, tmp_path, small_shards, counted, monkeypatch, caplog):
    options = emoji_options(write_csv(tmp_path / "e.csv", emoji_rows[:100]), ratios=[0.6, 0.2, 0.2])
    real_write = store_writer._ShardWriter.write

    def killed_after_three(self, shard, *args):
        if shard == 3:
            raise KeyboardInterrupt  # (as a killed process: nothing after this point runs)
        real_write(self, shard, *args)

    monkeypatch.setattr(store_writer._ShardWriter, "write", killed_after_three)
    with pytest.raises(KeyboardInterrupt):
        open_dataset("manifest", None, options, 0, CLASSIFICATION, in_memory=False)
    assert not list((tmp_path / "cache").rglob("store.json"))  # the half-built store is never read
    monkeypatch.setattr(store_writer._ShardWriter, "write", real_write)
    counted["rows"] = 0
    with caplog.at_level(logging.INFO, logger="crossdistill"):
        resumed = open_dataset("manifest", None, options, 0, CLASSIFICATION, in_memory=False).fold(0)
    assert "resuming a decoded store: 4 of 7 shards to go" in caplog.text
    assert counted["rows"] == 100 - 3 * 16  # the recorded shards are not decoded again
    monkeypatch.setenv("CROSSDISTILL_CACHE", str(tmp_path / "fresh"))
    fresh = open_dataset("manifest", None, options, 0, CLASSIFICATION, in_memory=False).fold(0)
    for a, b in zip(batches(resumed, "train"), batches(fresh, "train"), strict=True):
        assert torch.equal(a.inputs["image"], b.inputs["image"])


def store_files(tmp_path, name):
    (store,) = (tmp_path / "cache" / "store").glob("manifest-*[0-9a-f]")
    return store, store / name


def test_a_truncated_or_altered_shard_is_named_and_decoded_again(emoji_rows, tmp_path, small_shards, counted,
                                                                 caplog):
    options = emoji_options(write_csv(tmp_path / "e.csv", emoji_rows[:100]), ratios=[0.6, 0.2, 0.2])
    first = open_dataset("manifest", None, options, 0, CLASSIFICATION, in_memory=True).fold(0)
    store, image = store_files(tmp_path, "image.npy")
    row_bytes = 3 * 16 * 16  # (pixels held as uint8 codes)
    size = image.stat().st_size
    with image.open("r+b") as handle:  # cut into the last shard (rows 97-100)
        handle.truncate(size - 2 * row_bytes)
    counted["rows"] = 0
    with caplog.at_level(logging.WARNING, logger="crossdistill"):
        again = open_dataset("manifest", None, options, 0, CLASSIFICATION, in_memory=True).fold(0)
    assert "shard 6 (rows 97-100) of image.npy is truncated; decoding those rows again" in caplog.text
    assert counted["rows"] == 4 and image.stat().st_size == size
    assert torch.equal(first["train"].inputs["image"], again["train"].inputs["image"])

    data = np.load(image, mmap_mode="r+")
    data[40, 0, 0, 0] ^= 1  # one value of row 41 (shard 2) altered
    data.flush()
    del data
    caplog.clear()
    counted["rows"] = 0
    open_dataset("manifest", None, options, 0, CLASSIFICATION)  # the cheap check: sizes only
    assert counted["rows"] == 0 and "altered" not in caplog.text
    with caplog.at_level(logging.WARNING, logger="crossdistill"):
        checked = open_dataset("manifest", None, options, 0, CLASSIFICATION, in_memory=True,
                               full_check=True).fold(0)
    assert "shard 2 (rows 33-48) of image.npy was altered" in caplog.text and counted["rows"] == 16
    assert torch.equal(first["train"].inputs["image"], checked["train"].inputs["image"])


def test_a_store_of_another_format_is_rebuilt(emoji_rows, tmp_path, small_shards, counted, caplog):
    options = emoji_options(write_csv(tmp_path / "e.csv", emoji_rows[:40]), ratios=[0.6, 0.2, 0.2])
    open_dataset("manifest", None, options, 0, CLASSIFICATION)
    store, meta = store_files(tmp_path, "store.json")
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "format": 0}))
    counted["rows"] = 0
    with caplog.at_level(logging.INFO, logger="crossdistill"):
        open_dataset("manifest", None, options, 0, CLASSIFICATION)
    assert f"decoded store from another version (format 0; this one reads {STORE_FORMAT}): rebuilt" in caplog.text
    assert counted["rows"] == 40


def test_moments_over_chunks_equal_numpy_over_all_rows(tmp_path):
    """Normalisation statistics fitted on rows read in chunks (a store larger than memory) equal numpy's over the
    rows held at once, to float64 rounding."""
    rng = np.random.default_rng(0)
    values = (rng.normal(3.0, 2.0, size=(500, 3, 4, 4)) ** 2).astype(np.float32)
    np.save(tmp_path / "v.npy", values)
    rows = np.sort(rng.choice(500, size=300, replace=False))
    on_disk = Rows.of(np.load(tmp_path / "v.npy", mmap_mode="r"), np.arange(500))
    whole_mean, whole_std = moments(values, rows, (0, 2, 3))
    import crossdistill.data.stored_rows as rows_module

    chunks = rows_module.chunks_of
    try:
        rows_module.chunks_of = lambda r, b, budget=0: chunks(r, b, budget=7 * b)  # chunks of 7 rows
        mean, std = moments(on_disk, rows, (0, 2, 3))
    finally:
        rows_module.chunks_of = chunks
    np.testing.assert_allclose(mean, whole_mean, rtol=1e-12)
    np.testing.assert_allclose(std, whole_std, rtol=1e-12)


def mixed_rate_rows(data_root, folder, count, native):
    """``count`` FSDD recordings as table rows (``wav``, ``digit``): the first ``native`` as they are (8 kHz, 16-bit),
    the others copied at 16 kHz, which a modality read at 8 kHz resamples (values no 16-bit code holds exactly)."""
    from scipy.io import wavfile
    from scipy.signal import resample_poly

    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, file in enumerate(sorted((data_root / "fsdd" / "recordings").glob("*_[0-2].wav"))[:count]):
        if i >= native:
            rate, wave = wavfile.read(file)
            file = folder / f"{file.stem}-16k.wav"
            wavfile.write(file, 2 * rate, resample_poly(wave.astype(np.float64), 2, 1).astype(np.int16))
        rows.append({"wav": str(file), "digit": file.stem.split("_")[0]})
    return rows


def stored(options):
    """The decoded store a manifest with ``options`` was just read through: its meta, and every row's values."""
    (folder,) = (Path(os.environ["CROSSDISTILL_CACHE"]) / "store").glob("manifest-*[0-9a-f]")
    meta = json.loads((folder / "store.json").read_text())
    return meta, {m: Rows.of(np.load(folder / f"{m}.npy", mmap_mode="r"), np.arange(meta["rows"]),
                             meta["modalities"][m]["scale"]).read() for m in meta["modalities"]}


def test_pictures_and_16_bit_audio_are_held_as_their_exact_codes(emoji_rows, data_root, tmp_path, small_shards):
    """uint8 pixels and int16 samples on disk (2.5x fewer bytes than float32 here), read back bit for bit as the
    values the decoder gives each file."""
    from crossdistill.serve.decode import decode_audio, decode_image

    speech = mixed_rate_rows(data_root, tmp_path, 60, native=60)
    rows = [picture | clip for picture, clip in zip(emoji_rows[::3], speech, strict=True)]
    options = emoji_options(write_csv(tmp_path / "both.csv", rows), ratios=[0.6, 0.2, 0.2])
    options["modalities"]["audio"] = {"kind": "audio", "column": "wav", "sample_rate": 8000, "seconds": 0.5}
    open_dataset("manifest", None, options, 0, CLASSIFICATION)
    meta, values = stored(options)
    assert {m: (layout["dtype"], layout["scale"]) for m, layout in meta["modalities"].items()} == {
        "image": ("|u1", 255.0), "audio": ("<i2", 32767.0)}
    images = np.stack([decode_image(row["image"], tmp_path, 16, False) for row in rows])
    clips = np.stack([decode_audio(row["wav"], tmp_path, 8000, 4000) for row in rows])
    assert values["image"].dtype == np.float32 and values["image"].tobytes() == images.tobytes()
    assert values["audio"].dtype == np.float32 and values["audio"].tobytes() == clips.tobytes()


@pytest.mark.parametrize("workers", [0, 2])
def test_a_row_its_codes_cannot_hold_makes_the_modality_float32(workers, data_root, tmp_path, small_shards, caplog):
    """Rows 1-40 are 16-bit at the rate read (int16 codes), rows 41-60 resampled: found when written (here or in a
    worker process), said in the log, and the modality decoded again as float32: the values the decoder gives."""
    from crossdistill.serve.decode import decode_audio

    rows = mixed_rate_rows(data_root, tmp_path / "wav", 60, native=40)
    options = {"path": str(write_csv(tmp_path / "speech.csv", rows)), "label": "digit", "ratios": [0.6, 0.2, 0.2],
               "modalities": {"audio": {"kind": "audio", "column": "wav", "sample_rate": 8000, "seconds": 0.5}}}
    with caplog.at_level(logging.INFO, logger="crossdistill"):
        open_dataset("manifest", None, options, 0, CLASSIFICATION, workers=workers)
    assert "data row 41 of modality 'audio' is not exact in int16 codes" in caplog.text
    assert re.search(rf"decoded store of 60 rows built in \d+\.\d\d s \({workers or 'no'} worker processes\)",
                     caplog.text)  # (the build's own time, for the user and for benchmarks/scale.py)
    meta, values = stored(options)
    assert meta["modalities"]["audio"]["dtype"] == "<f4" and meta["modalities"]["audio"]["scale"] is None
    assert meta["plain"] == ["audio"]
    clips = np.stack([decode_audio(row["wav"], tmp_path, 8000, 4000) for row in rows])
    assert values["audio"].tobytes() == clips.tobytes()


def test_codes_are_used_only_where_exact():
    from crossdistill.data.store_codes import IMAGE_CODES, PCM16_CODES, decode_codes

    pixels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    values = pixels.astype(np.float32) / 255.0
    assert np.array_equal(IMAGE_CODES.encode(values), pixels)
    assert decode_codes(IMAGE_CODES.encode(values), 255.0).tobytes() == values.tobytes()
    samples = np.array([-32768, -1, 0, 1, 32767], dtype=np.int16)
    assert np.array_equal(PCM16_CODES.encode(samples.astype(np.float32) / 32767.0), samples)
    assert IMAGE_CODES.encode(values + np.float32(1e-4)) is None  # (between two codes)
    assert IMAGE_CODES.encode(np.float32([1.5])) is None  # (out of uint8's range)
    assert IMAGE_CODES.encode(np.float32([np.nan])) is None
    assert IMAGE_CODES.encode(np.float32([-0.0])) is None  # (reads back as +0.0: not the same bits)
    assert IMAGE_CODES.encode(values.astype(np.float64)) is None


def test_integer_pcm_is_scaled_before_its_channels_are_averaged(tmp_path):
    """A stereo 16-bit wav decodes to the mean of its channels in [-1, 1] (it once came out in raw sample units);
    8-bit PCM, unsigned, is centred on 128."""
    from scipy.io import wavfile

    from crossdistill.data.audio import read_wav
    from crossdistill.serve.decode import decode_audio

    left, right = np.array([32767, 0, -32767, 16384], np.int16), np.array([32767, 32767, 0, 0], np.int16)
    wavfile.write(tmp_path / "stereo.wav", 8000, np.stack([left, right], axis=1))
    expected = (left.astype(np.float32) / 32767 + right.astype(np.float32) / 32767) / 2
    assert np.allclose(decode_audio("stereo.wav", tmp_path, 8000, 4), expected, atol=1e-7)
    assert np.allclose(read_wav(tmp_path / "stereo.wav", 8000), expected, atol=1e-7)
    wavfile.write(tmp_path / "eight.wav", 8000, np.array([0, 128, 255], np.uint8))
    assert np.allclose(decode_audio("eight.wav", tmp_path, 8000, 3), [-1.0, 0.0, 127 / 128])


def test_a_build_worker_decodes_without_importing_pytorch():
    """What a store's build worker imports to write a shard (the writer, the row decoder, the column kinds):
    numpy, Pillow and scipy, not PyTorch (seconds per worker start) nor scipy.signal (for resampling only)."""
    import subprocess
    import sys

    probe = ("import sys, crossdistill.data.store_writer, crossdistill.data.row_decoding; "
             "print(sorted(m for m in ('torch', 'scipy.signal') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_rows_of_coded_and_plain_parts_read_as_their_values(tmp_path):
    """Rows over two stores (supervision transfer's pairs and labelled table), one held as codes, one as float32,
    read in any order: each row is the value it stands for."""
    pixels = np.random.default_rng(0).integers(0, 256, size=(6, 2, 3), dtype=np.uint8)
    plain = np.random.default_rng(1).random((4, 2, 3), dtype=np.float32)
    rows = Rows.of(pixels, np.arange(6), 255.0).concat(Rows.of(plain, np.arange(4)))
    expected = np.concatenate([pixels.astype(np.float32) / np.float32(255.0), plain])
    order = np.array([7, 0, 9, 3, 5, 1])
    assert rows.read(order).tobytes() == expected[order].tobytes()
    assert rows.take(np.arange(6)).read().tobytes() == expected[:6].tobytes()  # (one part: scaled in place)
