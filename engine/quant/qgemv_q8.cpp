// qgemv_q8: quantized weights times int8-rounded activations with integer dot products (see qgemv.hpp).
// Per block of 32 elements: the weights' codes as int8 (int4 nibbles widened), x's int8 codes, one
// maddubs + madd for the 32 products in int32, then one float multiply-add by (weight scale x x's block
// scale).
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "formats/format_table.hpp"
#include "quant/qgemv.hpp"

namespace tl {

namespace {

constexpr std::int64_t kBlock = 32;

// x as int8 codes and one scale per block of 32. For 4-bit weights each block's codes are stored
// deinterleaved (the 16 even elements, then the 16 odd ones), the order a row's nibbles unpack in.
struct QuantizedActivations {
    std::vector<std::int8_t> codes;
    std::vector<float> scales;
};

QuantizedActivations quantize_activations(std::span<const float> x, bool deinterleave) {
    const std::int64_t n = std::int64_t(x.size()), blocks = n / kBlock;
    QuantizedActivations q;
    q.codes.resize(std::size_t(n));
    q.scales.resize(std::size_t(blocks));
    for (std::int64_t b = 0; b < blocks; ++b) {
        const float* xb = x.data() + b * kBlock;
        float amax = 0;
        for (std::int64_t i = 0; i < kBlock; ++i) amax = std::max(amax, std::fabs(xb[i]));
        const float scale = amax / 127.0f, inv = amax > 0 ? 127.0f / amax : 0.0f;
        q.scales[std::size_t(b)] = scale;
        for (std::int64_t i = 0; i < kBlock; ++i) {
            const std::int64_t slot = deinterleave ? (i % 2) * (kBlock / 2) + i / 2 : i;
            q.codes[std::size_t(b * kBlock + slot)] = std::int8_t(std::nearbyint(xb[i] * inv));
        }
    }
    return q;
}

struct RowLayout {
    int bits;
    std::int64_t cols, group;  // elements per weight scale
};

// ---- portable: the same integer sums
// ---------------------------------------------------------------------------
float row_dot_portable(const RowLayout& l, const std::uint8_t* codes, const float* w_scales,
                       const QuantizedActivations& xq) {
    float acc = 0;
    for (std::int64_t b = 0; b < l.cols / kBlock; ++b) {
        std::int32_t dot = 0;
        for (std::int64_t i = 0; i < kBlock; ++i) {
            const std::int64_t e = b * kBlock + i;
            std::int32_t w;
            if (l.bits == 8)
                w = std::int8_t(codes[e]);
            else
                w = std::int32_t(((codes[e / 2] >> (4 * (e % 2))) & 0xF) ^ 8) - 8;
            const std::int64_t slot = l.bits == 4 ? (i % 2) * (kBlock / 2) + i / 2 : i;
            dot += w * xq.codes[std::size_t(b * kBlock + slot)];
        }
        acc += w_scales[b * kBlock / l.group] * xq.scales[std::size_t(b)] * float(dot);
    }
    return acc;
}

// ---- AVX2
// --------------------------------------------------------------------------------------------------
__attribute__((target("avx2,fma"))) float hsum8(__m256 v) {
    const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

// 32 int8 x int8 products summed to 8 int32 lanes, as floats. maddubs wants unsigned x signed, so the
// weight's sign moves onto x (llama.cpp's trick): |w| <= 128 and |x| <= 127 keep each pair sum inside int16.
__attribute__((target("avx2,fma"))) __m256 dot32(__m256i w, __m256i x) {
    const __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}

__attribute__((target("avx2,fma"))) float row_dot_avx2(const RowLayout& l, const std::uint8_t* codes,
                                                       const float* w_scales,
                                                       const QuantizedActivations& xq) {
    const __m128i low_nibbles = _mm_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps();
    for (std::int64_t b = 0; b < l.cols / kBlock; ++b) {
        __m256i w;
        if (l.bits == 8) {
            w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + b * kBlock));
        } else {  // 16 bytes: the even elements in the low nibbles, the odd ones in the high; two's
                  // complement
            const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + b * kBlock / 2));
            const __m128i even = _mm_and_si128(bytes, low_nibbles);
            const __m128i odd = _mm_and_si128(_mm_srli_epi16(bytes, 4), low_nibbles);
            w = _mm256_sub_epi8(_mm256_xor_si256(_mm256_set_m128i(odd, even), _mm256_set1_epi8(8)),
                                _mm256_set1_epi8(8));
        }
        const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq.codes.data() + b * kBlock));
        const float scale = w_scales[b * kBlock / l.group] * xq.scales[std::size_t(b)];
        acc = _mm256_fmadd_ps(dot32(w, x), _mm256_set1_ps(scale), acc);
    }
    return hsum8(acc);
}

}  // namespace

bool qgemv_q8_supports(const QuantizedTensor& w) {
    const Format f = w.scheme.format;
    const std::int64_t group =
        w.scheme.granularity == Granularity::per_channel ? w.cols : w.scheme.group_size;
    return (f == Format::int8 || f == Format::int4) && qgemv_supports(w) && group % kBlock == 0 &&
           w.cols % kBlock == 0;
}

std::vector<float> round_activations_q8(std::span<const float> x) {
    if (x.size() % kBlock != 0) throw Error("[qgemv_q8] x must be a multiple of 32 floats long");
    const QuantizedActivations q = quantize_activations(x, false);
    std::vector<float> out(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) out[i] = q.scales[i / kBlock] * float(q.codes[i]);
    return out;
}

void qgemv_q8(const QuantizedTensor& w, std::span<const float> x, std::span<float> y, int threads) {
    if (!qgemv_q8_supports(w))
        throw Error(
            "[qgemv_q8] int8-activation kernels take int8 or int4 weights, symmetric, per channel or per "
            "group of a multiple of 32, with a multiple of 32 columns; got " +
            describe(w.scheme) + " on " + std::to_string(w.rows) + " x " + std::to_string(w.cols) +
            ": use qgemv instead");
    if (x.size() != std::size_t(w.cols) || y.size() != std::size_t(w.rows))
        throw Error("[qgemv_q8] x must have " + std::to_string(w.cols) + " floats and y " +
                    std::to_string(w.rows));
    const RowLayout l{format_info(w.scheme.format).bits, w.cols,
                      w.scheme.granularity == Granularity::per_channel ? w.cols : w.scheme.group_size};
    const QuantizedActivations xq = quantize_activations(x, l.bits == 4);
    static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const std::int64_t groups_per_row = w.cols / l.group;
    const int nt = w.numel() < (1 << 16) ? 1 : (threads > 0 ? threads : omp_get_num_procs());
#pragma omp parallel for schedule(static) num_threads(nt)
    for (std::int64_t r = 0; r < w.rows; ++r) {
        const std::uint8_t* codes = w.packed.data() + r * w.cols * l.bits / 8;
        const float* scales = w.scales.data() + r * groups_per_row;
        y[std::size_t(r)] =
            avx2 ? row_dot_avx2(l, codes, scales, xq) : row_dot_portable(l, codes, scales, xq);
    }
}

}  // namespace tl
