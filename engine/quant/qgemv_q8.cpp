// qgemv_q8: quantized weights times int8-rounded activations with integer dot products (see qgemv.hpp).
// int8 weights: per block of 32, maddubs + madd give the 32 products in int32, then one float multiply-add by
// (weight scale x x's block scale). int4 weights: the nibbles are used unsigned (u = w + 8, 0..15) against
// x's signed codes, two blocks per 32-byte load, with vpdpbusd (AVX512-VNNI) or maddubs; the accumulator
// starts at -8 x (the x codes it sums), so sum u x - 8 sum x = sum w x exactly. Portable loop for other CPUs.
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

// Where element i of block b of x goes for int4 weights. Blocks go in pairs (the last alone when their count
// is odd); a pair's 64 codes are stored as the 16 even elements of each block, then the 16 odd ones of each:
// the order in which one 32-byte load of a row's nibbles (block b's 16 bytes, then block b+1's; element 0 in
// the low nibble) splits into its low and its high nibbles.
std::int64_t int4_slot(std::int64_t b, std::int64_t i, std::int64_t blocks) {
    const std::int64_t first = b / 2 * 2, len = std::min<std::int64_t>(2, blocks - first);
    return first * kBlock + (i % 2) * (kBlock / 2) * len + (b - first) * (kBlock / 2) + i / 2;
}

// x as int8 codes and one scale per block of 32 (in int4_slot order for 4-bit weights). For int4 also one
// offset per int32 lane of the dot products: a lane sums the products of 4 low nibbles and 4 high nibbles
// with the x codes at the same 8 places (low half, high half), so -8 x their sum turns sum u x into sum w x.
struct QuantizedActivations {
    std::vector<std::int8_t> codes;
    std::vector<float> scales;
    std::vector<std::int32_t> lane_offsets;  // int4: n / 8
};

QuantizedActivations quantize_activations(std::span<const float> x, int weight_bits) {
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
            const std::int64_t slot = weight_bits == 4 ? int4_slot(b, i, blocks) : b * kBlock + i;
            q.codes[std::size_t(slot)] = std::int8_t(std::nearbyint(xb[i] * inv));
        }
    }
    if (weight_bits != 4) return q;
    q.lane_offsets.resize(std::size_t(n / 8));
    for (std::int64_t first = 0; first < blocks; first += 2) {  // lane k: low bytes 4k..4k+3, high ones
        const std::int64_t half = (kBlock / 2) * std::min<std::int64_t>(2, blocks - first);
        const std::int8_t* c = q.codes.data() + first * kBlock;
        for (std::int64_t k = 0; k < half / 4; ++k) {
            std::int32_t sum = 0;
            for (std::int64_t j = 4 * k; j < 4 * k + 4; ++j) sum += c[j] + c[half + j];
            q.lane_offsets[std::size_t(first * kBlock / 8 + k)] = -8 * sum;
        }
    }
    return q;
}

struct RowLayout {
    int bits;
    std::int64_t cols, group;         // elements per weight scale
    const std::int32_t* scale_index;  // per block of 32: which of the row's weight scales it takes
};

// ---- portable: the same integer sums, with signed codes ---------------------------------------------------
// The int8 codes are read through an int8 pointer: GCC 12 at -O3 with AVX512-VNNI vectorizes
// `int8_t(byte) * x` summed into an int as vpdpbusd, which takes the byte as unsigned (wrong code).
float row_dot_int8_portable(const RowLayout& l, const std::uint8_t* codes, const float* w_scales,
                            const QuantizedActivations& xq) {
    const auto* w = reinterpret_cast<const std::int8_t*>(codes);
    float acc = 0;
    for (std::int64_t b = 0; b < l.cols / kBlock; ++b) {
        std::int32_t dot = 0;
        for (std::int64_t i = b * kBlock; i < (b + 1) * kBlock; ++i) dot += w[i] * xq.codes[std::size_t(i)];
        acc += w_scales[l.scale_index[b]] * xq.scales[std::size_t(b)] * float(dot);
    }
    return acc;
}

float row_dot_int4_portable(const RowLayout& l, const std::uint8_t* codes, const float* w_scales,
                            const QuantizedActivations& xq) {
    const std::int64_t blocks = l.cols / kBlock;
    float acc = 0;
    for (std::int64_t b = 0; b < blocks; ++b) {
        std::int32_t dot = 0;
        for (std::int64_t i = 0; i < kBlock; ++i) {
            const std::int64_t e = b * kBlock + i;
            const std::int32_t w = std::int32_t(((codes[e / 2] >> (4 * (e % 2))) & 0xF) ^ 8) - 8;
            dot += w * xq.codes[std::size_t(int4_slot(b, i, blocks))];
        }
        acc += w_scales[l.scale_index[b]] * xq.scales[std::size_t(b)] * float(dot);
    }
    return acc;
}

