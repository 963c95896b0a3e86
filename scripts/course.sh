#!/usr/bin/env bash
# Installs what is missing, builds tunelab, and runs the main job: pretrain the tiny model (cached after the first
# run), fine-tune it on each task, and print the accuracy before and after. Extra arguments go to `tunelab demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake --preset release
cmake --build --preset release -j "$(nproc)"
exec ./build-release/apps/tunelab/tunelab demo "$@"
