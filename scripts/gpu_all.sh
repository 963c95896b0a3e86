#!/usr/bin/env bash
# Every GPU check in one call (fits the device tool's 10-minute limit): the CUDA backend's (scripts/gpu_check.sh:
# parity, training on CUDA against the CPU, bench_train and PyTorch) and the quantized kernels' (scripts/
# gpu_quant_check.sh: quant_parity, bench_quant --device cuda and its report). Budgets in seconds:
# GPU_CHECK_BUDGET_S (default 270) and GPU_QUANT_BUDGET_S (default 250). Results in $OUT; summaries last.
#   usage: BUILD=gpu-carry OUT=... scripts/gpu_all.sh      (prepared by scripts/gpu_prepare.sh)
set -uo pipefail
cd "$(dirname "$0")/.."
export BUILD=${BUILD:-gpu-carry} OUT=${OUT:-$PWD/gpu-check-out}
export GPU_CHECK_BUDGET_S=${GPU_CHECK_BUDGET_S:-270} GPU_QUANT_BUDGET_S=${GPU_QUANT_BUDGET_S:-250}
mkdir -p "$OUT"
bash scripts/gpu_quant_check.sh >/dev/null 2>&1
quant=$?
bash scripts/gpu_check.sh >/dev/null 2>&1
check=$?
echo "==== scripts/gpu_quant_check.sh (exit $quant)"
cat "$OUT/gpu_quant_check.txt" 2>/dev/null
[ -f "$OUT/bench_quant_gpu.md" ] && { echo "==== bench_quant report"; cat "$OUT/bench_quant_gpu.md"; }
echo "==== scripts/gpu_check.sh (exit $check)"
cat "$OUT/gpu_check.txt" 2>/dev/null
[ "$quant" -eq 0 ] && [ "$check" -eq 0 ]
