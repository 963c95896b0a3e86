# Sourced by scripts/gpu_check.sh and scripts/gpu_quant_check.sh (needs BUILD): puts on LD_LIBRARY_PATH the
# folders of the shared libraries the carried binaries miss on the GPU machine. cuBLAS comes from the CUDA
# install there; everything else from the copies scripts/gpu_prepare.sh carries, one library per folder
# ($BUILD/fallback-libs/<soname>/), so adding a folder adds exactly the library that was missing (a folder that
# also held libstdc++ would be seen by python3 and PyTorch too).

gpu_lib_dir() {  # $1: a soname; prints the first folder that holds it
    local d
    for d in "$BUILD/fallback-libs/$1" /usr/local/cuda/lib64 /usr/local/cuda/lib \
        /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-13*/lib64 /usr/local/cuda-13*/targets/x86_64-linux/lib \
        /usr/lib/x86_64-linux-gnu /usr/lib64 "$BUILD/fallback-libs/benchmark" "$BUILD/fallback-libs"; do
        [ -e "$d/$1" ] && { (cd "$d" && pwd); return; }
    done
    d=$(python3 -c 'import nvidia.cublas, os; print(os.path.join(list(nvidia.cublas.__path__)[0], "lib"))' 2>/dev/null)
    [ -n "$d" ] && [ -e "$d/$1" ] && { echo "$d"; return; }
    timeout -k 5 20 find /usr /opt -name "$1" -print -quit 2>/dev/null | xargs -r dirname
}

# gpu_setup_libraries BIN...: prints "using <lib> from <dir>" or "NOT FOUND anywhere: <lib> (needed by <bin>)"
# for each library ldd cannot resolve, and "MISSING: <bin>" for a binary that is not there.
gpu_setup_libraries() {
    local bin lib dir
    for bin in "$@"; do
        [ -x "$bin" ] || { echo "MISSING: $bin (build it with scripts/gpu_prepare.sh and carry $BUILD)"; continue; }
        for lib in $(ldd "$bin" 2>&1 | awk '/not found/ {print $1}' | sort -u); do
            dir=$(gpu_lib_dir "$lib")
            if [ -n "$dir" ] && [ -e "$dir/$lib" ]; then
                echo "using $lib from $dir"
                export LD_LIBRARY_PATH="$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
            else
                echo "NOT FOUND anywhere: $lib (needed by $bin)"
            fi
        done
    done
}
