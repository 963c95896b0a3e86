#!/usr/bin/env bash
# Rebuilds the base model the course ships in assets/models: pretrains the lessons' default base (tiny, 2000 steps,
# seed 1, lr 0.003) from random weights in an empty cache and copies the result, with its training dashboard, into
# assets/models/<the cache folder's name>. Run it after bumping kModelRevision (engine/experiments/engine_version.hpp),
# which renames that folder; then delete the old one. About 3 minutes on two cores.
# Usage: scripts/build-base.sh [--threads N]   (default: all cores; the weights depend on the thread count and the
# CPU's OpenBLAS kernel only in the last bits)
set -euo pipefail
cd "$(dirname "$0")/.."
threads=$(nproc)
if [[ "${1:-}" == "--threads" && -n "${2:-}" ]]; then threads=$2; fi

cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target tunelab
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
XDG_CACHE_HOME="$scratch" ./build-release/apps/tunelab/tunelab run pretrain_base shipped=no --no-cache \
    --threads "$threads"
built=$(ls -d "$scratch"/tunelab/models/base-tiny-steps2000-seed1-*)
name=$(basename "$built")
mkdir -p assets/models
# Copy beside, then rename: an interrupted copy never leaves a half-written shipped model.
rm -rf "assets/models/.$name.tmp"
cp -r "$built" "assets/models/.$name.tmp"
rm -rf "assets/models/$name"
mv "assets/models/.$name.tmp" "assets/models/$name"
echo "shipped base: assets/models/$name"
