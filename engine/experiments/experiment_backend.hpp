// The backend an experiment trains and evaluates on: the CPU with ctx.threads threads, or the GPU when
// ctx.device is "cuda" (tl::Error saying why when this build or machine has none).
#pragma once
#include <memory>

#include "core/backend.hpp"
#include "experiments/experiment.hpp"

namespace tl {

std::unique_ptr<Backend> experiment_backend(const RunContext& ctx);

}  // namespace tl
