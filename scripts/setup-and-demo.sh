#!/usr/bin/env bash
# Fresh machine -> .venv -> the demo: an image model teaches an audio model. The README's first command.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
.venv/bin/crossdistill run configs/av_digits/demo.yaml --jobs 2 "$@"
