"""``crossdistill make-data spoken-commands``: a spoken-command set in the style of Fluent Speech Commands (Lugosch
et al., Interspeech 2019: intents = action x object x location, several phrasings each), spoken by Debian's
text-to-speech engines (eSpeak NG voices and variants, Flite's CMU voices, Festival's diphone and HTS voices) at
seeded rates and pitches (Festival: rates only), with seeded white noise, so that a speech student can be
taught by a text teacher reading the transcript with no recorded data at all.

Written to ``OUT``: ``wav/<voice>/<intent>-<phrasing>.wav`` (16 kHz mono 16-bit), ``commands.csv`` (audio,
transcript, intent, action, object, location, voice, engine, snr_db; one row per clip), ``README.md`` (what, how,
the engines' versions) and ``LICENCE.md`` (the voices' licences). Deterministic: the same engines give the same
files. Splits should be disjoint by ``voice`` (``group_column: voice``), as FSC's are by speaker.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np
from scipy.io import wavfile
from scipy.signal import resample_poly

from crossdistill.atomic import write_text_atomic
from crossdistill.config import ConfigError

SAMPLE_RATE = 16000
INSTALL = "apt-get install espeak-ng flite festival festvox-kallpc16k festvox-us-slt-hts"
PROGRAMS = {"espeak-ng": "espeak-ng", "flite": "flite", "festival": "text2wave"}
VERSION = {"espeak-ng": ["espeak-ng", "--version"], "flite": ["flite", "--version"],
           "festival": ["festival", "--version"]}  # (text2wave has no --version)

# (action, object, location): 30 intents, as FSC's mix of device, object and room
_ROOMS = ("kitchen", "bedroom", "washroom", "none")
INTENTS: tuple[tuple[str, str, str], ...] = (
    *((a, "lights", r) for a in ("activate", "deactivate") for r in _ROOMS),
    *((a, "heat", r) for a in ("increase", "decrease") for r in _ROOMS),
    ("increase", "volume", "none"), ("decrease", "volume", "none"),
    ("activate", "music", "none"), ("deactivate", "music", "none"),
    ("activate", "lamp", "none"), ("deactivate", "lamp", "none"),
    *(("bring", o, "none") for o in ("shoes", "socks", "newspaper", "juice")),
    *(("change language", o, "none") for o in ("english", "german", "chinese", "korean")),
)
PHRASINGS: dict[str, tuple[str, ...]] = {  # {o}: the object, {r}: " in the <room>" or ""
    "activate": ("turn on the {o}{r}", "switch the {o} on{r}", "{o} on{r} please", "could you turn the {o} on{r}"),
    "deactivate": ("turn off the {o}{r}", "switch the {o} off{r}", "{o} off{r} please",
                   "could you turn the {o} off{r}"),
    "increase": ("turn up the {o}{r}", "increase the {o}{r}", "more {o}{r} please", "make the {o} higher{r}"),
    "decrease": ("turn down the {o}{r}", "decrease the {o}{r}", "less {o}{r} please", "make the {o} lower{r}"),
    "bring": ("bring me my {o}", "fetch my {o}", "get me the {o}", "go get my {o}"),
    "change language": ("switch the language to {o}", "change language to {o}", "set the language to {o}",
                        "use {o}"),
}


@dataclass(frozen=True)
class Voice:
    engine: str  # espeak-ng, flite, festival
    name: str  # the engine's voice (espeak-ng: language+variant)

    @property
    def id(self) -> str:
        return f"{self.engine}-{self.name}".replace("+", "-").replace("_", "-")


VOICES: tuple[Voice, ...] = (
    *(Voice("espeak-ng", v) for v in ("en-us+m3", "en-us+f2", "en-us+klatt", "en-gb+m1", "en-gb+f3", "en-gb+m7",
                                      "en-gb-scotland+m2", "en-gb-scotland+f4", "en-gb-x-rp+m4", "en-gb-x-rp+f1",
                                      "en-029+m5", "en-gb-x-gbclan+m6", "en-gb-x-gbcwmd+f5", "en-us+grandma")),
    *(Voice("flite", v) for v in ("kal", "kal16", "awb", "rms", "slt")),
    Voice("festival", "kal_diphone"), Voice("festival", "cmu_us_slt_arctic_hts"),
)
LICENCES = {
    "espeak-ng": "eSpeak NG (GPL-3.0-or-later); its voice data are part of the program",
    "flite": "Flite and its CMU voices kal, awb, rms, slt (BSD-style CMU licence: use and redistribution permitted)",
    "festival": "Festival with the CMU/OGI kal diphone voice and the CMU ARCTIC slt HTS voice (free licences: use and "
                "redistribution permitted, as Debian ships them)",
}


def transcript(action: str, obj: str, location: str, phrasing: int) -> str:
    room = "" if location == "none" else f" in the {location}"
    return PHRASINGS[action][phrasing].format(o=obj, r=room)


def intent_name(action: str, obj: str, location: str) -> str:
    return f"{action.replace(' ', '_')}-{obj}-{location}"


def _synthesise(voice: Voice, text: str, rate: float, pitch: float, out: Path) -> None:
    """``text`` spoken by ``voice`` into the wav ``out`` (the engine's own rate)."""
    if voice.engine == "espeak-ng":
        command = ["espeak-ng", "-v", voice.name, "-s", str(int(160 * rate)), "-p", str(int(pitch)), "-w", str(out),
                   text]
    elif voice.engine == "flite":
        command = ["flite", "-voice", voice.name, "--setf", f"duration_stretch={1 / rate:.3f}",
                   "--setf", f"int_f0_target_mean={90 + pitch:.0f}", "-t", text, "-o", str(out)]
    else:
        command = ["text2wave", "-eval", f"(voice_{voice.name})", "-eval",
                   f"(Parameter.set 'Duration_Stretch {1 / rate:.3f})", "-o", str(out)]
    done = subprocess.run(command, input=text if voice.engine == "festival" else None, capture_output=True,
                          text=True, timeout=120, check=False)
    if done.returncode != 0 or not out.is_file():
        raise RuntimeError(f"{voice.engine} voice {voice.name} failed on {text!r}: {done.stderr.strip()[:300]}")


def _finish(raw: Path, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """The engine's wav -> 16 kHz mono int16 with white noise at ``snr_db``."""
    rate, wave = wavfile.read(raw)
    wave = wave.astype(np.float64) / 32768.0
    if wave.ndim == 2:
        wave = wave.mean(axis=1)
    if rate != SAMPLE_RATE:
        step = gcd(rate, SAMPLE_RATE)
        wave = resample_poly(wave, SAMPLE_RATE // step, rate // step)
    power = float(np.mean(wave**2)) or 1e-8
    wave = wave + rng.standard_normal(wave.size) * np.sqrt(power / 10 ** (snr_db / 10))
    peak = float(np.abs(wave).max()) or 1.0
    return np.round(wave / max(peak, 1.0) * 32767 * 0.9).astype(np.int16)


def check_engines(engines: list[str]) -> None:
    unknown = sorted(set(engines) - set(PROGRAMS))
    if unknown:
        raise ConfigError(f"unknown engines {', '.join(unknown)}; choose from {', '.join(PROGRAMS)}")
    missing = [e for e in engines if shutil.which(PROGRAMS[e]) is None]
    if missing:
        raise ConfigError(f"spoken-commands needs the text-to-speech engines {', '.join(missing)} (not found): "
                          f"{INSTALL} (Debian/Ubuntu, as root), or leave them out with --engines")


def make_spoken_commands(out: Path, engines: list[str] | None = None, voices: int | None = None,
                         phrasings: int = 4, seed: int = 0, snr_db: tuple[float, float] = (10.0, 30.0),
                         progress: Callable[[int, int], None] | None = None) -> Path:
    """Write the set into ``out`` (see the module's docstring); returns its ``commands.csv``. ``voices``: the
    first N voices of the engines chosen; ``phrasings``: 1-4 per intent."""
    engines = engines or list(PROGRAMS)
    check_engines(engines)
    chosen = [v for v in VOICES if v.engine in engines][:voices]
    jobs = [(v, i, p) for v in chosen for i in range(len(INTENTS)) for p in range(min(phrasings, 4))]
    rows: list[dict[str, object]] = [{} for _ in jobs]  # (filled in job order, whichever thread speaks)

    def one(k: int) -> None:
        voice, i, p = jobs[k]
        action, obj, location = INTENTS[i]
        rng = np.random.default_rng([seed, VOICES.index(voice), i, p])
        rate, pitch, snr = rng.uniform(0.8, 1.25), rng.uniform(30, 70), rng.uniform(*snr_db)
        text = transcript(action, obj, location, p)
        relative = Path("wav") / voice.id / f"{intent_name(action, obj, location)}-{p}.wav"
        with tempfile.TemporaryDirectory() as scratch:
            _synthesise(voice, text, rate, pitch, Path(scratch) / "raw.wav")
            wave = _finish(Path(scratch) / "raw.wav", snr, rng)
        (out / relative).parent.mkdir(parents=True, exist_ok=True)
        wavfile.write(out / relative, SAMPLE_RATE, wave)
        rows[k] = {"audio": relative.as_posix(), "transcript": text, "intent": intent_name(action, obj, location),
                   "action": action, "object": obj, "location": location, "voice": voice.id,
                   "engine": voice.engine, "snr_db": round(snr, 1)}

    out.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(4) as pool:  # (the engines run as subprocesses)
        for done, _ in enumerate(pool.map(one, range(len(jobs))), start=1):
            if progress:
                progress(done, len(jobs))
    table = out / "commands.csv"
    with tempfile.NamedTemporaryFile("w", dir=out, delete=False, newline="", suffix=".part") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    Path(handle.name).replace(table)
    _describe(out, chosen, engines, len(rows), phrasings, seed, snr_db)
    return table


def _version(engine: str) -> str:
    """The engine's own version line (flite prints a copyright line first)."""
    lines = subprocess.run(VERSION[engine], capture_output=True, text=True, check=False, timeout=30,
                           stdin=subprocess.DEVNULL).stdout.strip().splitlines()
    return next((line.strip() for line in lines if "version" in line.lower()), lines[0] if lines else "unknown")


def _describe(out: Path, chosen: list[Voice], engines: list[str], clips: int, phrasings: int, seed: int,
              snr_db: tuple[float, float]) -> None:
    versions = {e: _version(e) for e in engines}
    write_text_atomic(out / "README.md", (
        "# Spoken commands (synthetic)\n\n"
        f"{clips} clips: {len(INTENTS)} intents (action x object x location, in the style of Fluent Speech "
        f"Commands) x {min(phrasings, 4)} phrasings x {len(chosen)} voices, 16 kHz mono, white noise at a seeded "
        f"SNR of {snr_db[0]:g}-{snr_db[1]:g} dB, seeded rate and pitch per clip (seed {seed}). Made by "
        "`crossdistill make-data spoken-commands`. Split by `voice` so that no test voice is heard in "
        "training.\n\nVoices: " + ", ".join(v.id for v in chosen) + "\n\nEngines: "
        + "; ".join(f"{e}: {v}" for e, v in versions.items()) + "\n"))
    write_text_atomic(out / "LICENCE.md", (
        "# Licence of the voices\n\nThe clips are the output of these text-to-speech engines and voices; the "
        "transcripts and this table are crossdistill's (same licence as crossdistill).\n\n"
        + "".join(f"- {LICENCES[e]}\n" for e in engines)))
