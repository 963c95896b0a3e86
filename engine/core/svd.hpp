// thin_svd: the singular value decomposition of a small dense matrix in double (Eigen's BDCSVD). One translation
// unit holds Eigen's SVD for the whole engine: it is the slowest template in the build (about a minute under
// the sanitizers), so the LoRA svd combine (merge/lora_merge.cpp) and the PEFT spectra (experiments/peft_measure)
// share this one instead of instantiating it twice.
#pragma once
#include <cstdint>
#include <vector>

namespace tl {

enum class SvdVectors { none, thin };

// a = U diag(S) V^T with k = min(rows, cols); everything row-major.
struct Svd {
    std::int64_t rows = 0, cols = 0, k = 0;
    std::vector<double> S;  // (k), sorted, largest first
    std::vector<double> U;  // (rows, k); empty for SvdVectors::none
    std::vector<double> V;  // (cols, k); empty for SvdVectors::none
};

// a: (rows, cols) row-major.
Svd thin_svd(const double* a, std::int64_t rows, std::int64_t cols, SvdVectors vectors);

}  // namespace tl