// ---- AVX2, int8 weights -----------------------------------------------------------------------------------
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

__attribute__((target("avx2,fma"))) float row_dot_int8_avx2(const RowLayout& l, const std::uint8_t* codes,
                                                            const float* w_scales,
                                                            const QuantizedActivations& xq) {
    __m256 acc = _mm256_setzero_ps();
    for (std::int64_t b = 0; b < l.cols / kBlock; ++b) {
        const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + b * kBlock));
        const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq.codes.data() + b * kBlock));
        const float scale = w_scales[b * kBlock / l.group] * xq.scales[std::size_t(b)];
        acc = _mm256_fmadd_ps(dot32(w, x), _mm256_set1_ps(scale), acc);
    }
    return hsum8(acc);
}

// ---- int4 weights: AVX2 (maddubs) and AVX512-VNNI (vpdpbusd), the same loop around a different pair dot ---
// The weight scale of each of the 8 blocks from b on, times x's block scales, in the order the 8 block sums
// of combine8 come out: b+0, 2, 4, 6, then b+1, 3, 5, 7.
__attribute__((target("avx2,fma"))) inline __m256 unit_scales(const RowLayout& l, const float* w_scales,
                                                              const float* x_scales, std::int64_t b) {
    const __m256 w =
        l.group == kBlock
            ? _mm256_loadu_ps(w_scales + b)
            : _mm256_i32gather_ps(w_scales,
                                  _mm256_loadu_si256(reinterpret_cast<const __m256i*>(l.scale_index + b)), 4);
    return _mm256_permutevar8x32_ps(_mm256_mul_ps(w, _mm256_loadu_ps(x_scales + b)),
                                    _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
}

// Four pair dots (8 lanes each: 4 for each block) summed per block: blocks b+0, 2, 4, 6, then b+1, 3, 5, 7.
__attribute__((target("avx2,fma"))) inline __m256 combine8(__m256i d0, __m256i d1, __m256i d2, __m256i d3) {
    return _mm256_cvtepi32_ps(_mm256_hadd_epi32(_mm256_hadd_epi32(d0, d1), _mm256_hadd_epi32(d2, d3)));
}

__attribute__((target("avx2,fma"))) inline __m256 pair_scales(const RowLayout& l, const float* w_scales,
                                                              const float* x_scales, std::int64_t b) {
    const float s0 = w_scales[l.scale_index[b]] * x_scales[b];
    const float s1 = w_scales[l.scale_index[b + 1]] * x_scales[b + 1];
    return _mm256_set_m128(_mm_set1_ps(s1), _mm_set1_ps(s0));
}

__attribute__((target("avx2,fma"))) inline std::int32_t hsum4_epi32(__m128i v) {
    const __m128i t = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0x4E));
    return _mm_cvtsi128_si32(_mm_add_epi32(t, _mm_shuffle_epi32(t, 0xB1)));
}

// Blocks b and b+1: their 32 bytes of nibbles against x's 64 codes from x[b * 32] (int4_slot order) and the
// lane offsets from offsets[b * 4]: 8 int32 lanes, 4 per block, the exact signed dot products.
__attribute__((target("avx2,fma"))) inline __m256i pair_dot_avx2(const std::uint8_t* codes,
                                                                 const QuantizedActivations& xq,
                                                                 std::int64_t b) {
    const __m256i bytes = _mm256_xor_si256(  // two's complement nibbles to u = w + 8
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + b * kBlock / 2)),
        _mm256_set1_epi8(-0x78));
    const __m256i mask = _mm256_set1_epi8(0x0F);
    const __m256i lo = _mm256_and_si256(bytes, mask),
                  hi = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), mask);
    const std::int8_t* x = xq.codes.data() + b * kBlock;
    // u <= 15 and |x| <= 127: each maddubs pair sum and the sum of two stay far inside int16
    const __m256i pairs = _mm256_add_epi16(
        _mm256_maddubs_epi16(lo, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x))),
        _mm256_maddubs_epi16(hi, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 32))));
    const __m256i offsets =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq.lane_offsets.data() + b * 4));
    return _mm256_add_epi32(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)), offsets);
}

