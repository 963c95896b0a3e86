#!/usr/bin/env bash
# The GPU check of the quantized kernels (issue 10), for a rented GPU machine, run from the repo root with the
# build folder made on the dev machine carried along (build-cuda: quant_parity and bench_quant; docs/cuda.md).
# It runs quant_parity (every kernel x format x activation type against the CPU quantizer and a float64
# product), compute-sanitizer on its quick cases if time is left, then bench_quant --device cuda (the full sweep,
# or --quick when the budget is short) with JSON output, and turns that into $OUT/bench_quant_gpu.md and
# $OUT/quant_roofline.svg with bench/quant_report.py (quality columns from docs/results/ptq_*.json).
# Summary last in $OUT/gpu_quant_check.txt; every step's timeout comes out of GPU_QUANT_BUDGET_S (default 300 s).
#   usage: scripts/gpu_quant_check.sh      (env: OUT, BUILD=build-cuda, GPU_QUANT_BUDGET_S)
set -uo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build-cuda}
OUT=${OUT:-$PWD/gpu-check-out}
BUDGET=${GPU_QUANT_BUDGET_S:-300}
PARITY=$BUILD/tests/cuda/quant_parity
BENCH=$BUILD/bench/bench_quant
mkdir -p "$OUT"
SUMMARY=$OUT/gpu_quant_check.txt
LOG=$OUT/gpu_quant_check.log
: >"$SUMMARY.tmp"

left() { echo $((BUDGET - SECONDS)); }
cap() { local l; l=$(left); [ "$1" -lt "$l" ] && echo "$1" || echo $((l > 5 ? l - 5 : 1)); }
sum() { printf '%s\n' "$*" | tee -a "$SUMMARY.tmp"; }

# Libraries the carried binaries may miss here: scripts/gpu_libs.sh.
# shellcheck source=scripts/gpu_libs.sh
. scripts/gpu_libs.sh
gpu_setup_libraries "$PARITY" "$BENCH" >"$OUT/.libraries"  # not in a pipe: its exports must stay in this shell
while IFS= read -r line; do
    case $line in MISSING:* | "NOT FOUND"*) sum "$line" ;; *) echo "$line" ;; esac
done <"$OUT/.libraries"
rm -f "$OUT/.libraries"
rm -f "$OUT/.quant_fail"
{
    echo "==== quant_parity"
    t0=$SECONDS
    timeout -k 10 "$(cap 150)" "$PARITY" >"$OUT/quant_parity.log" 2>&1
    rc=$?
    cat "$OUT/quant_parity.log"
    counts=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$OUT/quant_parity.log" | tail -1)
    sum "quant_parity: ${counts:-no summary line} (exit $rc, $((SECONDS - t0)) s)"
    [ "$rc" -ne 0 ] && touch "$OUT/.quant_fail"
    grep -E '^FAIL' "$OUT/quant_parity.log" | head -30 | sed 's/^/  /' >>"$SUMMARY.tmp"

    echo "==== bench_quant --device cuda"
    mode=""
    [ "$(left)" -lt 150 ] && mode=--quick
    t0=$SECONDS
    timeout -k 10 "$(cap 240)" "$BENCH" --device cuda $mode --benchmark_out="$OUT/bench_quant_gpu.json" \
        --benchmark_out_format=json >"$OUT/bench_quant.log" 2>&1
    rc=$?
    tail -n 40 "$OUT/bench_quant.log"
    sum "bench_quant --device cuda $mode: exit $rc, $((SECONDS - t0)) s"
    [ "$rc" -ne 0 ] && touch "$OUT/.quant_fail"
    if [ -s "$OUT/bench_quant_gpu.json" ]; then
        python3 bench/quant_report.py "$OUT/bench_quant_gpu.json" --accuracy docs/results/ptq_tiny_reverse_*.json \
            --md "$OUT/bench_quant_gpu.md" --svg "$OUT/quant_roofline.svg" && sed -n '/### Targets/,$p' "$OUT/bench_quant_gpu.md" >>"$SUMMARY.tmp"
    fi

    echo "==== compute-sanitizer memcheck on quant_parity --quick (if time is left)"
    if command -v compute-sanitizer >/dev/null && [ "$(left)" -gt 40 ]; then
        timeout -k 10 "$(cap 90)" compute-sanitizer --tool memcheck --leak-check no --error-exitcode 3 "$PARITY" --quick \
            >"$OUT/quant_memcheck.log" 2>&1
        rc=$?
        tail -n 5 "$OUT/quant_memcheck.log"
        if [ "$rc" -ne 0 ] && grep -qiE 'device not supported|not supported on this' "$OUT/quant_memcheck.log"; then
            rc=unsupported
        fi
        case $rc in
            0) sum "compute-sanitizer memcheck (quant_parity --quick): no errors" ;;
            unsupported) sum "compute-sanitizer memcheck: unavailable on this machine (no verdict)" ;;
            124) sum "compute-sanitizer memcheck: stopped at the budget (no verdict)" ;;
            *) touch "$OUT/.quant_fail"; sum "compute-sanitizer memcheck: exit $rc"
               grep -m 8 -E 'Invalid|ERROR|error' "$OUT/quant_memcheck.log" | sed 's/^/  /' >>"$SUMMARY.tmp" ;;
        esac
    else
        sum "compute-sanitizer memcheck: skipped ($(left) s left)"
    fi
} 2>&1 | tee "$LOG"

{
    echo "tunelab gpu_quant_check — $(date -u '+%Y-%m-%d %H:%M UTC'), $SECONDS s"
    cat "$SUMMARY.tmp"
    if [ -e "$OUT/.quant_fail" ]; then echo "verdict: FAIL"; else echo "verdict: PASS"; fi
} >"$SUMMARY"
rm -f "$SUMMARY.tmp" "$OUT/.quant_fail"
cat "$SUMMARY"
grep -q "verdict: PASS" "$SUMMARY"
