// bench_quant --device cuda: the GPU benchmarks of weight-only quantized products (bench_quant_cuda.cpp), registered
// at run time once the GPU's copy bandwidth and dense bf16 peak have been measured. Without CUDA in the build,
// bench_quant_no_cuda.cpp defines the same function, which says how to get a CUDA build.
#pragma once
#include <string>

namespace tl::bench {

struct CudaQuantOptions {
    bool quick = false;           // the tunelab presets and 8192 x 8192 only, batches 1, 16, 256
    std::string act = "bf16";     // activation type: bf16 or fp16
    int reps = 30;                // timed launches per case (each after an L2 flush); the median is reported
};

// Registers the cases as Google Benchmark benchmarks named "cuda/...". tl::Error when the build has no CUDA or
// the machine has no usable GPU (with CUDA's reason).
void register_cuda_quant_benchmarks(const CudaQuantOptions& options);

}  // namespace tl::bench