// The last block when the count is odd: 16 bytes of nibbles against 32 codes.
__attribute__((target("avx2,fma"))) inline std::int32_t single_dot_avx2(const std::uint8_t* codes,
                                                                        const QuantizedActivations& xq,
                                                                        std::int64_t b) {
    const __m128i bytes = _mm_xor_si128(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + b * kBlock / 2)), _mm_set1_epi8(-0x78));
    const __m128i mask = _mm_set1_epi8(0x0F);
    const __m128i lo = _mm_and_si128(bytes, mask), hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), mask);
    const std::int8_t* x = xq.codes.data() + b * kBlock;
    const __m128i pairs =
        _mm_add_epi16(_mm_maddubs_epi16(lo, _mm_loadu_si128(reinterpret_cast<const __m128i*>(x))),
                      _mm_maddubs_epi16(hi, _mm_loadu_si128(reinterpret_cast<const __m128i*>(x + 16))));
    const __m128i offsets = _mm_loadu_si128(reinterpret_cast<const __m128i*>(xq.lane_offsets.data() + b * 4));
    return hsum4_epi32(_mm_add_epi32(_mm_madd_epi16(pairs, _mm_set1_epi16(1)), offsets));
}

__attribute__((target("avx2,fma"))) float row_dot_int4_avx2(const RowLayout& l, const std::uint8_t* codes,
                                                            const float* w_scales,
                                                            const QuantizedActivations& xq) {
    const std::int64_t blocks = l.cols / kBlock;
    const float* xs = xq.scales.data();
    __m256 acc = _mm256_setzero_ps();
    std::int64_t b = 0;
    for (; b + 8 <= blocks; b += 8) {
        const __m256 sums = combine8(pair_dot_avx2(codes, xq, b), pair_dot_avx2(codes, xq, b + 2),
                                     pair_dot_avx2(codes, xq, b + 4), pair_dot_avx2(codes, xq, b + 6));
        acc = _mm256_fmadd_ps(sums, unit_scales(l, w_scales, xs, b), acc);
    }
    for (; b + 2 <= blocks; b += 2)
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(pair_dot_avx2(codes, xq, b)),
                              pair_scales(l, w_scales, xs, b), acc);
    const float last =
        b < blocks ? w_scales[l.scale_index[b]] * xs[b] * float(single_dot_avx2(codes, xq, b)) : 0.0f;
    return hsum8(acc) + last;
}

__attribute__((target("avx2,fma,avx512vl,avx512vnni"))) inline __m256i pair_dot_vnni(
    const std::uint8_t* codes, const QuantizedActivations& xq, std::int64_t b) {
    const __m256i bytes = _mm256_xor_si256(  // two's complement nibbles to u = w + 8
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + b * kBlock / 2)),
        _mm256_set1_epi8(-0x78));
    const __m256i mask = _mm256_set1_epi8(0x0F);
    const __m256i lo = _mm256_and_si256(bytes, mask),
                  hi = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), mask);
    const std::int8_t* x = xq.codes.data() + b * kBlock;
    __m256i d = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq.lane_offsets.data() + b * 4));
    d = _mm256_dpbusd_epi32(d, lo, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x)));
    return _mm256_dpbusd_epi32(d, hi, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 32)));
}

__attribute__((target("avx2,fma,avx512vl,avx512vnni"))) inline std::int32_t single_dot_vnni(
    const std::uint8_t* codes, const QuantizedActivations& xq, std::int64_t b) {
    const __m128i bytes = _mm_xor_si128(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + b * kBlock / 2)), _mm_set1_epi8(-0x78));
    const __m128i mask = _mm_set1_epi8(0x0F);
    const __m128i lo = _mm_and_si128(bytes, mask), hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), mask);
    const std::int8_t* x = xq.codes.data() + b * kBlock;
    __m128i d = _mm_loadu_si128(reinterpret_cast<const __m128i*>(xq.lane_offsets.data() + b * 4));
    d = _mm_dpbusd_epi32(d, lo, _mm_loadu_si128(reinterpret_cast<const __m128i*>(x)));
    return hsum4_epi32(_mm_dpbusd_epi32(d, hi, _mm_loadu_si128(reinterpret_cast<const __m128i*>(x + 16))));
}

// The same loop as row_dot_int4_avx2 with the VNNI dots: written twice on purpose, because GCC will not inline a
// function of a wider target (avx512vnni) into a shared template compiled for AVX2 only.
__attribute__((target("avx2,fma,avx512vl,avx512vnni"))) float row_dot_int4_vnni(
    const RowLayout& l, const std::uint8_t* codes, const float* w_scales, const QuantizedActivations& xq) {
    const std::int64_t blocks = l.cols / kBlock;
    const float* xs = xq.scales.data();
    __m256 acc = _mm256_setzero_ps();
    std::int64_t b = 0;
    for (; b + 8 <= blocks; b += 8) {
        const __m256 sums = combine8(pair_dot_vnni(codes, xq, b), pair_dot_vnni(codes, xq, b + 2),
                                     pair_dot_vnni(codes, xq, b + 4), pair_dot_vnni(codes, xq, b + 6));
        acc = _mm256_fmadd_ps(sums, unit_scales(l, w_scales, xs, b), acc);
    }
    for (; b + 2 <= blocks; b += 2)
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(pair_dot_vnni(codes, xq, b)),
                              pair_scales(l, w_scales, xs, b), acc);
    const float last =
        b < blocks ? w_scales[l.scale_index[b]] * xs[b] * float(single_dot_vnni(codes, xq, b)) : 0.0f;
    return hsum8(acc) + last;
}

