#!/usr/bin/env bash
# Fresh machine -> .venv -> ruff + the test suite. The README's second command (and CI's).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh dev
export OMP_NUM_THREADS=1
.venv/bin/ruff check src tests benchmarks examples
.venv/bin/python -m pytest -q "$@"
