// TimedBackend: a Backend that wraps another and adds up the wall time and call count of each op, for the
// per-op breakdown of bench_train (docs/benchmarks.md). It computes nothing itself: every method, alloc
// included, goes to the wrapped backend, whose MemoryLedger is the one ledger() returns. Not a profiler of
// what happens inside an op (use perf for that). Next: bench/bench_train.cpp (--breakdown).
#pragma once
#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/backend.hpp"

namespace tl {

// One row per Backend method that does work (device() and name() are not timed).
// The enum and its names are laid out line for line.
// clang-format off
enum class TimedOp {
    alloc, fill_zero, copy, copy_to_host, copy_from_host, upload_bytes,
    gemm, embedding_forward, embedding_backward, layernorm_forward, layernorm_backward,
    linear_forward, linear_backward, attention_forward, attention_backward,
    gelu_forward, gelu_backward,
    add, add_inplace, cross_entropy_forward, cross_entropy_backward, sum_squares, scale, adamw,
    attention_decode, linear_gelu_forward, add_layernorm_forward,
};
inline constexpr int kTimedOpCount = 27;

// The method's own name, so a row of the breakdown reads as the call in the code.
inline constexpr std::string_view kTimedOpNames[kTimedOpCount] = {
    "alloc", "fill_zero", "copy", "copy_to_host", "copy_from_host", "upload_bytes",
    "gemm", "embedding_forward", "embedding_backward", "layernorm_forward", "layernorm_backward",
    "linear_forward", "linear_backward", "attention_forward", "attention_backward",
    "gelu_forward", "gelu_backward",
    "add", "add_inplace", "cross_entropy_forward", "cross_entropy_backward", "sum_squares", "scale", "adamw",
    "attention_decode", "linear_gelu_forward", "add_layernorm_forward",
};
// clang-format on

struct OpTiming {
    std::string_view name;  // a kTimedOpNames entry
    std::int64_t calls = 0;
    double seconds = 0;  // wall time summed over the calls
};

class TimedBackend final : public Backend {
public:
    // Holds a reference: `inner` must outlive this wrapper and every buffer allocated through it.
    explicit TimedBackend(Backend& inner) : inner_(inner) {}

    // Ops called at least once since the last reset(), most time first (ties: by name).
    std::vector<OpTiming> timings() const;
    void reset();

    Backend& inner() const { return inner_; }
    Device device() const override { return inner_.device(); }
    std::string name() const override { return "timed " + inner_.name(); }
    MemoryLedger& ledger() override { return inner_.ledger(); }
    const MemoryLedger& ledger() const override { return inner_.ledger(); }

    Buffer alloc(std::size_t bytes, MemCategory what) override;
    void fill_zero(VecView x) override;
    void copy(VecView dst, CVecView src) override;
    void copy_to_host(float* dst, CVecView src) override;
    void copy_from_host(VecView dst, const float* src) override;
    void upload_bytes(void* dst, const void* src, std::size_t bytes) override;
    void synchronize() override { inner_.synchronize(); }  // not timed: it waits, it does no work

    void gemm(const GemmArgs<float>& a) override;
    void embedding_forward(const EmbeddingArgs<float>& a) override;
    void embedding_backward(const EmbeddingGradArgs<float>& a) override;
    void layernorm_forward(const LayerNormArgs<float>& a) override;
    void layernorm_backward(const LayerNormGradArgs<float>& a) override;
    void linear_forward(const LinearArgs<float>& a) override;
    void linear_backward(const LinearGradArgs<float>& a) override;
    void attention_forward(const AttentionArgs<float>& a) override;
    void attention_backward(const AttentionGradArgs<float>& a) override;
    void gelu_forward(const GeluArgs<float>& a) override;
    void gelu_backward(const GeluGradArgs<float>& a) override;
    void add(VecView out, CVecView a, CVecView b) override;
    void linear_gelu_forward(const LinearArgs<float>& lin, VecView act) override;
    void add_layernorm_forward(VecView sum, CVecView a, CVecView b, const LayerNormArgs<float>& ln) override;
    void add_inplace(VecView dst, CVecView src) override;
    void cross_entropy_forward(const CrossEntropyArgs<float>& a) override;
    void cross_entropy_backward(const CrossEntropyGradArgs<float>& a) override;
    double sum_squares(CVecView x) override;
    void scale(VecView x, float s) override;
    void adamw(const AdamWArgs<float>& a) override;
    void attention_decode(const AttentionDecodeArgs<float>& a) override;

private:
    using Clock = std::chrono::steady_clock;
    struct Slot {
        std::int64_t calls = 0;
        Clock::duration time{};
    };
    // Times f() and charges it to op. Wall time is honest here because CPU ops are synchronous: every OpenMP
    // region and Eigen GEMM has joined when the method returns. A GPU backend returns once the kernel is
    // queued, so timing it this way would need a device synchronise after each call (and would then measure
    // the op without the overlap a real step has).
    template <class F>
    decltype(auto) timed(TimedOp op, F&& f) {
        const auto start = Clock::now();
        struct Charge {  // charges on every exit, an exception included
            Slot& slot;
            Clock::time_point start;
            ~Charge() {
                slot.time += Clock::now() - start;
                ++slot.calls;
            }
        } charge{slots_[static_cast<std::size_t>(op)], start};
        return f();
    }

    Backend& inner_;
    std::array<Slot, kTimedOpCount> slots_{};
};

}  // namespace tl