bool cpu_has(Q8Kernel k) {
    switch (k) {
        case Q8Kernel::avx512_vnni:
            return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                   __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
        case Q8Kernel::avx2:
            return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        default:
            return true;
    }
}

using RowDot = float (*)(const RowLayout&, const std::uint8_t*, const float*, const QuantizedActivations&);

RowDot row_dot_for(Q8Kernel k, int bits) {
    if (k == Q8Kernel::automatic) {
        static const Q8Kernel best = cpu_has(Q8Kernel::avx512_vnni) ? Q8Kernel::avx512_vnni
                                     : cpu_has(Q8Kernel::avx2)      ? Q8Kernel::avx2
                                                                    : Q8Kernel::portable;
        k = best;
    }
    if (k == Q8Kernel::portable) return bits == 8 ? row_dot_int8_portable : row_dot_int4_portable;
    if (bits == 8) return row_dot_int8_avx2;  // int8 is memory-bound already: no VNNI version
    return k == Q8Kernel::avx512_vnni ? row_dot_int4_vnni : row_dot_int4_avx2;
}

}  // namespace

bool qgemv_q8_has_kernel(Q8Kernel kernel) { return cpu_has(kernel); }

bool qgemv_q8_supports(const QuantizedTensor& w) {
    const Format f = w.scheme.format;
    const std::int64_t group =
        w.scheme.granularity == Granularity::per_channel ? w.cols : w.scheme.group_size;
    return (f == Format::int8 || f == Format::int4) && qgemv_supports(w) && group % kBlock == 0 &&
           w.cols % kBlock == 0;
}

std::vector<float> round_activations_q8(std::span<const float> x) {
    if (x.size() % kBlock != 0) throw Error("[qgemv_q8] x must be a multiple of 32 floats long");
    const QuantizedActivations q = quantize_activations(x, 8);
    std::vector<float> out(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) out[i] = q.scales[i / kBlock] * float(q.codes[i]);
    return out;
}

void qgemv_q8(const QuantizedTensor& w, std::span<const float> x, std::span<float> y, int threads,
              Q8Kernel kernel) {
    if (!qgemv_q8_supports(w))
        throw Error(
            "[qgemv_q8] int8-activation kernels take int8 or int4 weights, symmetric, per channel or per "
            "group of a multiple of 32, with a multiple of 32 columns; got " +
            describe(w.scheme) + " on " + std::to_string(w.rows) + " x " + std::to_string(w.cols) +
            ": use qgemv instead");
    if (x.size() != std::size_t(w.cols) || y.size() != std::size_t(w.rows))
        throw Error("[qgemv_q8] x must have " + std::to_string(w.cols) + " floats and y " +
                    std::to_string(w.rows));
    if (!cpu_has(kernel))
        throw Error(
            "[qgemv_q8] this CPU lacks the instructions of the kernel asked for: check "
            "qgemv_q8_has_kernel first, or pass Q8Kernel::automatic");
    const std::int64_t group =
        w.scheme.granularity == Granularity::per_channel ? w.cols : w.scheme.group_size;
    std::vector<std::int32_t> scale_index(std::size_t(w.cols / kBlock));
    for (std::size_t b = 0; b < scale_index.size(); ++b)
        scale_index[b] = std::int32_t(std::int64_t(b) * kBlock / group);
    const RowLayout l{format_info(w.scheme.format).bits, w.cols, group, scale_index.data()};
    const QuantizedActivations xq = quantize_activations(x, l.bits);
    const RowDot row_dot = row_dot_for(kernel, l.bits);
    const std::int64_t groups_per_row = w.cols / l.group;
    const int nt = w.numel() < (1 << 16) ? 1 : (threads > 0 ? threads : omp_get_num_procs());
#pragma omp parallel for schedule(static) num_threads(nt)
    for (std::int64_t r = 0; r < w.rows; ++r)
        y[std::size_t(r)] =
            row_dot(l, w.packed.data() + r * w.cols * l.bits / 8, w.scales.data() + r * groups_per_row, xq);
}

}  // namespace tl
