#!/usr/bin/env bash
# Regenerates every figure in docs/figures/ from the lessons: a screenshot of each step that runs an experiment,
# rendered by the viewer after the experiment finishes (headless under Xvfb when there is no display).
#   scripts/figures.sh            full settings (results come from the cache when the course has been run)
#   scripts/figures.sh --quick    nano settings, fast (what the docs' draft figures use)
set -euo pipefail
cd "$(dirname "$0")/.."
quick=()
case "${1:-}" in
    "") ;;
    --quick) quick=(--set preset=nano --set base_steps=150 --set steps=60 --set eval_n=20) ;;
    *) echo "figures.sh: unknown option '$1' (known: --quick)" >&2; exit 2 ;;
esac
bash scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target tunelab
tunelab=./build-release/apps/tunelab/tunelab
mkdir -p docs/figures
run_gui() {
    if [ -n "${DISPLAY:-}" ]; then "$tunelab" gui "$@"; else xvfb-run -a -s "-screen 0 1280x800x24" "$tunelab" gui "$@"; fi
}
for lesson in lessons/[0-9]*/lesson.md; do
    id=$(basename "$(dirname "$lesson")")
    # Steps (1-based) whose section holds a ```run block.
    steps=$(awk '/^## /{s++} /^```run/{if (s) print s}' "$lesson" | sort -un)
    for k in $steps; do
        out="docs/figures/${id}-step${k}.png"
        echo "figures: $id step $k -> $out"
        run_gui --lesson "$id" --step "$k" "${quick[@]}" --screenshot "$out"
    done
done
echo "figures: done ($(ls docs/figures/*.png | wc -l) PNG files in docs/figures)"
