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

TEST(CudaStub, SaysWhatToDo) {
    try {
        make_cuda_backend();
        GTEST_SKIP() << "this build has a CUDA backend";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("cuda preset"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace tl
