// Eigen's BDCSVD behind a plain interface (core/svd.hpp); the only file that instantiates it.
#include "core/svd.hpp"

#include <Eigen/SVD>

#include "core/error.hpp"

namespace tl {

namespace {
using MatD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
}  // namespace

Svd thin_svd(const double* a, std::int64_t rows, std::int64_t cols, SvdVectors vectors) {
    TL_ASSERT(rows > 0 && cols > 0, "[svd] thin_svd of an empty matrix");
    const unsigned options = vectors == SvdVectors::thin ? Eigen::ComputeThinU | Eigen::ComputeThinV : 0;
    Eigen::BDCSVD<MatD> svd(Eigen::Map<const MatD>(a, rows, cols), options);
    Svd out;
    out.rows = rows;
    out.cols = cols;
    out.k = std::min(rows, cols);
    const Eigen::VectorXd& s = svd.singularValues();
    out.S.assign(s.data(), s.data() + s.size());
    if (vectors == SvdVectors::thin) {
        out.U.resize(std::size_t(rows * out.k));
        out.V.resize(std::size_t(cols * out.k));
        Eigen::Map<MatD>(out.U.data(), rows, out.k) = svd.matrixU();
        Eigen::Map<MatD>(out.V.data(), cols, out.k) = svd.matrixV();
    }
    return out;
}

}  // namespace tl
