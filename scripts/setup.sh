#!/usr/bin/env bash
# Create .venv and install crossdistill into it: torch pinned first (a looser spec pulls a multi-GB CUDA
# build), then the package with the extras named in $1 (e.g. "dev"). Sourced by the two README commands.
set -euo pipefail
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-pin.txt
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${1:+[$1]}"
if [ -z "${CROSSDISTILL_DATA:-}" ] && [ -d ../shared/data ]; then
  CROSSDISTILL_DATA="$(cd ../shared/data && pwd)"
  export CROSSDISTILL_DATA
fi
export OMP_WAIT_POLICY=PASSIVE MPLBACKEND=Agg
