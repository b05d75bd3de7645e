"""The command-line app and what its commands share: one-line errors for what the user gave, the results table."""

from __future__ import annotations

import logging
import os

import typer
from rich.console import Console
from rich.table import Table

# Before torch loads OpenMP: spin-waiting threads slow training several-fold on a loaded machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

app = typer.Typer(help="Cross-modal knowledge distillation: teach a small model with a big one from another "
                       "modality.", no_args_is_help=True, pretty_exceptions_enable=False)
console = Console(width=None if Console().is_terminal else 200)  # logs and CI: do not squeeze the table


def _user_errors() -> tuple[type[Exception], ...]:
    """Errors caused by what the user gave (config, data, checkpoints, run directories): reported in one line,
    exit code 2. Anything else is a bug and keeps its traceback."""
    from crossdistill.errors import CrossdistillError

    return (CrossdistillError, FileNotFoundError)


def _fail(error: Exception) -> None:
    message = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def print_results(results: dict) -> None:
    from crossdistill.report.tables import columns, compression, describe_metrics, rows, verdicts

    table = Table(title=f"{results['name']} ({results['dataset']}): test {describe_metrics(results)}, mean ± std")
    for column in columns(results):
        table.add_column(column, justify="left" if column in ("model", "modalities", "teacher") else "right")
    for row in rows(results):
        table.add_row(*row.values())
    console.print(table)
    for line in [compression(results), *verdicts(results)]:
        console.print(line.replace("`", ""), highlight=False)


def log_to_console(ours: bool = True) -> None:
    """Warnings of other libraries; crossdistill's own progress lines too when ``ours``."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    if ours:
        logging.getLogger("crossdistill").setLevel(logging.INFO)
