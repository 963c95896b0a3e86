#!/usr/bin/env bash
# The one GPU check of the CUDA backend (issue 9), for a rented GPU machine, run from the repo root with the
# build folder made on the dev machine carried along (build-cuda: cuda_parity and tunelab; see docs/cuda.md).
# It prints nvidia-smi, runs cuda_parity (every op and the nano model against the CPU, in fp32 and with tf32/bf16/fp16
# GEMMs), pretrains `tiny` for 200 steps on CUDA and on the CPU (times and loss curves side by side), evaluates the
# CUDA-trained model on both devices, times training and forward of tiny/small/medium on the GPU (bench_train
# --device cuda, fp32/tf32/bf16), runs compute-sanitizer on the op checks, then the same workloads in PyTorch
# (bench/compare_pytorch.py --device cuda), each if time is left, and writes a summary to $OUT/gpu_check.txt (the
# whole log to $OUT/gpu_check.log, the CUDA model to $OUT/tiny-cuda). Stays under ~5 minutes: every step has a
# timeout taken from what is left of GPU_CHECK_BUDGET_S (default 300 s).
#   usage: scripts/gpu_check.sh   (env: OUT, BUILD=build-cuda, GPU_CHECK_BUDGET_S, CPU_THREADS=16,
#                                  GPU_BENCH=1 (0: no benchmarks), GPU_BENCH_PRECISIONS=fp32,tf32,bf16,
#                                  GPU_BENCH_ATTENTION=gemm,fused)
set -uo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build-cuda}
OUT=${OUT:-$PWD/gpu-check-out}
BUDGET=${GPU_CHECK_BUDGET_S:-300}
CPU_THREADS=${CPU_THREADS:-16}
GPU_BENCH=${GPU_BENCH:-1}
GPU_BENCH_PRECISIONS=${GPU_BENCH_PRECISIONS:-fp32,tf32,bf16}
GPU_BENCH_ATTENTION=${GPU_BENCH_ATTENTION:-gemm,fused}  # bench_train's attention forwards (rows *_fused)
PARITY=$BUILD/tests/cuda/cuda_parity
TUNELAB=$BUILD/apps/tunelab/tunelab
BENCH=$BUILD/bench/bench_train
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/gpu_check.XXXXXX)
SUMMARY=$OUT/gpu_check.txt

heading() { printf '\n==== %s ====\n' "$*"; }
left() { echo $((BUDGET - SECONDS)); }                  # seconds left of the budget
cap() { local l; l=$(left); [ "$1" -lt "$l" ] && echo "$1" || echo $((l > 5 ? l - 5 : 1)); }
sum() { printf '%s\n' "$*" >>"$WORK/summary"; }

# ---- libraries: scripts/gpu_libs.sh (cuBLAS from the CUDA install there, the rest from $BUILD/fallback-libs) ----
# shellcheck source=scripts/gpu_libs.sh
. scripts/gpu_libs.sh
setup_libraries() {
    local bin
    gpu_setup_libraries "$PARITY" "$TUNELAB" "$BENCH"
    for bin in "$PARITY" "$TUNELAB" "$BENCH"; do
        [ -x "$bin" ] || continue
        echo "ldd $bin:"
        ldd "$bin" 2>&1 | sed 's/^/    /'
    done
}

# ---- pretraining output: progress lines "pretrain [###] 20/200  loss 3.7780 ..." (stderr, every 10%) and
# "done in 12.3 s (33300 tokens/s), final loss 2.9876" (stdout) ---------------------------------------------------
curve() { awk '/^pretrain \[/ { split($3, s, "/"); printf "%s %s\n", s[1], $5 }' "$1"; }
done_field() {  # $1 log, $2: seconds | tok_s | final; "-" when the run did not finish
    local v
    v=$(sed -n 's/^done in \([0-9.]*\) s (\([0-9.]*\) tokens\/s), final loss \([0-9.]*\).*/\1 \2 \3/p' "$1" |
        awk -v f="$2" '{ print (f == "seconds" ? $1 : f == "tok_s" ? $2 : $3) }')
    if [ -z "$v" ] && [ "$2" = tok_s ]; then  # a run stopped early: the rate of its last progress line
        v=$(awk '/^pretrain \[/ { for (i = 1; i < NF; ++i) if ($(i + 1) == "tok/s") r = $i; s = $3 } END { if (r != "") print r " (partial, step " s ")" }' "$1")
    fi
    echo "${v:--}"
}
eval_field() {  # $1 log, $2: match | loss | ppl  from "exact match 12.0%   loss 1.2345   perplexity 3.437"
    local v
    v=$(sed -n 's/^exact match \([0-9.]*\)%   loss \([0-9.]*\)   perplexity \([0-9.]*\).*/\1 \2 \3/p' "$1" |
        awk -v f="$2" '{ print (f == "match" ? $1 "%" : f == "loss" ? $2 : $3) }')
    echo "${v:--}"
}
speedup() {  # tokens/s of CUDA over the CPU's, when both runs finished
    awk -v a="$(done_field "$WORK/cuda.log" tok_s)" -v b="$(done_field "$WORK/cpu.log" tok_s)" \
        'BEGIN { if (a + 0 > 0 && b + 0 > 0 && b !~ /partial/) printf "%.1fx", a / b; else print "-" }'
}

