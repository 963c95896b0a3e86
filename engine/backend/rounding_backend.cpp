// RoundingBackend: the rule for each op. What it simulates and why: rounding_backend.hpp.
// Every op follows the same three moves: read (master weights through rounded copies), call the wrapped FP32
// op, write (round its outputs in place, or add a rounded contribution to an FP32 gradient accumulator).
#include "backend/rounding_backend.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <type_traits>

#include "core/error.hpp"
#include "formats/fast_round.hpp"

namespace tl {

namespace {

constexpr std::uint32_t kAbs = 0x7FFFFFFFu, kInf = 0x7F800000u;
constexpr std::uint32_t kFp16MinNormal = 0x38800000u;  // 2^-14
constexpr std::uint32_t kFp32MinNormal = 0x00800000u;  // 2^-126 (bf16's too)

template <Precision P>
inline float round_as(float x) {
    if constexpr (P == Precision::bf16)
        return round_to_bf16(x);
    else if constexpr (P == Precision::fp16)
        return round_to_fp16(x);
    else
        return x;
}

// Rounds x[0, n) in place and counts what rounding did (and what fp16 would do). Branch-free, with 32-bit
// counters per chunk, so the loop vectorises (the counts are the slow part otherwise).
template <Precision P>
void round_span(float* x, std::int64_t n, RoundingCounts& c) {
    constexpr std::uint32_t kMinNormal = P == Precision::fp16 ? kFp16MinNormal : kFp32MinNormal;
    constexpr std::int64_t kChunk = 1 << 20;
    for (std::int64_t lo = 0; lo < n; lo += kChunk) {
        const std::int64_t hi = std::min(n, lo + kChunk);
        std::uint32_t nz = 0, fl = 0, sub = 0, ov = 0, hfl = 0, hsub = 0, hov = 0;
        for (std::int64_t i = lo; i < hi; ++i) {
            const float v = x[i], r = round_as<P>(v);
            const float h = P == Precision::fp16 ? r : round_to_fp16(v);
            const std::uint32_t vb = std::bit_cast<std::uint32_t>(v) & kAbs;
            const std::uint32_t rb = std::bit_cast<std::uint32_t>(r) & kAbs,
                                hb = std::bit_cast<std::uint32_t>(h) & kAbs;
            const std::uint32_t is_nonzero = vb != 0, is_finite = vb < kInf;
            nz += is_nonzero;
            fl += is_nonzero & (rb == 0);
            sub += (rb != 0) & (rb < kMinNormal);
            ov += is_finite & (rb == kInf);
            hfl += is_nonzero & (hb == 0);
            hsub += (hb != 0) & (hb < kFp16MinNormal);
            hov += is_finite & (hb == kInf);
            x[i] = r;
        }
        c.values += hi - lo, c.nonzero += nz, c.flushed += fl, c.subnormal += sub, c.overflowed += ov;
        c.fp16_flushed += hfl, c.fp16_subnormal += hsub, c.fp16_overflowed += hov;
    }
}

void round_span(Precision p, float* x, std::int64_t n, RoundingCounts& c) {
    switch (p) {
        case Precision::fp32:
            return round_span<Precision::fp32>(x, n, c);
        case Precision::bf16:
            return round_span<Precision::bf16>(x, n, c);
        case Precision::fp16:
            return round_span<Precision::fp16>(x, n, c);
    }
}

template <Precision P>
void round_copy(float* dst, const float* src, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) dst[i] = round_as<P>(src[i]);
}

void round_copy(Precision p, float* dst, const float* src, std::int64_t n) {
    switch (p) {
        case Precision::fp32:
            std::copy(src, src + n, dst);
            return;
        case Precision::bf16:
            return round_copy<Precision::bf16>(dst, src, n);
        case Precision::fp16:
            return round_copy<Precision::fp16>(dst, src, n);
    }
}

constexpr struct {
    Precision p;
    std::string_view name;
} kPrecisions[] = {{Precision::fp32, "fp32"}, {Precision::bf16, "bf16"}, {Precision::fp16, "fp16"}};

}  // namespace

std::string_view precision_name(Precision p) {
    for (const auto& e : kPrecisions)
        if (e.p == p) return e.name;
    return "?";
}

