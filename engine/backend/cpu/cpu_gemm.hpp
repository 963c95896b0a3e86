// Every GEMM of the CPU backend: single-threaded OpenBLAS SGEMM calls (Eigen in a TL_OPENBLAS=OFF build),
// split across the backend's OpenMP threads.
#pragma once
#include <cstdint>

#include "core/ops.hpp"

namespace tl::cpu {

// An op touching fewer floats than this runs on the calling thread. Waking a second thread costs
// microseconds, and far more when the cores are oversubscribed (two test processes, or a build, beside
// training): a spinning OpenMP barrier then waits for a descheduled thread at every op, and a `nano` step
// took a second.
constexpr std::int64_t kParallelFloats = 1 << 15;

// c = alpha * op(a) op(b) + beta * c on row-major views. The output is cut into one slab per thread (rows
// when it is tall, columns when it is wide), each a serial SGEMM: the threads never share an output element
// and never wait on each other inside the product, and the cut depends only on the shape and the thread
// count, so results are the same from run to run for a given thread count. Throws tl::Error when the shapes
// do not agree.
void gemm(const GemmArgs<float>& g, int threads);

// An element-wise step run on each thread's finished slab of c, by the thread that computed it, while the slab
// is still in that core's cache (no second parallel pass, no barrier between the two): rows [m0, m1), columns
// [n0, n1). Slabs never overlap.
using GemmEpilogue = void (*)(const GemmArgs<float>& g, std::int64_t m0, std::int64_t m1, std::int64_t n0,
                              std::int64_t n1, void* state);
// The same product, bit for bit, then `epilogue(g, slab..., state)` on every slab.
void gemm(const GemmArgs<float>& g, int threads, GemmEpilogue epilogue, void* state);

}  // namespace tl::cpu
