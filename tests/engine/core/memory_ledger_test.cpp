// MemoryLedger and Buffer: bytes are counted per category, peaks survive frees, buffers return their bytes.
#include <gtest/gtest.h>

#include "core/backend.hpp"
#include "core/error.hpp"
#include "core/memory_ledger.hpp"

namespace tl {
namespace {

TEST(MemoryLedger, TracksCurrentAndPeakPerCategory) {
    MemoryLedger m;
    m.on_alloc(MemCategory::weights, 100);
    m.on_alloc(MemCategory::grads, 50);
    m.on_free(MemCategory::grads, 50);
    m.on_alloc(MemCategory::activations, 30);
    EXPECT_EQ(m.current(MemCategory::weights), 100);
    EXPECT_EQ(m.current(MemCategory::grads), 0);
    EXPECT_EQ(m.peak(MemCategory::grads), 50);
    EXPECT_EQ(m.current_total(), 130);
    EXPECT_EQ(m.peak_total(), 150);  // weights + grads coexisted; activations came later
    m.reset_peaks();
    EXPECT_EQ(m.peak(MemCategory::grads), 0);
    EXPECT_EQ(m.peak_total(), 130);
}

TEST(MemoryLedger, BackendBuffersAreCountedAndReturned) {
    auto be = make_cpu_backend({1});
    {
        Tensor t = be->tensor({10, 4}, MemCategory::optimizer);
        EXPECT_EQ(be->ledger().current(MemCategory::optimizer), 160);
        for (std::int64_t i = 0; i < t.numel(); ++i) EXPECT_EQ(t.data()[i], 0.0f);
        Tensor moved = std::move(t);
        EXPECT_EQ(be->ledger().current(MemCategory::optimizer), 160);
    }
    EXPECT_EQ(be->ledger().current(MemCategory::optimizer), 0);
    EXPECT_EQ(be->ledger().peak(MemCategory::optimizer), 160);
}

TEST(MemoryLedger, FreeingMoreThanAllocatedIsAnInternalError) {
    MemoryLedger m;
    m.on_alloc(MemCategory::weights, 10);
    EXPECT_THROW(m.on_free(MemCategory::weights, 11), InternalError);
}

// Without CUDA in the build (the stub) or without a GPU (the real backend), the error says why and what to do.
TEST(CudaBackend, UnavailableSaysWhyAndWhatToDo) {
    try {
        make_cuda_backend();
        GTEST_SKIP() << "a usable GPU is present";
    } catch (const Error& e) {
        const std::string what = e.what();
        const bool is_stub = what.find("cuda preset") != std::string::npos;
        const bool is_no_gpu = what.find("no usable GPU") != std::string::npos;
        EXPECT_TRUE(is_stub || is_no_gpu) << what;
        EXPECT_NE(what.find("--device cpu"), std::string::npos) << what;
    }
}

}  // namespace
}  // namespace tl