Precision parse_precision(std::string_view name) {
    for (const auto& e : kPrecisions)
        if (e.name == name) return e.p;
    throw Error("[backend] unknown precision '" + std::string(name) + "'; available: fp32, bf16, fp16");
}

RoundingCounts& RoundingCounts::operator+=(const RoundingCounts& o) {
    values += o.values, nonzero += o.nonzero, flushed += o.flushed, subnormal += o.subnormal;
    overflowed += o.overflowed, fp16_flushed += o.fp16_flushed, fp16_subnormal += o.fp16_subnormal;
    fp16_overflowed += o.fp16_overflowed;
    return *this;
}

RoundingBackend::RoundingBackend(Backend& inner, Precision precision) : inner_(inner), precision_(precision) {
    if (inner.device() != Device::cpu)
        throw Error("[backend] the rounding backend simulates low precision on the CPU only, got backend '" +
                    inner.name() + "'; use --device cpu");
}

std::string RoundingBackend::name() const {
    return inner_.name() + ", simulated " + std::string(precision_name(precision_));
}

// A new buffer that overlaps a recorded one means the old one was freed: forget it before recording the new
// one.
Buffer RoundingBackend::alloc(std::size_t bytes, MemCategory what) {
    Buffer b = inner_.alloc(bytes, what);
    const char* lo = static_cast<const char*>(b.data());
    const char* hi = lo + bytes;
    std::erase_if(ranges_, [&](const Range& r) { return r.lo < hi && lo < r.hi; });
    if (what == MemCategory::weights) ranges_.push_back({lo, hi, Region::master_weights});
    if (what == MemCategory::grads) ranges_.push_back({lo, hi, Region::master_grads});
    return b;
}

RoundingBackend::Region RoundingBackend::region_of(const void* p) const {
    const char* c = static_cast<const char*>(p);
    for (const Range& r : ranges_)
        if (c >= r.lo && c < r.hi) return r.region;
    return Region::other;
}

float* RoundingBackend::scratch(int slot, std::int64_t n) {
    if (scratch_.size() <= std::size_t(slot)) scratch_.resize(std::size_t(slot) + 1);
    auto& s = scratch_[std::size_t(slot)];
    if (s.size() < std::size_t(n)) s.resize(std::size_t(n));
    return s.data();
}

Mat<const float> RoundingBackend::read(Mat<const float> m, int slot) {
    if (precision_ == Precision::fp32 || !m.data || region_of(m.data) != Region::master_weights) return m;
    float* s = scratch(slot, m.rows * m.cols);
    for (std::int64_t r = 0; r < m.rows; ++r) round_copy(precision_, s + r * m.cols, m.row(r), m.cols);
    return {s, m.rows, m.cols};
}

Vec<const float> RoundingBackend::read(Vec<const float> v, int slot) {
    const Mat<const float> m = read(Mat<const float>(v.data, 1, v.n), slot);
    return {m.data, v.n};
}

void RoundingBackend::set_activation_bits(int bits) {
    if (bits != 0 && (bits < 2 || bits > 16))
        throw Error("[backend] activation bits must be 0 (off) or 2..16, got " + std::to_string(bits));
    activation_bits_ = bits;
}

Mat<const float> RoundingBackend::quantize_input(Mat<const float> x) {
    if (activation_bits_ == 0 || !x.data) return x;
    const double qmax = double((1 << (activation_bits_ - 1)) - 1);
    float* s = scratch(6, x.rows * x.cols);
    for (std::int64_t r = 0; r < x.rows; ++r) {
        const float* in = x.row(r);
        float* out = s + r * x.cols;
        double absmax = 0;
        for (std::int64_t j = 0; j < x.cols; ++j) absmax = std::max(absmax, double(std::fabs(in[j])));
        const double scale = double(float(absmax / qmax));  // the stored per-token scale is an fp32
        for (std::int64_t j = 0; j < x.cols; ++j)
            out[j] = scale == 0 ? 0.0f
                                : float(std::clamp(std::nearbyint(double(in[j]) / scale), -qmax, qmax) * scale);
    }
    return {s, x.rows, x.cols};
}

