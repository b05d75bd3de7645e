#!/usr/bin/env bash
# Fresh machine -> virtual environment -> lint + tests. The README's second command.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# torch first and pinned: any looser spec resolves to a multi-GB CUDA build (see docs/install.md).
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-pin.txt
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
if [ -z "${CROSSDISTILL_DATA:-}" ] && [ -d ../shared/data ]; then export CROSSDISTILL_DATA="$(cd ../shared/data && pwd)"; fi
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE MPLBACKEND=Agg
.venv/bin/ruff check src tests benchmarks
.venv/bin/python -m pytest -q "$@"
