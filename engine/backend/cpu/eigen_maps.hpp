// Eigen views of tunelab's Mat views (row-major with a leading dimension). Private to backend/cpu: Eigen never
// appears in a header above the backend.
#pragma once
#include <Eigen/Dense>

#include "core/tensor.hpp"

namespace tl::cpu {

using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using EMap = Eigen::Map<RowMajor, 0, Eigen::OuterStride<>>;
using CEMap = Eigen::Map<const RowMajor, 0, Eigen::OuterStride<>>;

inline EMap emap(const MatView& m) { return EMap(m.data, m.rows, m.cols, Eigen::OuterStride<>(m.ld)); }
inline CEMap emap(const CMatView& m) { return CEMap(m.data, m.rows, m.cols, Eigen::OuterStride<>(m.ld)); }

}  // namespace tl::cpu
