// cuda_parity: the CUDA backend checked against the CPU — every op against the reference kernels
// (op_parity.cpp), then the whole nano model against the CPU backend (model_parity.cpp), then the same GEMM,
// linear and attention ops and the nano loss curve with tf32, bf16 and fp16 GEMMs (precision_parity.cpp,
// model_parity.cpp), then the fused attention forward (CudaOptions::attention = fused) on its own backend:
// the attention ops on tile-crossing shapes and the nano model. A plain executable (the GPU machine has no GoogleTest): one line per case, then
// "N passed, M failed"; exit 0 only when M is 0, exit 77 (CTest's skip) with "SKIP: no usable GPU (<reason>)"
// when make_cuda_backend() throws. `--ops-only` skips the model checks (for a compute-sanitizer run, where
// the model checks would be slow); `--fp32-only` the mixed-precision ones. `--cpu` runs every case with the
// CPU backend in the GPU's place: a check of the checker (harness, shapes) that runs on any machine; `--ref`
// the reference kernels (ref_backend.hpp), whose sums run in another order than the CPU backend's: a trial of
// the model tolerances. In both, the mixed-precision cases run on emulated_backend.hpp (GEMM operands rounded
// on the host as the GPU rounds them): a trial of their tolerances.
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>

#include "core/backend.hpp"
#include "emulated_backend.hpp"
#include "parity_harness.hpp"
#include "ref_backend.hpp"

int main(int argc, char** argv) {
    bool ops_only = false, fp32_only = false, on_cpu = false, on_ref = false;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--ops-only") == 0) {
            ops_only = true;
        } else if (std::strcmp(argv[i], "--fp32-only") == 0) {
            fp32_only = true;
        } else if (std::strcmp(argv[i], "--cpu") == 0) {
            on_cpu = true;
        } else if (std::strcmp(argv[i], "--ref") == 0) {
            on_ref = true;
        } else {
            std::fprintf(stderr, "usage: cuda_parity [--ops-only] [--fp32-only] [--cpu | --ref]\n");
            return 2;
        }
    }
    std::unique_ptr<tl::Backend> gpu;
    try {
        if (on_ref)
            gpu = std::make_unique<tl::parity::RefBackend>();
        else
            gpu = on_cpu ? tl::make_cpu_backend() : tl::make_cuda_backend();
    } catch (const std::exception& e) {
        std::printf("SKIP: no usable GPU (%s)\n", e.what());
        return 77;
    }
    std::printf("cuda_parity on %s%s\n", gpu->name().c_str(), ops_only ? " (ops only)" : "");
    // The tf32/bf16/fp16 cases: a GPU backend per precision, or the host emulation of its GEMM operands.
    const tl::parity::MakeBackend make_at = [&](tl::GemmPrecision p) -> std::unique_ptr<tl::Backend> {
        if (on_ref)
            return std::make_unique<tl::parity::EmulatedGemmBackend>(
                std::make_unique<tl::parity::RefBackend>(), p);
        if (on_cpu) return std::make_unique<tl::parity::EmulatedGemmBackend>(tl::make_cpu_backend(), p);
        return tl::make_cuda_backend({0, p});
    };
    tl::parity::Suite suite;
    try {
        tl::parity::run_op_cases(suite, *gpu);
        if (!ops_only) tl::parity::run_model_cases(suite, *gpu);
        if (!fp32_only) tl::parity::run_precision_op_cases(suite, make_at);
        if (!ops_only && !fp32_only) tl::parity::run_precision_model_cases(suite, make_at);
        // The fused attention forward: its own backend on the GPU (the stand-ins have one attention path).
        std::unique_ptr<tl::Backend> fused;
        if (on_ref)
            fused = std::make_unique<tl::parity::RefBackend>();
        else if (on_cpu)
            fused = tl::make_cpu_backend();
        else
            fused = tl::make_cuda_backend({0, tl::GemmPrecision::fp32, tl::CudaAttention::fused});
        tl::parity::run_fused_attention_cases(suite, *fused);
        if (!ops_only) tl::parity::run_fused_attention_model_cases(suite, *fused);
    } catch (const std::exception& e) {  // a failure outside any case: count it, keep the summary line
        suite.expect_true("(outside a case)", false, std::string("threw: ") + e.what());
    }
    std::printf("%d passed, %d failed\n", suite.passed(), suite.failed());
    return suite.failed() == 0 ? 0 : 1;
}
