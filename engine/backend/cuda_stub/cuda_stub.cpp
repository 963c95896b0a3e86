// Linked only when the build has no CUDA: make_cuda_backend() explains how to get one, so code above the
// backend never needs an #ifdef. The real backend is backend/cuda (the cuda preset).
#include "core/backend.hpp"
#include "core/error.hpp"

namespace tl {

// The options (device, GEMM precision) are the real backend's; without one there is nothing to apply them to.
std::unique_ptr<Backend> make_cuda_backend(const CudaOptions& /*opt*/) {
    throw Error(
        "[backend] this build has no CUDA backend; configure with the cuda preset (cmake --preset cuda) on a machine "
        "with nvcc, or use --device cpu");
}

}  // namespace tl
