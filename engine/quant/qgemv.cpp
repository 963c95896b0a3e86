#include "quant/qgemv.hpp"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "backend/cpu/cpu_gemm.hpp"
#include "core/error.hpp"
#include "formats/format_table.hpp"

namespace tl {

namespace {

// Rows below this many weights run on one thread: a GEMV that small is over before a second thread wakes.
constexpr std::int64_t kParallelWeights = 1 << 16;
// qgemm dequantizes this many rows of W at a time: 32 rows of 8192 floats is 1 MiB, within a core's L2.
constexpr std::int64_t kTileRows = 32;

int thread_count(int threads, std::int64_t work) {
    if (work < kParallelWeights) return 1;
    return threads > 0 ? threads : omp_get_num_procs();
}

// What a row's codes mean: value = scale of the code's group x table[code].
struct Decoder {
    int bits = 8;
    std::int64_t group = 0;  // elements per scale along a row
    std::int64_t groups_per_row = 0;
    alignas(64) std::array<float, 256> table{};
};

Decoder decoder_for(const QuantizedTensor& w) {
    const FormatInfo& f = format_info(w.scheme.format);
    Decoder d;
    d.bits = f.bits;
    d.group = w.scheme.granularity == Granularity::per_channel ? w.cols : w.scheme.group_size;
    d.groups_per_row = w.cols / d.group;
    for (std::uint32_t code = 0; code < (1u << f.bits); ++code) d.table[code] = float(format_decode(f, code));
    return d;
}

const std::uint8_t* row_codes(const QuantizedTensor& w, const Decoder& d, std::int64_t r) {
    return w.packed.data() + r * w.cols * d.bits / 8;
}
const float* row_scales(const QuantizedTensor& w, const Decoder& d, std::int64_t r) {
    return w.scales.data() + r * d.groups_per_row;
}
std::uint32_t code_at(const std::uint8_t* codes, int bits, std::int64_t i) {
    return bits == 8 ? codes[i] : (codes[i / 2] >> (4 * (i % 2))) & 0xF;
}

// ---- portable kernels: the same sums, one element at a time
// -------------------------------------------------
float row_dot_portable(const Decoder& d, const std::uint8_t* codes, const float* scales, const float* x) {
    float acc = 0;
    for (std::int64_t g = 0; g < d.groups_per_row; ++g) {
        float part = 0;
        for (std::int64_t i = g * d.group; i < (g + 1) * d.group; ++i)
            part += d.table[code_at(codes, d.bits, i)] * x[i];
        acc += scales[g] * part;
    }
    return acc;
}

// ---- AVX2 kernels
// ---------------------------------------------------------------------------------------------
__attribute__((target("avx2,fma"))) float hsum(__m256 v) {
    const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

// int8: the codes are the integers themselves (two's complement), so they convert without a table.
__attribute__((target("avx2,fma"))) float row_dot_int8(const Decoder& d, const std::uint8_t* codes,
                                                       const float* scales, const float* x) {
    __m256 acc = _mm256_setzero_ps();
    for (std::int64_t g = 0; g < d.groups_per_row; ++g) {
        __m256 part0 = _mm256_setzero_ps(), part1 = _mm256_setzero_ps();
        for (std::int64_t i = g * d.group; i < (g + 1) * d.group; i += 16) {
            const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + i));
            const __m256 lo = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(c));
            const __m256 hi = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(c, 8)));
            part0 = _mm256_fmadd_ps(lo, _mm256_loadu_ps(x + i), part0);
            part1 = _mm256_fmadd_ps(hi, _mm256_loadu_ps(x + i + 8), part1);
        }
        acc = _mm256_fmadd_ps(_mm256_add_ps(part0, part1), _mm256_set1_ps(scales[g]), acc);
    }
    return hsum(acc);
}

// Lane i gets table[idx_i] for idx 0..15: bit 3 picks the half (blendv reads bit 31). A function of its own, not a
// lambda: a lambda does not inherit its caller's target("avx2") and fails to compile without -mavx2.
__attribute__((target("avx2,fma"))) inline __m256 nibble_lookup(__m256 table_lo, __m256 table_hi, __m256i idx) {
    const __m256 pick_hi = _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28));
    return _mm256_blendv_ps(_mm256_permutevar8x32_ps(table_lo, idx), _mm256_permutevar8x32_ps(table_hi, idx),
                            pick_hi);
}