# ---- benchmarks on the GPU: bench_train --device cuda (tiny/small/medium x GPU_BENCH_PRECISIONS), then PyTorch ----
bench_summary() {  # $1: bench_train's JSON; one line per row: name, tokens/s, ms/step, peak device MiB
    python3 - "$1" <<'PY' 2>/dev/null || grep -o '"name": "[^"]*"\|"tokens/s": [0-9.e+]*' "$1"
import json, sys
rows = [b for b in json.load(open(sys.argv[1]))["benchmarks"] if b.get("run_type") == "iteration"]
print(f"  {'benchmark':<36} {'tokens/s':>12} {'ms/iter':>9} {'peak MiB':>9}")
for b in rows:
    if "error_message" in b:
        print(f"  {b['name']:<36} ERROR {b['error_message'][:80]}")
    else:
        print(f"  {b['name']:<36} {b['tokens/s']:>12,.0f} {b['real_time']:>9.2f} {b.get('peak_device_MiB', 0):>9.0f}")
PY
}

gpu_benchmarks() {  # returns non-zero when bench_train failed on the GPU
    local rc
    timeout -k 10 "$(cap 90)" "$BENCH" --device cuda --precision "$GPU_BENCH_PRECISIONS" --attention "$GPU_BENCH_ATTENTION" \
        --benchmark_min_time=0.2 \
        --benchmark_out="$WORK/bench.json" --benchmark_out_format=json 2>&1 | tee "$WORK/bench.log"
    rc=${PIPESTATUS[0]}
    sum "bench_train --device cuda --precision $GPU_BENCH_PRECISIONS --attention $GPU_BENCH_ATTENTION (exit $rc):"
    [ -s "$WORK/bench.json" ] && bench_summary "$WORK/bench.json" >>"$WORK/summary"
    cp "$WORK/bench.json" "$OUT/bench_train_cuda.json" 2>/dev/null
    [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ]
}

pytorch_comparison() {  # $1: extra arguments for compare_pytorch.py; $2: the step's cap in seconds
    local rc
    if ! python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
        sum "compare_pytorch --device cuda: skipped (no PyTorch with CUDA in python3)"
        return
    fi
    # shellcheck disable=SC2086  # $1 is a list of arguments
    timeout -k 10 "$(cap "$2")" python3 bench/compare_pytorch.py "$BENCH" --device cuda --rounds 1 --repeats 3 $1 \
        >"$WORK/compare.log" 2>"$WORK/compare.err"
    rc=$?
    cat "$WORK/compare.log"; tail -n 5 "$WORK/compare.err"
    sum "compare_pytorch.py --device cuda $1 (exit $rc$([ "$rc" -eq 124 ] && echo ": stopped at the budget")):"
    grep -E '^(GPU:|\||PyTorch .* failed|torch.compile)' "$WORK/compare.log" | sed 's/^/  /' >>"$WORK/summary"
    cat "$WORK/compare.log" >>"$OUT/compare_pytorch_cuda.txt"
}

