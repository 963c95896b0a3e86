#!/usr/bin/env bash
# Installs what is missing, builds tunelab, and starts the course: the window (Dear ImGui) when there is a
# display, the terminal lessons otherwise. Extra arguments go to `tunelab course` (e.g. --terminal, --lang ko).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake --preset release
cmake --build --preset release -j "$(nproc)"
exec ./build-release/apps/tunelab/tunelab course "$@"
