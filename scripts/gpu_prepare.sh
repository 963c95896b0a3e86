#!/usr/bin/env bash
# On the dev machine (nvcc, no GPU): builds everything the GPU checks run and copies it, stripped, into
# gpu-carry/ (~25 MB, under the device tool's 64 MiB carry limit; the whole build folder is ~55 MB), laid out like
# a build folder so the check scripts take it as BUILD. Then, on the GPU machine, one call runs every check:
#   run(command="BUILD=gpu-carry OUT=$OUT scripts/gpu_all.sh", carry=["gpu-carry"], timeout_s=600)
# The CPU code is built for x86-64-v3 (AVX2 + FMA: every current server CPU), not -march=native, so the binaries
# run on the GPU machine's CPU whatever it is.
#   usage: scripts/gpu_prepare.sh        (env: BUILD=build-gpu, JOBS=nproc)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-gpu}
CARRY=gpu-carry
nvcc_path=$(command -v nvcc || true)
[ -z "$nvcc_path" ] && [ -x /usr/local/cuda/bin/nvcc ] && nvcc_path=/usr/local/cuda/bin/nvcc
[ -n "$nvcc_path" ] || { echo "gpu_prepare: no nvcc here; install the CUDA toolkit (docs/cuda.md)" >&2; exit 2; }

CUDACXX="$nvcc_path" cmake --preset cuda -B "$BUILD" -DTL_BUILD_TESTS=ON -DTL_NATIVE=OFF \
    -DCMAKE_CXX_FLAGS=-march=x86-64-v3
cmake --build "$BUILD" -j "${JOBS:-$(nproc)}" --target cuda_parity quant_parity bench_quant bench_train tunelab \
    gpu_fallback_libs

rm -rf "$CARRY"
for bin in tests/cuda/cuda_parity tests/cuda/quant_parity bench/bench_quant bench/bench_train apps/tunelab/tunelab; do
    mkdir -p "$CARRY/$(dirname "$bin")"
    strip --strip-unneeded -o "$CARRY/$bin" "$BUILD/$bin"
done
# Every shared library they link that the GPU machine may lack (it has no Debian -dev packages: yaml-cpp, md4c,
# libbenchmark, and GCC 12's runtime in case its own is older), each alone in fallback-libs/<soname>/ so that
# scripts/gpu_libs.sh adds exactly the missing ones. Not glibc (the loader's own) and not CUDA's libraries.
for bin in tests/cuda/cuda_parity tests/cuda/quant_parity bench/bench_quant bench/bench_train apps/tunelab/tunelab; do
    ldd "$BUILD/$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}'
done | sort -u | while read -r soname path; do
    case $soname in
        libc.so.* | libm.so.* | libdl.so.* | librt.so.* | libpthread.so.* | ld-linux* | libcuda.so.* | libcublas* | \
            libcudart*) ;;
        *) mkdir -p "$CARRY/fallback-libs/$soname" && cp -L "$path" "$CARRY/fallback-libs/$soname/$soname" ;;
    esac
done
du -sh "$CARRY"
echo "gpu_prepare: $CARRY is ready; on the GPU machine: BUILD=$CARRY scripts/gpu_all.sh (carry [\"$CARRY\"])"
