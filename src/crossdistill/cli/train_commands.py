"""Commands that train and inspect: run, tune, check, diagnose, report, list, fetch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from crossdistill.cli.app import _fail, _user_errors, app, console, log_to_console, print_results
from crossdistill.rundir import RunDir


@app.command()
def run(
    config_path: Annotated[Path, typer.Argument(metavar="CONFIG", help="experiment YAML")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="override, e.g. train.epochs=5")] = None,
    out: Annotated[Path, typer.Option(help="parent of the run directory")] = Path("runs"),
    data_root: Annotated[Path | None, typer.Option(help="data root (else $CROSSDISTILL_DATA)")] = None,
    full: Annotated[bool, typer.Option(help="every variant over every seed")] = False,
    export_onnx: Annotated[bool, typer.Option("--export", help="also export the distilled student")] = False,
    skip_bad_rows: Annotated[bool, typer.Option("--skip-bad-rows", help="manifest data: drop rows that do not "
                                                "decode (counted in the log) instead of stopping")] = False,
    resume: Annotated[bool, typer.Option(help="continue a killed run of the same config from its checkpoints "
                                         "(--no-resume: train every model afresh)")] = True,
    jobs: Annotated[int, typer.Option(min=1, help="train the folds in this many processes (the cores shared "
                                      "between them)")] = 1,
    overwrite: Annotated[bool, typer.Option(help="a changed config retrains in the same run directory (else it "
                                            "runs in <name>-<config hash>, the earlier run kept)")] = False,
) -> None:
    """Train the teacher, the student alone and the distilled student; evaluate; write the report."""
    from crossdistill import config, pipeline, report
    from crossdistill.distributed import is_main, process_group
    from crossdistill.export import export

    log_to_console()
    try:
        overrides = (list(set_ or []) + ([f"data.root={data_root}"] if data_root else [])
                     + (["data.options.skip_bad_rows=true"] if skip_bad_rows else []))
        exp = config.load(config_path, overrides)
        with process_group():  # several processes under torchrun; nothing to do otherwise
            run_dir, reports = pipeline.run(exp, out, full=full, resume=resume, jobs=jobs,
                                                   overwrite=overwrite), is_main()
    except _user_errors() as error:
        _fail(error)
    except KeyboardInterrupt:
        typer.echo("interrupted: every finished epoch is checkpointed; run the same command again to resume",
                   err=True)
        raise typer.Exit(code=130) from None
    if not reports:
        return  # rank 0 reports
    paths = report.build(run_dir)
    print_results(RunDir(run_dir).load_results().model_dump())
    if export_onnx:
        written = export(run_dir, ["onnx", "safetensors"])
        files = written.get("onnx") or ", ".join(t["onnx"] for t in written["towers"].values())
        console.print(f"exported {files} (onnxruntime parity {written['onnx_max_abs_diff']:.1e})")
    console.print(f"run directory: {run_dir}\nreport: {paths['html']}", highlight=False)


@app.command()
def tune(
    config_path: Annotated[Path, typer.Argument(metavar="CONFIG", help="experiment YAML (its tune: section)")],
    trials: Annotated[int | None, typer.Option(help="per fold (default tune.trials); a study continues")] = None,
    timeout: Annotated[float | None, typer.Option(help="minutes per fold, then no new trial")] = None,
    jobs: Annotated[int, typer.Option(min=1, help="trials in this many parallel processes")] = 1,
    new_study: Annotated[bool, typer.Option(help="drop a study made for another config or search space")] = False,
    storage: Annotated[str | None, typer.Option(help="Optuna database URL shared by several machines")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override, e.g. tune.trials=10")] = None,
    out: Annotated[Path, typer.Option(help="parent of the run directory")] = Path("runs"),
) -> None:
    """Search the recipe on each fold's validation split; compare the chosen one with the student alone and the
    config's recipe over every fold and tune.final_seeds (docs/tune.md)."""
    from crossdistill import config
    from crossdistill.tune import tune as run_tune

    log_to_console()
    try:
        run_dir = run_tune(config.load(config_path, list(set_ or [])), out, trials, timeout, jobs, new_study,
                           storage)
    except _user_errors() as error:
        _fail(error)
    except KeyboardInterrupt:
        typer.echo("interrupted: finished trials are kept; run the same command again to continue", err=True)
        raise typer.Exit(code=130) from None
    for line in [*(run_dir / "tune" / "tune.md").read_text().splitlines()[:8], f"summary: {run_dir}/tune/tune.md"]:
        console.print(line.replace("`", ""), highlight=False)


@app.command("check")
def check_cmd(
    config_path: Annotated[Path, typer.Argument(metavar="CONFIG", help="experiment YAML")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="override, e.g. train.epochs=5")] = None,
    data_root: Annotated[Path | None, typer.Option(help="data root (else $CROSSDISTILL_DATA)")] = None,
) -> None:
    """Check a config, its data and its models without training anything."""
    from crossdistill import config, pipeline

    log_to_console(ours=False)
    try:
        exp = config.load(config_path, list(set_ or []) + ([f"data.root={data_root}"] if data_root else []))
        plans, _ = pipeline.check(exp)
    except _user_errors() as error:
        _fail(error)
    console.print(f"{config_path}: ok ({exp.data.dataset}; runs: {', '.join(p.name for p in plans)})",
                  highlight=False)


