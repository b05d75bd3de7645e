"""Commands that deploy a trained model: export, predict, search."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from crossdistill.cli.app import _fail, _user_errors, app, console


@app.command("export")
def export_cmd(
    run_dir: Annotated[Path, typer.Argument(help="a run directory")],
    format_: Annotated[list[str] | None, typer.Option("--format", help="onnx and/or safetensors")] = None,
    model: Annotated[str, typer.Option(help="which model of the run")] = "distilled",
    fold: Annotated[int | None, typer.Option(help="default: the first fold present")] = None,
    seed: Annotated[int | None, typer.Option(help="default: the first seed present")] = None,
    quantize: Annotated[str | None, typer.Option(help="int8: also a quantised ONNX graph, measured against "
                                                 "float32")] = None,
    max_drop: Annotated[float, typer.Option(help="int8 may lose at most this many accuracy points (regression: "
                                            "% of float32's mean absolute error)")] = 1.0,
) -> None:
    """Export a trained model: ONNX (checked against PyTorch with onnxruntime) and/or safetensors, with its
    preprocessing recipes, golden rows and the numpy-only serving package; optionally an int8 graph."""
    from crossdistill.export import export

    try:
        written = export(run_dir, format_ or ["onnx", "safetensors"], model, fold, seed, quantize, max_drop)
    except _user_errors() as error:
        _fail(error)
    console.print(f"exporting {written['model']} as trained in {written['trained']}", highlight=False)
    for kind in ("onnx", "safetensors"):
        if kind in written:
            console.print(f"{kind}: {written[kind]}", highlight=False)
    for modality, tower in written.get("towers", {}).items():
        console.print(f"onnx ({modality} tower): {tower['onnx']}", highlight=False)
    if "onnx_max_abs_diff" in written:
        console.print(f"onnxruntime vs PyTorch, max |logit difference|: {written['onnx_max_abs_diff']:.2e}")
    if "skipped" in written.get("golden", {}):
        console.print(f"no golden rows, no numpy serving: {written['golden']['skipped']}", highlight=False)
    elif "golden" in written:
        differences = ", ".join(f"{m} {d:.1e}" for m, d in written["golden"]["max_input_difference"].items())
        console.print(f"golden rows: {written['golden']['rows']} real test rows; numpy serving vs training's "
                      f"preprocessing, max |difference|: {differences}", highlight=False)
    if "int8" in written:
        print_int8(written["int8"])
    console.print(f"serve without PyTorch: cd {Path(run_dir) / 'export'} && python -m crossdistill_serve predict . "
                  "INPUT", highlight=False)


def print_int8(int8: dict) -> None:
    metric = int8["metric"]
    table = Table("graph", "size on disk", metric, "latency batch 1 (ms)", "latency batch 64 (ms)",
                  title=f"float32 vs int8 ({int8['mode']}; {int8['test_rows']} test rows; onnxruntime, 1 thread)")
    for name in ("fp32", "int8"):
        row = int8[name]
        table.add_row(name, f"{row['size_bytes'] / 1024:.1f} kB", f"{row[metric]:.2f}",
                      f"{row['latency_ms_batch1']:.3f}", f"{row['latency_ms_batch64']:.2f}")
    console.print(table)
    ratio = int8["size_ratio"]
    weights = int8["fp32"]["weights_bytes"] / max(int8["int8"]["weights_bytes"], 1)
    console.print(f"int8 is {ratio:.1f}x smaller on disk ({weights:.1f}x for the weights alone)" if ratio >= 1 else
                  f"int8 is {1 / ratio:.2f}x larger on disk (quantisation nodes outweigh so few weights)",
                  highlight=False)


@app.command("predict")
def predict_cmd(
    source: Annotated[Path, typer.Argument(metavar="RUN_OR_EXPORT", help="a run directory, or an export folder")],
    input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="a file, a folder of files, or a table "
                                               "(CSV/TSV/JSON(L)/Parquet) with a column per modality")],
    out: Annotated[Path | None, typer.Option(help="predictions: .csv or .jsonl (default: CSV on standard output)")
                   ] = None,
    model: Annotated[str, typer.Option(help="which model")] = "distilled",
    fold: Annotated[int | None, typer.Option(help="a run's fold (default: the first present)")] = None,
    seed: Annotated[int | None, typer.Option(help="a run's seed (default: the first present)")] = None,
    int8: Annotated[bool, typer.Option("--int8", help="an export's quantised graph")] = False,
    batch_size: Annotated[int, typer.Option(help="rows per batch")] = 64,
    on_error: Annotated[str, typer.Option(help="a row that cannot be read: stop, or skip it (each named)")
                        ] = "stop",
) -> None:
    """Predict classes (with probabilities) or values (in the label's units) for new inputs, preprocessed as in
    training: from an export folder with onnxruntime and numpy, or from a run with PyTorch."""
    from crossdistill.predict import predict
    from crossdistill.serve import write_records

    try:
        records, skipped = predict(source, input_path, model, fold, seed, int8, batch_size, on_error,
                                   progress=out is not None)
        write_records(records, out)
    except (*_user_errors(), ValueError) as error:  # (serving errors are ValueErrors naming file, row, column)
        _fail(error)
    for line in skipped:
        typer.echo(f"skipped {line}", err=True)
    if out is not None:
        console.print(f"{len(records)} predictions written to {out}" + (f"; {len(skipped)} rows skipped"
                                                                       if skipped else ""), highlight=False)

@app.command("search")
def search_cmd(
    run_dir: Annotated[Path, typer.Argument(help="a finished retrieval run")],
    query: Annotated[str, typer.Argument(help="a text, or the path of a file (image, audio, a .npy array)")],
    gallery: Annotated[Path, typer.Option(help="a folder of files, a table with the gallery tower's column, or a "
                                          ".npy of arrays")],
    k: Annotated[int, typer.Option("-k", help="how many items to answer with")] = 5,
    model: Annotated[str, typer.Option(help="which model of the run")] = "distilled",
    show: Annotated[str | None, typer.Option(help="the table column that names an item (default: name, title, "
                                             "label or id, if present)")] = None,
) -> None:
    """Answer a query with the top-k gallery items, embedded by a trained dual encoder's towers."""
    from crossdistill.search import search

    try:
        found = search(run_dir, query, gallery, k, model, show=show)
    except (*_user_errors(), ValueError) as error:  # (serving errors are ValueErrors naming the file or column)
        _fail(error)
    files = any(hit["file"] != hit["item"] for hit in found["results"])
    table = Table("rank", "item", *(["file"] if files else []), "score",
                  title=f"{found['query']!r} ({found['query_modality']}) -> {found['gallery_size']} "
                        f"{found['gallery_modality']} items")
    for hit in found["results"]:
        table.add_row(str(hit["rank"]), hit["item"], *([hit["file"]] if files else []), f"{hit['score']:.3f}")
    console.print(table)
