#!/bin/sh
# Usage: lora_merge_oracle.sh TUNELAB PYTHON TORCH_GPT2_PY ORACLE_PY. Fine-tunes a nano LoRA (rsLoRA, two target
# names), writes the PEFT folder and the merged model, and checks the merge against PEFT's rule in numpy.
# Exit 77 (skip) without Debian's python3 and numpy.
set -eu
tunelab=$1 python=$2 reader=$3 oracle=$4
if [ ! -x "$python" ] || ! "$python" -c 'import numpy' 2>/dev/null; then
  echo "SKIP: numpy not available (install python3-numpy)"
  exit 77
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/tl_lora_oracle.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$tunelab" pretrain --preset nano --steps 10 --seed 2 --out "$work/base" --threads 1 >/dev/null
"$tunelab" finetune --base "$work/base" --task reverse --method lora --rank 4 --alpha 6 --rslora \
  --targets c_attn,mlp.c_proj --steps 5 --batch 4 --out "$work/adapter" --merged-out "$work/merged" --threads 1 >/dev/null
"$python" "$oracle" "$reader" "$work/base" "$work/adapter" "$work/merged"