main() {
    local verdict=PASS rc t0 t1
    heading "machine"
    date -u
    echo "budget ${BUDGET} s; build folder $BUILD; out $OUT"
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi
        sum "GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)"
    else
        echo "nvidia-smi not found"
        sum "GPU: nvidia-smi not found"
    fi
    sum "CPU: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    heading "libraries"
    setup_libraries

    heading "cuda_parity (every op x shape against the CPU reference; the nano model against the CPU backend)"
    t0=$SECONDS
    timeout -k 10 "$(cap 120)" "$PARITY" 2>&1 | tee "$WORK/parity.log"
    rc=${PIPESTATUS[0]}
    local counts
    counts=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$WORK/parity.log" | tail -1)
    sum "cuda_parity: ${counts:-no summary line} (exit $rc, $((SECONDS - t0)) s)"
    if [ "$rc" -eq 77 ]; then
        sum "  cuda_parity SKIPPED (no usable GPU) on a GPU machine: counts as a failure"
    fi
    [ "$rc" -ne 0 ] && verdict=FAIL
    grep -E '^FAIL|^      ' "$WORK/parity.log" | head -40 | sed 's/^/  /' >>"$WORK/summary"

    heading "pretrain tiny, 200 steps, on CUDA"
    rm -rf "$OUT/tiny-cuda"
    timeout -k 10 "$(cap 90)" "$TUNELAB" pretrain --preset tiny --steps 200 --device cuda --out "$OUT/tiny-cuda" \
        >"$WORK/cuda.log" 2>&1
    rc=$?
    cat "$WORK/cuda.log"
    [ "$rc" -ne 0 ] && { verdict=FAIL; sum "pretrain on CUDA: exit $rc"; }

    heading "pretrain tiny, 200 steps, on CUDA with bf16 GEMMs (--precision bf16)"
    rm -rf "$WORK/tiny-cuda-bf16"
    timeout -k 10 "$(cap 60)" "$TUNELAB" pretrain --preset tiny --steps 200 --device cuda --precision bf16 \
        --out "$WORK/tiny-cuda-bf16" >"$WORK/cuda_bf16.log" 2>&1
    rc=$?
    cat "$WORK/cuda_bf16.log"
    [ "$rc" -ne 0 ] && { verdict=FAIL; sum "pretrain on CUDA --precision bf16: exit $rc"; }

    heading "eval of the CUDA-trained model (reverse, 50 examples) on CUDA and on the CPU"
    timeout -k 10 "$(cap 45)" "$TUNELAB" eval --model "$OUT/tiny-cuda" --task reverse --n 50 --device cuda \
        >"$WORK/eval_cuda.log" 2>&1 || { verdict=FAIL; sum "eval on CUDA failed"; }
    cat "$WORK/eval_cuda.log"
    timeout -k 10 "$(cap 45)" "$TUNELAB" eval --model "$OUT/tiny-cuda" --task reverse --n 50 --device cpu \
        --threads "$CPU_THREADS" >"$WORK/eval_cpu.log" 2>&1 || sum "eval on the CPU failed"
    cat "$WORK/eval_cpu.log"

    heading "compute-sanitizer memcheck on the op checks (if time is left)"
    if command -v compute-sanitizer >/dev/null && [ "$(left)" -gt 45 ]; then
        timeout -k 10 "$(cap 90)" compute-sanitizer --tool memcheck --leak-check no --error-exitcode 3 \
            "$PARITY" --ops-only >"$WORK/memcheck.log" 2>&1
        rc=$?
        tail -n 15 "$WORK/memcheck.log"
        if [ "$rc" -ne 0 ] && grep -qiE 'device not supported|not supported on this' "$WORK/memcheck.log"; then
            rc=unsupported
        fi
        case $rc in
            0) sum "compute-sanitizer memcheck (ops only): no errors" ;;
            unsupported) sum "compute-sanitizer memcheck: unavailable on this machine (no verdict)" ;;
            124) sum "compute-sanitizer memcheck: stopped at the budget (no verdict)" ;;
            *) verdict=FAIL; sum "compute-sanitizer memcheck: exit $rc; first lines:"
               grep -m 12 -E 'Invalid|ERROR|Error|error' "$WORK/memcheck.log" | sed 's/^/  /' >>"$WORK/summary" ;;
        esac
    else
        sum "compute-sanitizer memcheck: skipped ($(command -v compute-sanitizer >/dev/null && echo "$(left) s left" || echo "not installed"))"
    fi

    if [ "$GPU_BENCH" = 1 ] && [ "$(left)" -gt 30 ]; then
        heading "bench_train --device cuda: tiny, small, medium x $GPU_BENCH_PRECISIONS (tokens/s)"
        gpu_benchmarks || { verdict=FAIL; sum "  bench_train failed on the GPU"; }
    else
        sum "bench_train --device cuda: skipped (GPU_BENCH=$GPU_BENCH, $(left) s left)"
    fi
    if [ "$GPU_BENCH" = 1 ] && [ "$(left)" -gt 60 ]; then
        heading "PyTorch on the GPU, eager (bench/compare_pytorch.py --device cuda)"
        pytorch_comparison "--precision $GPU_BENCH_PRECISIONS --presets tiny,small,medium --no-compile" 90
    else
        sum "compare_pytorch --device cuda: skipped ($(left) s left)"
    fi

    heading "pretrain tiny, 200 steps, on the CPU ($CPU_THREADS threads; stopped at the budget if slower)"
    local cpu_limit
    cpu_limit=$(cap 120)
    rm -rf "$WORK/tiny-cpu"
    timeout -k 10 "$cpu_limit" "$TUNELAB" pretrain --preset tiny --steps 200 --device cpu --threads "$CPU_THREADS" \
        --out "$WORK/tiny-cpu" >"$WORK/cpu.log" 2>&1
    rc=$?
    cat "$WORK/cpu.log"
    [ "$rc" -eq 124 ] && sum "pretrain on the CPU: stopped after ${cpu_limit} s (budget); its curve below is partial"

    heading "pretrain tiny 200 steps: CUDA vs CPU"
    {
        printf '%-26s %-14s %s\n' "pretrain tiny 200 steps" "cuda" "cpu ($CPU_THREADS threads)"
        printf '%-26s %-14s %s\n' "time (s)" "$(done_field "$WORK/cuda.log" seconds)" "$(done_field "$WORK/cpu.log" seconds)"
        printf '%-26s %-14s %s\n' "tokens/s" "$(done_field "$WORK/cuda.log" tok_s)" "$(done_field "$WORK/cpu.log" tok_s)"
        printf '%-26s %-14s %s\n' "CUDA speedup" "$(speedup)" ""
        join -a1 -a2 -e - -o 0,1.2,2.2 <(curve "$WORK/cuda.log" | sort -k1,1) <(curve "$WORK/cpu.log" | sort -k1,1) |
            sort -n | awk '{ printf "%-26s %-14s %s\n", "loss at step " $1, $2, $3 }'
        printf '%-26s %-14s %s\n' "final loss (last 10 mean)" "$(done_field "$WORK/cuda.log" final)" "$(done_field "$WORK/cpu.log" final)"
        printf '%-26s %-14s %s\n' "cuda bf16 GEMMs: tokens/s" "$(done_field "$WORK/cuda_bf16.log" tok_s)" "(--precision bf16)"
        printf '%-26s %-14s %s\n' "cuda bf16 GEMMs: final" "$(done_field "$WORK/cuda_bf16.log" final)" "(should be close to fp32's)"
        printf '%-26s %-14s %s\n' "eval reverse n50: match" "$(eval_field "$WORK/eval_cuda.log" match)" "$(eval_field "$WORK/eval_cpu.log" match)"
        printf '%-26s %-14s %s\n' "eval reverse n50: loss" "$(eval_field "$WORK/eval_cuda.log" loss)" "$(eval_field "$WORK/eval_cpu.log" loss)"
        echo "(the eval columns run the same CUDA-trained weights on each device: their losses should agree to ~1e-4)"
    } | tee -a "$WORK/summary"

    if [ "$GPU_BENCH" = 1 ] && [ "$(left)" -gt 150 ]; then
        heading "PyTorch on the GPU with torch.compile (small, medium; bf16)"
        pytorch_comparison "--precision bf16 --presets small,medium" 140
    else
        sum "torch.compile comparison: skipped ($(left) s left, needs 150; run it alone: docs/cuda.md)"
    fi

    heading "summary ($SUMMARY)"
    {
        echo "tunelab gpu_check — $(date -u '+%Y-%m-%d %H:%M UTC'), $SECONDS s"
        cat "$WORK/summary"
        echo "verdict: $verdict"
    } >"$SUMMARY"
    cat "$SUMMARY"
    [ "$verdict" = PASS ]
}

main 2>&1 | tee "$OUT/gpu_check.log"
status=${PIPESTATUS[0]}
rm -rf "$WORK"
exit "$status"
