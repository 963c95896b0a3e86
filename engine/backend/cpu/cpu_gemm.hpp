// Every GEMM of the CPU backend: single-threaded OpenBLAS SGEMM calls (Eigen in a TL_OPENBLAS=OFF build), split
// across the backend's OpenMP threads.
#pragma once
#include "core/ops.hpp"

namespace tl::cpu {

// c = alpha * op(a) op(b) + beta * c on row-major views. The output is cut into one slab per thread (rows when
// it is tall, columns when it is wide), each a serial SGEMM: the threads never share an output element and never
// wait on each other inside the product, and the cut depends only on the shape and the thread count, so results
// are the same from run to run for a given thread count. Throws tl::Error when the shapes do not agree.
void gemm(const GemmArgs<float>& g, int threads);

}  // namespace tl::cpu
