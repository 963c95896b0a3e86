// RoundingBackend: a Backend that wraps another (CPU) and simulates bf16 or fp16 training bit-exactly, as
// mixed precision runs on tensor cores: every op reads its inputs in the format and writes its outputs
// rounded to the format, while the wrapped FP32 op does the arithmetic in between (FP32 accumulation). FP32
// stays where mixed precision keeps it: the master weights, the gradient accumulators, the optimizer and
// clipping. Not a speed-up (it is slower than FP32); for the lesson and the experiment
// `low_precision_training`. Next: rounding_backend.cpp (the rules per op), formats/fast_round.hpp (the
// rounding), optim/loss_scale.hpp.
//
// How it tells master state from the rest: by the memory category each buffer was allocated with through this
// wrapper (the model allocates through its backend). Buffers of MemCategory::weights are the FP32 masters: an
// op that reads one reads a rounded scratch copy (the cast mixed precision does before each matmul), and an
// op that writes one is not rounded (merges, the optimizer). Buffers of MemCategory::grads are the FP32
// gradient accumulators: an op adds its own contribution to them rounded to the format and then accumulated
// in FP32 (as autocast's .grad does). Every other buffer an op writes (activations, logits, activation
// gradients) is rounded in place, so every op reads format values. Kept in FP32 on purpose: LayerNorm's saved
// mean and 1/std, the attention probabilities it saves (attention counts as one fused kernel), the per-token
// losses, and anything written by a plain copy from the host. Regions are known by address: a buffer an op
// writes should come from alloc() (the model's always do). Host memory of the caller's own is taken as a
// working buffer, unless it reuses the address of a freed master buffer that no later alloc() has overlapped
// (then a gemm or add_inplace into it would accumulate instead).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/backend.hpp"

namespace tl {

enum class Precision { fp32, bf16, fp16 };

std::string_view precision_name(Precision p);
Precision parse_precision(std::string_view name);  // tl::Error listing fp32, bf16, fp16

// What rounding did to the values ops wrote, counted since the last reset. Every value is counted before it
// is rounded; the fp16_* counts say what fp16 would have done to the same FP32 value in any precision (so an
// FP32 run can show how many of its gradients fp16 would lose).
struct RoundingCounts {
    std::int64_t values = 0;      // values written (rounded)
    std::int64_t nonzero = 0;     // nonzero before rounding
    std::int64_t flushed = 0;     // nonzero before, zero after: underflow
    std::int64_t subnormal = 0;   // nonzero after, below the format's min normal
    std::int64_t overflowed = 0;  // finite before, inf after
    std::int64_t fp16_flushed = 0, fp16_subnormal = 0, fp16_overflowed = 0;
    RoundingCounts& operator+=(const RoundingCounts& o);
    double flushed_share() const { return nonzero ? double(flushed) / double(nonzero) : 0.0; }
    double fp16_flushed_share() const { return nonzero ? double(fp16_flushed) / double(nonzero) : 0.0; }
};

// Forward: what *_forward ops, add and attention_decode wrote (activations, logits). Backward: what
// *_backward ops wrote (activation gradients, and the parameter-gradient contributions before FP32
// accumulation). gemm and add_inplace count towards the phase of the op before them.
struct RoundingStats {
    RoundingCounts forward, backward;
};

class RoundingBackend final : public Backend {
public:
    // Holds a reference: `inner` must outlive this wrapper and every buffer allocated through it. CPU only:
    // the rounding runs on host memory (tl::Error for another device).
    explicit RoundingBackend(Backend& inner, Precision precision = Precision::fp32);

    // fp32 rounds nothing but still counts (the fp16_* columns). Change it between steps, not inside one.
    void set_precision(Precision p) { precision_ = p; }
    Precision precision() const { return precision_; }
    const RoundingStats& stats() const { return stats_; }
    void reset_stats() { stats_ = {}; }