// 4-bit codes (int4, nf4) through a 16-entry table held in two registers. Byte k of a row holds elements 2k
// (low nibble) and 2k + 1 (high), so x comes deinterleaved: x_even[k] = x[2k], x_odd[k] = x[2k + 1].
__attribute__((target("avx2,fma"))) float row_dot_nibbles(const Decoder& d, const std::uint8_t* codes,
                                                          const float* scales, const float* x_even,
                                                          const float* x_odd) {
    const __m256 table_lo = _mm256_load_ps(d.table.data()), table_hi = _mm256_load_ps(d.table.data() + 8);
    const __m256i nibble = _mm256_set1_epi32(0xF);
    __m256 acc = _mm256_setzero_ps();
    for (std::int64_t g = 0; g < d.groups_per_row; ++g) {
        __m256 part0 = _mm256_setzero_ps(), part1 = _mm256_setzero_ps();
        for (std::int64_t k = g * d.group / 2; k < (g + 1) * d.group / 2; k += 8) {  // 8 bytes: 16 elements
            const __m256i bytes =
                _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + k)));
            const __m256 even = nibble_lookup(table_lo, table_hi, _mm256_and_si256(bytes, nibble));
            const __m256 odd = nibble_lookup(table_lo, table_hi, _mm256_srli_epi32(bytes, 4));
            part0 = _mm256_fmadd_ps(even, _mm256_loadu_ps(x_even + k), part0);
            part1 = _mm256_fmadd_ps(odd, _mm256_loadu_ps(x_odd + k), part1);
        }
        acc = _mm256_fmadd_ps(_mm256_add_ps(part0, part1), _mm256_set1_ps(scales[g]), acc);
    }
    return hsum(acc);
}

// 8-bit codes with a table (fp8): a gather per 8 elements.
__attribute__((target("avx2,fma"))) float row_dot_byte_table(const Decoder& d, const std::uint8_t* codes,
                                                             const float* scales, const float* x) {
    __m256 acc = _mm256_setzero_ps();
    for (std::int64_t g = 0; g < d.groups_per_row; ++g) {
        __m256 part = _mm256_setzero_ps();
        for (std::int64_t i = g * d.group; i < (g + 1) * d.group; i += 8) {
            const __m256i idx =
                _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + i)));
            part = _mm256_fmadd_ps(_mm256_i32gather_ps(d.table.data(), idx, 4), _mm256_loadu_ps(x + i), part);
        }
        acc = _mm256_fmadd_ps(part, _mm256_set1_ps(scales[g]), acc);
    }
    return hsum(acc);
}

__attribute__((target("avx2,fma"))) float row_dot_fp32(const float* w, const float* x, std::int64_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),
           a3 = _mm256_setzero_ps();
    std::int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 16), _mm256_loadu_ps(x + i + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 24), _mm256_loadu_ps(x + i + 24), a3);
    }
    float tail = 0;
    for (; i < n; ++i) tail += w[i] * x[i];
    return hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3))) + tail;
}

bool cpu_has_avx2() {
    static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return yes;
}

void check_supported(const QuantizedTensor& w, const char* what) {
    if (!qgemv_supports(w))
        throw Error(std::string("[") + what +
                    "] the fused kernels take int8, int4, nf4 and fp8, symmetric, per channel " +
                    "or per group of a multiple of 16, with a multiple of 16 columns; got " +
                    describe(w.scheme) + " on " + std::to_string(w.rows) + " x " + std::to_string(w.cols) +
                    ": dequantize() it and use an fp32 product instead");
}

}  // namespace

bool qgemv_supports(const QuantizedTensor& w) {
    const Format f = w.scheme.format;
    const bool format_ok = f == Format::int8 || f == Format::int4 || f == Format::nf4 ||
                           f == Format::fp8_e4m3 || f == Format::fp8_e5m2;
    const bool blocks_ok = w.scheme.granularity == Granularity::per_channel ||
                           (w.scheme.granularity == Granularity::per_group && w.scheme.group_size % 16 == 0 &&
                            w.cols % w.scheme.group_size == 0);
    return format_ok && blocks_ok && w.scheme.symmetry == Symmetry::symmetric && w.cols % 16 == 0 &&
           w.scales.size() == std::size_t(w.num_blocks());
}

