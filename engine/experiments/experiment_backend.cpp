#include "experiments/experiment_backend.hpp"

#include "core/error.hpp"

namespace tl {

std::unique_ptr<Backend> experiment_backend(const RunContext& ctx) {
    if (ctx.device == "cuda") return make_cuda_backend({});
    if (ctx.device != "cpu") throw Error("[experiments] device must be cpu or cuda; got '" + ctx.device + "'");
    return make_cpu_backend({ctx.threads});
}

}  // namespace tl
