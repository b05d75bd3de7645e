"""Commands that make data: ``make-data spoken-commands``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress

from crossdistill.cli.app import _fail, app, console

GENERATORS = ("spoken-commands",)


@app.command("make-data")
def make_data(
    name: Annotated[str, typer.Argument(help="what to make: spoken-commands")],
    out: Annotated[Path, typer.Argument(help="the folder to write (e.g. $CROSSDISTILL_DATA/spoken_commands)")],
    engines: Annotated[str, typer.Option(help="text-to-speech engines, comma-separated")] = "espeak-ng,flite,festival",
    voices: Annotated[int | None, typer.Option(help="only the first N voices of those engines")] = None,
    phrasings: Annotated[int, typer.Option(min=1, max=4, help="phrasings per intent")] = 4,
    seed: Annotated[int, typer.Option(help="rates, pitches and noise")] = 0,
) -> None:
    """Generate a data set (deterministic): spoken commands from Debian's text-to-speech engines."""
    from crossdistill.config import ConfigError
    from crossdistill.data.spoken_commands import make_spoken_commands

    if name not in GENERATORS:
        _fail(ValueError(f"unknown data set {name!r}; available: {', '.join(GENERATORS)}"))
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(f"speaking into {out}", total=None)
        try:
            table = make_spoken_commands(out, [e.strip() for e in engines.split(",") if e.strip()], voices,
                                         phrasings, seed, progress=lambda done, total: bar.update(
                                             task, completed=done, total=total))
        except (ConfigError, RuntimeError) as error:
            _fail(error)
    console.print(f"wrote {table} ({sum(1 for _ in table.open()) - 1} clips; licence: {out / 'LICENCE.md'})")