void RoundingBackend::round_out(MatView out) {
    if (!out.data) return;
    for (std::int64_t r = 0; r < out.rows; ++r) round_span(precision_, out.row(r), out.cols, counts());
}

void RoundingBackend::accumulate(MatView dst, float* contribution, float beta) {
    if (!dst.data) return;
    round_span(precision_, contribution, dst.rows * dst.cols, counts());
    for (std::int64_t r = 0; r < dst.rows; ++r) {
        float* d = dst.row(r);
        const float* c = contribution + r * dst.cols;
        if (beta == 1.0f)
            for (std::int64_t j = 0; j < dst.cols; ++j) d[j] += c[j];
        else
            for (std::int64_t j = 0; j < dst.cols; ++j) d[j] = beta == 0.0f ? c[j] : beta * d[j] + c[j];
    }
}

// A zeroed scratch the shape of a parameter gradient, for the op's contribution (null stays null: frozen).
template <class V>
static V zeroed_like(V g, float* s) {
    if (!g.data) return g;
    if constexpr (std::is_same_v<V, VecView>) {
        std::fill(s, s + g.n, 0.0f);
        return {s, g.n};
    } else {
        std::fill(s, s + g.rows * g.cols, 0.0f);
        return {s, g.rows, g.cols};
    }
}
static std::int64_t numel_of(const VecView& v) { return v.data ? v.n : 0; }
static std::int64_t numel_of(const MatView& m) { return m.data ? m.rows * m.cols : 0; }

void RoundingBackend::copy(VecView dst, CVecView src) {
    inner_.copy(dst, src);
    // A master weight copied into a working buffer is the cast mixed precision does.
    if (region_of(src.data) == Region::master_weights && region_of(dst.data) == Region::other) round_out(dst);
}

// c is a master weight: FP32 math on masters (a LoRA merge), nothing rounded. c is a gradient accumulator:
// c = beta c + round(alpha op(a) op(b)). Otherwise the tensor-core rule: c = round(alpha op(a) op(b) + beta
// c).
void RoundingBackend::gemm(const GemmArgs<float>& a) {
    const Region out = region_of(a.c.data);
    if (out == Region::master_weights) return inner_.gemm(a);
    GemmArgs<float> g = a;
    g.a = read(a.a, 0), g.b = read(a.b, 1);
    if (out == Region::other) {
        inner_.gemm(g);
        return round_out(a.c);
    }
    float* s = scratch(2, a.c.rows * a.c.cols);
    g.c = MatView(s, a.c.rows, a.c.cols), g.beta = 0;
    inner_.gemm(g);
    accumulate(a.c, s, a.beta);
}

void RoundingBackend::embedding_forward(const EmbeddingArgs<float>& a) {
    phase_ = Phase::forward;
    EmbeddingArgs<float> g = a;
    g.wte = read(a.wte, 0), g.wpe = read(a.wpe, 1);
    inner_.embedding_forward(g);
    round_out(a.out);
}

void RoundingBackend::embedding_backward(const EmbeddingGradArgs<float>& a) {
    phase_ = Phase::backward;
    EmbeddingGradArgs<float> g = a;
    g.dwte = zeroed_like(a.dwte, scratch(4, numel_of(a.dwte)));
    g.dwpe = zeroed_like(a.dwpe, scratch(5, numel_of(a.dwpe)));
    inner_.embedding_backward(g);
    accumulate(a.dwte, g.dwte.data);
    accumulate(a.dwpe, g.dwpe.data);
}

void RoundingBackend::layernorm_forward(const LayerNormArgs<float>& a) {
    phase_ = Phase::forward;
    LayerNormArgs<float> g = a;
    g.x = read(a.x, 0), g.gamma = read(a.gamma, 1), g.beta = read(a.beta, 2);
    inner_.layernorm_forward(g);
    round_out(a.out);  // mean and rstd stay FP32: saved statistics
}