    // [activation quantization] Rounds the input x of every linear op to signed `bits`-bit integers with one
    // absmax scale per row, computed on the fly (per token, dynamic: W8A8 as LLM.int8 and SmoothQuant's
    // baseline run it; BitNet b1.58's 8-bit activations). Codes are symmetric, -(2^(bits-1) - 1) ..
    // 2^(bits-1) - 1, rounded half to even. Backward computes dW from the same rounded x and passes dx straight
    // through (the straight-through estimator). 0 turns it off. Independent of the precision; the LM head (a
    // plain gemm) is not a linear op and stays unquantized, as W8A8 recipes keep it.
    void set_activation_bits(int bits);
    int activation_bits() const { return activation_bits_; }

    Backend& inner() const { return inner_; }
    Device device() const override { return inner_.device(); }
    std::string name() const override;
    MemoryLedger& ledger() override { return inner_.ledger(); }
    const MemoryLedger& ledger() const override { return inner_.ledger(); }

    Buffer alloc(std::size_t bytes, MemCategory what) override;
    void fill_zero(VecView x) override { inner_.fill_zero(x); }
    void copy(VecView dst, CVecView src) override;
    void copy_to_host(float* dst, CVecView src) override { inner_.copy_to_host(dst, src); }
    void copy_from_host(VecView dst, const float* src) override { inner_.copy_from_host(dst, src); }
    void upload_bytes(void* dst, const void* src, std::size_t bytes) override {
        inner_.upload_bytes(dst, src, bytes);
    }
    void synchronize() override { inner_.synchronize(); }

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
    void add_inplace(VecView dst, CVecView src) override;
    void cross_entropy_forward(const CrossEntropyArgs<float>& a) override;
    void cross_entropy_backward(const CrossEntropyGradArgs<float>& a) override;
    // FP32 on the master gradients and weights: the norm, clipping, unscaling and the update.
    double sum_squares(CVecView x) override { return inner_.sum_squares(x); }
    void scale(VecView x, float s) override { inner_.scale(x, s); }
    void adamw(const AdamWArgs<float>& a) override { inner_.adamw(a); }
    void attention_decode(const AttentionDecodeArgs<float>& a) override;

private:
    enum class Region { master_weights, master_grads, other };
    enum class Phase { forward, backward };
    struct Range {
        const char *lo, *hi;
        Region region;
    };
    Region region_of(const void* p) const;
    float* scratch(int slot, std::int64_t n);             // host floats, reused; contents undefined
    Mat<const float> read(Mat<const float> m, int slot);  // a master weight: a rounded copy; else m itself
    Vec<const float> read(Vec<const float> v, int slot);
    Mat<const float> quantize_input(Mat<const float> x);  // activation_bits_ > 0: a rounded copy (slot 6)
    void round_out(MatView out);  // rounds in place and counts
    void round_out(VecView out) { round_out(MatView(out.data, 1, out.n)); }
    // dst = beta dst + round(contribution), in FP32: contribution is a scratch (dst.rows, dst.cols) the op
    // wrote with beta 0 (beta 0: dst is overwritten, as BLAS does, even where it held NaN).
    void accumulate(MatView dst, float* contribution, float beta = 1.0f);
    void accumulate(VecView dst, float* contribution) {
        accumulate(MatView(dst.data, 1, dst.n), contribution);
    }
    RoundingCounts& counts() { return phase_ == Phase::forward ? stats_.forward : stats_.backward; }

    Backend& inner_;
    Precision precision_;
    int activation_bits_ = 0;
    Phase phase_ = Phase::forward;
    RoundingStats stats_;
    std::vector<Range> ranges_;
    std::vector<std::vector<float>> scratch_;
};

// Sets the precision of a model's RoundingBackend for a scope (a training run) and restores it after. With
// Precision::fp32 and a plain backend it does nothing; another precision on a plain backend is a tl::Error
// saying to build the model on a RoundingBackend.
class PrecisionScope {
public:
    PrecisionScope(Backend& backend, Precision p);
    ~PrecisionScope();
    PrecisionScope(const PrecisionScope&) = delete;
    PrecisionScope& operator=(const PrecisionScope&) = delete;

private:
    RoundingBackend* rounding_ = nullptr;
    Precision saved_ = Precision::fp32;
};

}  // namespace tl
