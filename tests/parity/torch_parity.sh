#!/bin/sh
# Usage: torch_parity.sh TUNELAB PYTHON TORCH_GPT2_PY. The text reaches both programs as real newlines, so
# neither has to agree on escapes. Exit 77 (skip) without torch.
set -eu
tunelab=$1 python=$2 oracle=$3
if [ ! -x "$python" ] || ! "$python" -c 'import numpy, torch' 2>/dev/null; then
  echo "SKIP: torch not available (install python3-torch)"
  exit 77
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/tl_torch_parity.XXXXXX")
trap 'rm -rf "$work"' EXIT
text='Q: reverse abc
A: cba
'
"$tunelab" pretrain --preset nano --steps 20 --seed 3 --out "$work/base"
"$tunelab" inspect --model "$work/base" --text "$text" --out "$work/inspect.safetensors"
"$python" "$oracle" --model "$work/base" --text "$text" --inspect "$work/inspect.safetensors"
