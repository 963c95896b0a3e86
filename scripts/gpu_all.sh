#!/usr/bin/env bash
# Every GPU check in one call (fits the device tool's 10-minute limit): the CUDA backend's (scripts/gpu_check.sh:
# parity, training on CUDA against the CPU, bench_train and PyTorch) and the quantized kernels' (scripts/
# gpu_quant_check.sh: quant_parity, bench_quant --device cuda and its report). Budgets in seconds:
# GPU_CHECK_BUDGET_S (default 270) and GPU_QUANT_BUDGET_S (default 250); each script is also killed 40 s past its
# budget, so a hang in one cannot eat the other's time.
# What comes back: the device tool returns at most 8 files from $OUT and the last 12,000 characters of output, so
# $OUT ends with the two summaries, the bench_quant report and roofline, and everything else packed into
# logs.tar.gz; the output ends with the two summaries (the report's targets are in the first).
#   usage: BUILD=gpu-carry OUT=... scripts/gpu_all.sh      (prepared by scripts/gpu_prepare.sh)
set -uo pipefail
cd "$(dirname "$0")/.."
export BUILD=${BUILD:-gpu-carry} OUT=${OUT:-$PWD/gpu-check-out}
export GPU_CHECK_BUDGET_S=${GPU_CHECK_BUDGET_S:-270} GPU_QUANT_BUDGET_S=${GPU_QUANT_BUDGET_S:-250}
mkdir -p "$OUT"

# The carried binaries are built for x86-64-v3 (scripts/gpu_prepare.sh); on an older CPU they die with SIGILL.
if ! /lib64/ld-linux-x86-64.so.2 --help 2>/dev/null | grep -q 'x86-64-v3 (supported'; then
    echo "WARNING: this CPU does not report x86-64-v3 (AVX2, FMA): the carried binaries may die with SIGILL"
fi

run_check() {  # $1: script, $2: budget; prints the exit status
    timeout -k 10 $(($2 + 40)) bash "scripts/$1" >"$OUT/${1%.sh}.stdout" 2>&1
    echo $?
}
quant=$(run_check gpu_quant_check.sh "$GPU_QUANT_BUDGET_S")
check=$(run_check gpu_check.sh "$GPU_CHECK_BUDGET_S")

show() {  # $1: script name, $2: its exit status, $3: its summary file
    echo "==== scripts/$1 (exit $2)"
    if [ -s "$OUT/$3" ]; then cat "$OUT/$3"; else echo "(no summary; the last lines it printed:)"; tail -n 30 "$OUT/${1%.sh}.stdout"; fi
}

report=$(show gpu_quant_check.sh "$quant" gpu_quant_check.txt; show gpu_check.sh "$check" gpu_check.txt)

# Everything but the summaries and the report into one archive, so the tool's file limit drops nothing.
(
    cd "$OUT" || exit
    shopt -s nullglob dotglob
    keep=" gpu_quant_check.txt gpu_check.txt bench_quant_gpu.md quant_roofline.svg logs.tar.gz "
    rest=()
    for f in *; do [[ $keep == *" $f "* ]] || rest+=("$f"); done
    [ ${#rest[@]} -gt 0 ] && tar czf logs.tar.gz "${rest[@]}" && rm -rf "${rest[@]}"
)
echo "$report"
echo "(files in $OUT: $(cd "$OUT" && ls | tr '\n' ' '))"
[ "$quant" -eq 0 ] && [ "$check" -eq 0 ]
