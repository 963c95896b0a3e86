// bench_quant without CUDA in the build: --device cuda says how to get one.
#include "bench_quant_cuda.hpp"
#include "core/error.hpp"

namespace tl::bench {

void register_cuda_quant_benchmarks(const CudaQuantOptions&) {
    throw Error("[bench_quant] this build has no CUDA: configure with the cuda preset on a machine with nvcc "
                "(cmake --preset cuda; docs/cuda.md), then run build-cuda/bench/bench_quant --device cuda");
}

}  // namespace tl::bench
