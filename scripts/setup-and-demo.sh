#!/usr/bin/env bash
# Fresh machine -> virtual environment -> the demo: an image model teaches an audio model. The README's first command.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-pin.txt
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
if [ -z "${CROSSDISTILL_DATA:-}" ] && [ -d ../shared/data ]; then export CROSSDISTILL_DATA="$(cd ../shared/data && pwd)"; fi
export OMP_WAIT_POLICY=PASSIVE MPLBACKEND=Agg
.venv/bin/crossdistill run configs/av_digits/demo.yaml "$@"