void RoundingBackend::layernorm_backward(const LayerNormGradArgs<float>& a) {
    phase_ = Phase::backward;
    LayerNormGradArgs<float> g = a;
    g.gamma = read(a.gamma, 0);
    g.dgamma = zeroed_like(a.dgamma, scratch(4, numel_of(a.dgamma)));
    g.dbeta = zeroed_like(a.dbeta, scratch(5, numel_of(a.dbeta)));
    inner_.layernorm_backward(g);
    round_out(a.dx);
    accumulate(a.dgamma, g.dgamma.data);
    accumulate(a.dbeta, g.dbeta.data);
}

void RoundingBackend::linear_forward(const LinearArgs<float>& a) {
    phase_ = Phase::forward;
    LinearArgs<float> g = a;
    g.x = quantize_input(read(a.x, 0)), g.w = read(a.w, 1), g.b = read(a.b, 2);
    inner_.linear_forward(g);
    round_out(a.out);
}

void RoundingBackend::linear_backward(const LinearGradArgs<float>& a) {
    phase_ = Phase::backward;
    LinearGradArgs<float> g = a;
    g.x = quantize_input(read(a.x, 0)), g.w = read(a.w, 1);
    g.dw = zeroed_like(a.dw, scratch(4, numel_of(a.dw)));
    g.db = zeroed_like(a.db, scratch(5, numel_of(a.db)));
    inner_.linear_backward(g);
    round_out(a.dx);
    accumulate(a.dw, g.dw.data);
    accumulate(a.db, g.db.data);
}

void RoundingBackend::attention_forward(const AttentionArgs<float>& a) {
    phase_ = Phase::forward;
    inner_.attention_forward(a);
    round_out(a.out);  // att (the saved probabilities) stays FP32: attention is one fused kernel here
}

void RoundingBackend::attention_backward(const AttentionGradArgs<float>& a) {
    phase_ = Phase::backward;
    inner_.attention_backward(a);
    round_out(a.dqkv);
}

void RoundingBackend::gelu_forward(const GeluArgs<float>& a) {
    phase_ = Phase::forward;
    inner_.gelu_forward(a);
    round_out(a.out);
}

void RoundingBackend::gelu_backward(const GeluGradArgs<float>& a) {
    phase_ = Phase::backward;
    inner_.gelu_backward(a);
    round_out(a.dx);
}

void RoundingBackend::add(VecView out, CVecView a, CVecView b) {
    if (region_of(out.data) == Region::master_weights) return inner_.add(out, a, b);
    inner_.add(out, read(a, 0), read(b, 1));
    round_out(out);
}

void RoundingBackend::add_inplace(VecView dst, CVecView src) {
    const Region out = region_of(dst.data);
    if (out == Region::master_weights) return inner_.add_inplace(dst, src);
    if (out == Region::other) {
        inner_.add_inplace(dst, read(src, 0));
        return round_out(dst);
    }
    float* s = scratch(4, src.n);
    std::copy(src.data, src.data + src.n, s);
    accumulate(dst, s);
}

void RoundingBackend::cross_entropy_forward(const CrossEntropyArgs<float>& a) {
    phase_ = Phase::forward;
    inner_.cross_entropy_forward(
        a);  // the per-token losses stay FP32, as autocast runs cross-entropy in FP32
}

void RoundingBackend::cross_entropy_backward(const CrossEntropyGradArgs<float>& a) {
    phase_ = Phase::backward;
    inner_.cross_entropy_backward(a);
    round_out(a.dlogits);  // d loss / d logits: where fp16's small gradients start to flush
}

void RoundingBackend::attention_decode(const AttentionDecodeArgs<float>& a) {
    phase_ = Phase::forward;
    inner_.attention_decode(a);
    round_out(a.out);
}

PrecisionScope::PrecisionScope(Backend& backend, Precision p)
    : rounding_(dynamic_cast<RoundingBackend*>(&backend)) {
    if (!rounding_) {
        if (p == Precision::fp32) return;
        throw Error("[train] precision " + std::string(precision_name(p)) + " needs the model built on a " +
                    "RoundingBackend (backend/rounding_backend.hpp); backend '" + backend.name() +
                    "' computes in fp32 only");
    }
    saved_ = rounding_->precision();
    rounding_->set_precision(p);
}

PrecisionScope::~PrecisionScope() {
    if (rounding_) rounding_->set_precision(saved_);
}

}  // namespace tl
