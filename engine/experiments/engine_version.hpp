// The engine revision that cached results are keyed on. Bump it in any change that alters what an experiment
// returns (a kernel's rounding, a default, a data split): every cached result then becomes a miss.
#pragma once

namespace tl {
inline constexpr int kEngineRevision = 1;
}
