#!/usr/bin/env bash
# Installs what is missing, builds, and runs the test suite.
#   scripts/test.sh               the default build (Release) and all its tests
#   scripts/test.sh --asan        the AddressSanitizer + UBSan build of the engine tests
#   scripts/test.sh --cuda-build  compile the CUDA path with the cuda preset (skipped when there is no nvcc)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-default}
case "$mode" in
    default|--asan|--cuda-build) ;;
    *) echo "test.sh: unknown option '$mode' (known: --asan, --cuda-build)" >&2; exit 2 ;;
esac
bash scripts/setup.sh
jobs=$(nproc)
case "$mode" in
    default)
        cmake --preset default
        cmake --build --preset default -j "$jobs"
        ctest --preset default
        ;;
    --asan)
        cmake --preset asan
        cmake --build --preset asan -j "$jobs"
        ctest --preset asan
        ;;
    --cuda-build)
        nvcc_path=$(command -v nvcc || true)
        [ -z "$nvcc_path" ] && [ -x /usr/local/cuda/bin/nvcc ] && nvcc_path=/usr/local/cuda/bin/nvcc
        if [ -z "$nvcc_path" ]; then
            echo "test.sh: no nvcc on this machine; skipping the CUDA build"
            exit 0
        fi
        CUDACXX="$nvcc_path" cmake --preset cuda -DTL_BUILD_TESTS=ON
        # Only what the CUDA path adds; the CPU targets were built and tested by the default run.
        cmake --build --preset cuda -j "$jobs" --target cuda_parity quant_parity bench_quant
        # The checks of the checker need no GPU: the CPU backend and the reference kernels in the GPU's place, the
        # tf32/bf16/fp16 cases on the host emulation of the GPU's operand rounding (docs/cuda.md).
        for stand_in in --cpu --ref; do
            out=$(build-cuda/tests/cuda/cuda_parity "$stand_in") ||
                { grep -E '^FAIL|^      ' <<<"$out"; echo "cuda_parity $stand_in failed" >&2; exit 1; }
            echo "cuda_parity $stand_in: $(tail -n 1 <<<"$out")"
        done
        # The CUDA tests need a GPU; without one there is nothing to run (they would only skip).
        if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
            ctest --preset cuda -L cuda
        else
            echo "test.sh: CUDA path compiled; no GPU here, so the cuda-labelled tests were not run"
        fi
        ;;
esac