@app.command("diagnose")
def diagnose_cmd(
    config_path: Annotated[Path, typer.Argument(metavar="CONFIG", help="experiment YAML")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="override, e.g. student_labels=0.1")] = None,
    out: Annotated[Path, typer.Option(help="parent of the run directory")] = Path("runs"),
    data_root: Annotated[Path | None, typer.Option(help="data root (else $CROSSDISTILL_DATA)")] = None,
    fold: Annotated[int | None, typer.Option(help="default: the config's first fold")] = None,
    max_rows: Annotated[int, typer.Option(min=10, help="probes fit on a seeded subsample of at most this many "
                                          "training and validation rows")] = 4000,
) -> None:
    """Will distillation help? Probes the teacher and the modalities before any student is distilled."""
    from crossdistill import config
    from crossdistill.diagnose import diagnose
    from crossdistill.diagnose.verdict import render

    log_to_console()
    try:
        exp = config.load(config_path, list(set_ or []) + ([f"data.root={data_root}"] if data_root else []))
        result = diagnose(exp, out, fold, max_rows)
    except _user_errors() as error:
        _fail(error)
    console.print("\n".join(render(result)), highlight=False)
    console.print(f"written: {out / exp.name / 'diagnose.json'}", highlight=False)


@app.command("report")
def report_cmd(run_dir: Annotated[Path, typer.Argument(help="a run directory")]) -> None:
    """Rebuild the report of a finished run from its directory."""
    from crossdistill import report

    try:
        paths = report.build(run_dir)
    except _user_errors() as error:
        _fail(error)
    print_results(RunDir(run_dir).load_results().model_dump())
    console.print(f"report: {paths['html']}", highlight=False)


@app.command("list")
def list_cmd(
    what: Annotated[str, typer.Argument(help="datasets | encoders | losses | tasks")],
    data_root: Annotated[Path | None, typer.Option(help="data root (else $CROSSDISTILL_DATA)")] = None,
) -> None:
    """List the registered datasets, encoders, losses or tasks."""
    from crossdistill.data import DATASETS, open_dataset
    from crossdistill.losses import LOSSES
    from crossdistill.models import ENCODERS
    from crossdistill.registry import summary
    from crossdistill.tasks import TASKS, build_task

    if what == "datasets":
        table = Table("dataset", "modalities (shape)", "train / val / test (fold 0)", "folds", "licence")
        for name in DATASETS.names():
            if hasattr(DATASETS.get(name), "usage"):  # built from the user's own files
                table.add_row(name, DATASETS.get(name).usage, "", "", DATASETS.get(name).licence)
                continue
            try:
                desc = open_dataset(name, str(data_root) if data_root else None, {}, 0,
                                    build_task("classification")).describe()
            except _user_errors() as error:
                table.add_row(name, "not available", str(error), "", "")
                continue
            shapes = ", ".join(f"{m} {tuple(s)}" for m, s in desc["modalities"].items())
            sizes = " / ".join(str(v) for v in desc["sizes (fold 0)"].values())
            table.add_row(name, shapes, sizes, str(desc["folds"]), desc["licence"])
        console.print(table)
    elif what == "losses":
        table = Table("loss", "what", "paper", "reads", "tasks")
        tasks = [build_task(name) for name in TASKS.names()]
        for name in LOSSES.names():
            loss = LOSSES.get(name)
            own = loss.reads if isinstance(loss.reads, str) else " + ".join(loss.reads)
            reads = own if not loss.teacher_reads else f"{own} / teacher {loss.teacher_reads}"
            suited = ", ".join(t.name for t in tasks if loss.needs <= t.provides)
            table.add_row(name, loss.headline, loss.paper, reads, suited)
        console.print(table)
    elif what == "tasks":
        table = Table("task", "what", "task loss", "test metrics", "options")
        for name in TASKS.names():
            task = TASKS.get(name)
            table.add_row(name, summary(task), task.loss, ", ".join(task.metric_names),
                          ", ".join(task.Options.model_fields) or "-")
        console.print(table)
    elif what == "encoders":
        for name in ENCODERS.names():
            console.print(f"{name}: {summary(ENCODERS.get(name))}", highlight=False)
    else:
        _fail(ValueError(f"cannot list {what!r}; choose datasets, encoders, losses or tasks"))


@app.command()
def fetch(
    name: Annotated[str, typer.Argument(help="a source (fsdd, mfeat, ...; an unknown name lists them)")],
    data_root: Annotated[Path | None, typer.Option(help="data root (else $CROSSDISTILL_DATA)")] = None,
) -> None:
    """Download a data source from its canonical public URL (sha256-checked) into the data root."""
    from crossdistill.data.sources import SOURCES, data_root as resolve_root, fetch as fetch_source  # noqa: I001

    if name not in SOURCES:
        _fail(ValueError(f"unknown source {name!r}; available: {', '.join(SOURCES)}"))
    try:
        target = fetch_source(SOURCES[name], resolve_root(data_root))
    except (OSError, ValueError) as error:  # no network, or a download whose checksum does not match
        _fail(error)
    console.print(f"fetched into {target}")
