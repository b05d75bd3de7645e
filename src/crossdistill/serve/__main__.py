"""``python -m crossdistill_serve`` (the copy in an export folder) or ``python -m crossdistill.serve``:
``predict EXPORT INPUT`` and ``check EXPORT``, with numpy and onnxruntime only."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .decode import BadCell
from .inputs import InputError
from .model import ExportedModel, ExportError, check_golden
from .predict import BadRow, write_records
from .recipes import NotServable
from .table import TableError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="crossdistill_serve", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    predict = commands.add_parser("predict", help="predict for a file, a folder or a table")
    predict.add_argument("export", type=Path, help="an export folder")
    predict.add_argument("input", type=Path, help="a file, a folder of files, or a table (CSV/TSV/JSON(L)/Parquet)")
    predict.add_argument("--out", type=Path, default=None, help=".csv or .jsonl (default: CSV on standard output)")
    predict.add_argument("--model", default="distilled")
    predict.add_argument("--int8", action="store_true", help="the quantised graph")
    predict.add_argument("--batch-size", type=int, default=64)
    predict.add_argument("--on-error", choices=("stop", "skip"), default="stop", help="a row that cannot be read")
    check = commands.add_parser("check", help="replay the export's golden rows")
    check.add_argument("export", type=Path)
    check.add_argument("--model", default="distilled")
    check.add_argument("--int8", action="store_true")
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            differences = check_golden(args.export, args.model, args.int8)
            print("golden rows reproduced; max |difference|: "
                  + ", ".join(f"{k} {v:.2e}" for k, v in differences.items()))
            return 0
        model = ExportedModel(args.export, args.model, args.int8)
        records, skipped = model.predict(args.input, args.batch_size, args.on_error, progress=args.out is not None)
        write_records(records, args.out)
    except (BadCell, BadRow, ExportError, InputError, NotServable, TableError, ValueError) as why:
        print(f"error: {why}", file=sys.stderr)
        return 2
    for line in skipped:
        print(f"skipped {line}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
