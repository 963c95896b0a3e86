// The engine revision that cached results are keyed on. Bump it in any change that alters what an experiment
// returns (a kernel's rounding, a default, a data split, how a result is computed): every cached result then
// becomes a miss.
#pragma once

namespace tl {
// 2: format_rounding measures each value's gap to its true neighbour (was every 64th value) and adds every_format.
// 3: the fast CPU path (OpenBLAS GEMMs, causal-block attention, vectorised exp/tanh): new rounding, new timings.
inline constexpr int kEngineRevision = 3;

// The revision cached base and fine-tuned models are keyed on: bump it only when training itself changes (a kernel,
// the data, a recipe default), so a fix in how an experiment reports does not cost every learner a pretraining.
// 2: the fast CPU path changed the kernels' rounding.
inline constexpr int kModelRevision = 2;
}