void qgemv(const QuantizedTensor& w, std::span<const float> x, std::span<float> y, int threads) {
    check_supported(w, "qgemv");
    if (x.size() != std::size_t(w.cols) || y.size() != std::size_t(w.rows))
        throw Error("[qgemv] x must have " + std::to_string(w.cols) + " floats and y " +
                    std::to_string(w.rows));
    const Decoder d = decoder_for(w);
    std::vector<float> x_even, x_odd;  // the 4-bit kernel reads x deinterleaved (see row_dot_nibbles)
    if (d.bits == 4) {
        x_even.resize(std::size_t(w.cols / 2));
        x_odd.resize(std::size_t(w.cols / 2));
        for (std::int64_t k = 0; k < w.cols / 2; ++k)
            x_even[std::size_t(k)] = x[std::size_t(2 * k)], x_odd[std::size_t(k)] = x[std::size_t(2 * k + 1)];
    }
    const bool avx2 = cpu_has_avx2();
    const bool is_int8 = w.scheme.format == Format::int8;
#pragma omp parallel for schedule(static) num_threads(thread_count(threads, w.numel()))
    for (std::int64_t r = 0; r < w.rows; ++r) {
        const std::uint8_t* codes = row_codes(w, d, r);
        const float* scales = row_scales(w, d, r);
        float v;
        if (!avx2)
            v = row_dot_portable(d, codes, scales, x.data());
        else if (d.bits == 4)
            v = row_dot_nibbles(d, codes, scales, x_even.data(), x_odd.data());
        else if (is_int8)
            v = row_dot_int8(d, codes, scales, x.data());
        else
            v = row_dot_byte_table(d, codes, scales, x.data());
        y[std::size_t(r)] = v;
    }
}

void qgemm(const QuantizedTensor& w, std::span<const float> x, std::int64_t batch, std::span<float> y,
           int threads) {
    check_supported(w, "qgemm");
    if (batch < 1 || x.size() != std::size_t(batch * w.cols) || y.size() != std::size_t(batch * w.rows))
        throw Error("[qgemm] X must be batch x " + std::to_string(w.cols) + " and Y batch x " +
                    std::to_string(w.rows));
    const Decoder d = decoder_for(w);
    const std::int64_t tiles = (w.rows + kTileRows - 1) / kTileRows;
    const CMatView X(x.data(), batch, w.cols);
#pragma omp parallel num_threads(thread_count(threads, w.numel()))
    {
        std::vector<float> tile(std::size_t(kTileRows * w.cols));  // this thread's rows of W in fp32
#pragma omp for schedule(static)
        for (std::int64_t t = 0; t < tiles; ++t) {
            const std::int64_t r0 = t * kTileRows, rows = std::min(kTileRows, w.rows - r0);
            for (std::int64_t r = 0; r < rows; ++r) {
                const std::uint8_t* codes = row_codes(w, d, r0 + r);
                const float* scales = row_scales(w, d, r0 + r);
                float* out = tile.data() + r * w.cols;
                for (std::int64_t i = 0; i < w.cols; ++i)
                    out[i] = scales[i / d.group] * d.table[code_at(codes, d.bits, i)];
            }
            // Y[:, r0 : r0 + rows] = X tile^T, one serial SGEMM (the threads already split the tiles).
            cpu::gemm({MatView(y.data() + r0, batch, rows, w.rows), X, CMatView(tile.data(), rows, w.cols),
                       Trans::no, Trans::yes, 1.0f, 0.0f},
                      1);
        }
    }
}

void gemv_fp32(std::span<const float> w, std::int64_t rows, std::int64_t cols, std::span<const float> x,
               std::span<float> y, int threads) {
    if (w.size() != std::size_t(rows * cols) || x.size() != std::size_t(cols) ||
        y.size() != std::size_t(rows))
        throw Error("[gemv_fp32] W must be rows x cols, x cols and y rows floats");
    const bool avx2 = cpu_has_avx2();
#pragma omp parallel for schedule(static) num_threads(thread_count(threads, rows* cols))
    for (std::int64_t r = 0; r < rows; ++r) {
        const float* row = w.data() + r * cols;
        float v = 0;
        if (avx2)
            v = row_dot_fp32(row, x.data(), cols);
        else
            for (std::int64_t i = 0; i < cols; ++i) v += row[i] * x[std::size_t(i)];
        y[std::size_t(r)] = v;
    }
}

}  // namespace tl
