// quant_parity: the GPU's quantized kernels (engine/quant/cuda) against the CPU. The oracle is the CPU quantizer's
// dequantize() (formats/quantizer.cpp) followed by a float64 product, never the kernels' own decoding:
//   - qgemv / qgemm / qmatmul: every format x scale storage x activation type, odd shapes and batches, outputs
//     NaN-poisoned before each run, each element within the precision's worst-case bound
//     |y - ref| <= u_T |ref| + 2 (u_T + K 2^-24) sum_k |w_k x_k|   (u_T = 2^-8 for bf16, 2^-11 for fp16:
//     the output's rounding, the weights' rounding to T before the tensor cores, fp32 accumulation), and bitwise
//     equal over two runs;
//   - dequantize: each element within one rounding of T of the CPU's value;
//   - the GPU quantizer: codes and scales equal to the CPU quantizer's, byte for byte;
//   - bad arguments: a clear tl::Error.
// A plain executable like cuda_parity: one line per case, "N passed, M failed", exit 77 without a GPU.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "formats/format_table.hpp"
#include "formats/quantizer.hpp"
#include "parity_harness.hpp"
#include "quant/cuda/act_bits.hpp"
#include "quant/cuda/qmatmul.hpp"
#include "quant/quant_layout.hpp"

namespace tl::parity {
namespace {

using cuda_quant::ActType;
using cuda_quant::DeviceQuantMatrix;

using cuda_quant::error_ratio;
using cuda_quant::from_bits;
using cuda_quant::to_bits;
using cuda_quant::unit_roundoff;

// ---- device buffers -------------------------------------------------------------------------------------
class DeviceBytes {
public:
    explicit DeviceBytes(std::size_t bytes) {
        if (cudaMalloc(&p_, bytes) != cudaSuccess) throw Error("cudaMalloc failed");
        bytes_ = bytes;
    }
    ~DeviceBytes() { cudaFree(p_); }
    DeviceBytes(const DeviceBytes&) = delete;
    DeviceBytes& operator=(const DeviceBytes&) = delete;
    void* get() const { return p_; }
    template <class T>
    void upload(const std::vector<T>& v) {
        if (cudaMemcpy(p_, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice) != cudaSuccess)
            throw Error("upload failed");
    }
    template <class T>
    std::vector<T> download(std::size_t count) const {
        std::vector<T> v(count);
        if (cudaMemcpy(v.data(), p_, count * sizeof(T), cudaMemcpyDeviceToHost) != cudaSuccess)
            throw Error(std::string("download failed: ") + cudaGetErrorString(cudaGetLastError()));
        return v;
    }
    void poison() { cudaMemset(p_, 0xFF, bytes_); }  // 0xFFFF: NaN in bf16 and in fp16

private:
    void* p_ = nullptr;
    std::size_t bytes_ = 0;
};

// ---- schemes --------------------------------------------------------------------------------------------
struct Named {
    std::string name;
    QuantScheme scheme;
};
std::vector<Named> schemes() {
    auto make = [](Format f, Granularity g, std::int64_t group, DoubleQuant dq) {
        QuantScheme s;
        s.format = f, s.granularity = g, s.group_size = group, s.double_quant = dq;
        return s;
    };
    using G = Granularity;
    using D = DoubleQuant;
    return {
        {"int8 per_channel", make(Format::int8, G::per_channel, 0, D::none)},
        {"int8 g128", make(Format::int8, G::per_group, 128, D::none)},
        {"int4 g32", make(Format::int4, G::per_group, 32, D::none)},
        {"int4 g64", make(Format::int4, G::per_group, 64, D::none)},
        {"int4 g128", make(Format::int4, G::per_group, 128, D::none)},
        {"int4 g32 dq-int8", make(Format::int4, G::per_group, 32, D::int8)},
        {"nf4 g64", make(Format::nf4, G::per_group, 64, D::none)},
        {"nf4 g64 dq-fp8", make(Format::nf4, G::per_group, 64, D::fp8_e4m3)},
        {"fp8_e4m3 per_channel", make(Format::fp8_e4m3, G::per_channel, 0, D::none)},
        {"fp8_e4m3 g128", make(Format::fp8_e4m3, G::per_group, 128, D::none)},
    };
}

std::vector<float> weights(std::int64_t rows, std::int64_t cols, std::uint64_t seed) {
    Rng rng(seed);
    std::vector<float> w(std::size_t(rows * cols));
    for (auto& v : w) v = 0.05f * rng.normal();
    for (std::size_t i = 0; i < w.size(); i += 997) w[i] *= 20;  // outliers
    return w;
}

// ---- products ---------------------------------------------------------------------------------------------
enum class Kernel { gemv, gemm, dispatch };
const char* name_of(Kernel k) { return k == Kernel::gemv ? "qgemv" : k == Kernel::gemm ? "qgemm" : "qmatmul"; }

void check_product(Suite& suite, const Named& s, ActType t, Kernel kernel, std::int64_t rows, std::int64_t cols,
                   std::int64_t batch) {
    const std::string name = std::string(name_of(kernel)) + " " + s.name + " " + cuda_quant::name_of(t) + " " +
                             std::to_string(rows) + "x" + std::to_string(cols) + " b" + std::to_string(batch);
    suite.run(name, [&] {
        const QuantizedTensor q = quantize(weights(rows, cols, 11), rows, cols, s.scheme);
        const std::vector<float> w = dequantize(q);  // the oracle's weights
        const DeviceQuantMatrix dw(make_quant_layout(q));
        Rng rng(std::uint64_t(batch * 131 + rows));
        std::vector<std::uint16_t> xb(std::size_t(batch * cols));
        for (auto& v : xb) v = to_bits(rng.normal(), t);
        // y has kGuard poisoned elements past its end: a write beyond batch x rows changes one of them.
        constexpr std::size_t kGuard = 64;
        const std::size_t count = std::size_t(batch * rows);
        DeviceBytes dx(xb.size() * 2), dy((count + kGuard) * 2);
        dx.upload(xb);
        std::size_t guard_overwritten = 0;
        auto run = [&] {
            dy.poison();
            if (kernel == Kernel::gemv) cuda_quant::qgemv(dw, dx.get(), dy.get(), batch, t);
            if (kernel == Kernel::gemm) cuda_quant::qgemm(dw, dx.get(), dy.get(), batch, t);
            if (kernel == Kernel::dispatch) cuda_quant::qmatmul(dw, dx.get(), dy.get(), batch, t);
            std::vector<std::uint16_t> y = dy.download<std::uint16_t>(count + kGuard);
            guard_overwritten += std::size_t(std::count_if(y.begin() + std::ptrdiff_t(count), y.end(),
                                                           [](std::uint16_t v) { return v != 0xFFFF; }));
            y.resize(count);
            return y;
        };
        const std::vector<std::uint16_t> y1 = run(), y2 = run();
        const double u = unit_roundoff(t), accumulate = double(cols) * std::ldexp(1.0, -24);
        double worst = 0;
        std::string first_bad;
        for (std::int64_t b = 0; b < batch; ++b)
            for (std::int64_t r = 0; r < rows; ++r) {
                double ref = 0, mag = 0;
                for (std::int64_t k = 0; k < cols; ++k) {
                    const double p = double(w[std::size_t(r * cols + k)]) *
                                     double(from_bits(xb[std::size_t(b * cols + k)], t));
                    ref += p, mag += std::fabs(p);
                }
                const double got = from_bits(y1[std::size_t(b * rows + r)], t);
                const double bound = u * std::fabs(ref) + 2 * (u + accumulate) * mag;
                const double ratio = error_ratio(got, ref, bound);
                if (ratio > worst) worst = ratio;
                if (ratio > 1 && first_bad.empty())
                    first_bad = "; first bad (batch " + std::to_string(b) + ", row " + std::to_string(r) +
                                "): got " + std::to_string(got) + ", want " + std::to_string(ref);
            }
        const bool same = y1 == y2;
        suite.expect_true(name, worst <= 1 && same && guard_overwritten == 0,
                          "err/bound " + Suite::fmt(worst) + (same ? ", 2 runs bitwise equal" : ", RUNS DIFFER") +
                              (guard_overwritten == 0 ? "" : ", WROTE PAST y's END") + first_bad);
    });
}

void check_dequantize(Suite& suite, const Named& s, ActType t) {
    const std::int64_t rows = 37, cols = 256;
    const std::string name = std::string("dequantize ") + s.name + " " + cuda_quant::name_of(t);
    suite.run(name, [&] {
        const QuantizedTensor q = quantize(weights(rows, cols, 5), rows, cols, s.scheme);
        const std::vector<float> want = dequantize(q);
        const DeviceQuantMatrix dw(make_quant_layout(q));
        DeviceBytes out(std::size_t(rows * cols) * 2);
        out.poison();
        cuda_quant::dequantize(dw, out.get(), t);
        const std::vector<std::uint16_t> got = out.download<std::uint16_t>(std::size_t(rows * cols));
        double worst = 0;
        for (std::size_t i = 0; i < got.size(); ++i) {
            // One rounding to T, plus the last bit a double-quantized scale may differ by (see quant_layout_test).
            const double g = from_bits(got[i], t);
            const double bound = (unit_roundoff(t) + std::ldexp(1.0, -22)) * std::fabs(want[i]) + 1e-30;
            worst = std::max(worst, std::isfinite(g) ? std::fabs(g - want[i]) / bound : 1e30);
        }
        suite.expect_true(name, worst <= 1, "err/(one rounding) " + Suite::fmt(worst));
    });
}

void check_quantizer(Suite& suite, Format f, std::int64_t group) {
    const std::int64_t rows = 19, cols = 512;
    const std::string name = std::string("quantize on the GPU ") + std::string(format_info(f).name) + " group " +
                             std::to_string(group) + " vs the CPU quantizer";
    suite.run(name, [&] {
        std::vector<float> w = weights(rows, cols, 9);
        for (std::int64_t i = 0; i < group; ++i) w[std::size_t(cols + i)] = 0;  // an all-zero group: scale 0
        QuantScheme s;
        s.format = f, s.granularity = Granularity::per_group, s.group_size = group;
        const QuantLayout want = make_quant_layout(quantize(w, rows, cols, s));
        const QuantKind kind = f == Format::int8 ? QuantKind::int8 : f == Format::int4 ? QuantKind::int4 : QuantKind::nf4;
        DeviceQuantMatrix dq(kind, rows, cols, group);
        DeviceBytes dw(w.size() * 4);
        dw.upload(w);
        cuda_quant::quantize(static_cast<const float*>(dw.get()), dq);
        const QuantLayout got = dq.download();
        std::size_t code_diff = 0, scale_diff = 0;
        for (std::size_t i = 0; i < want.codes.size(); ++i) code_diff += got.codes[i] != want.codes[i];
        for (std::size_t i = 0; i < want.scales.size(); ++i) scale_diff += got.scales[i] != want.scales[i];
        suite.expect_true(name, code_diff == 0 && scale_diff == 0,
                          std::to_string(code_diff) + " code bytes and " + std::to_string(scale_diff) +
                              " scales differ");
    });
}

void check_bad_arguments(Suite& suite) {
    suite.run("bad arguments are clear errors", [&] {
        QuantScheme s;
        s.format = Format::int4, s.granularity = Granularity::per_group, s.group_size = 32;
        const DeviceQuantMatrix dw(make_quant_layout(quantize(weights(8, 64, 1), 8, 64, s)));
        DeviceBytes x(64 * 2 * 4), y(8 * 2 * 4);
        int errors = 0;
        auto expect_error = [&](auto&& call) {
            try {
                call();
            } catch (const Error&) {
                ++errors;
            }
        };
        expect_error([&] { cuda_quant::qmatmul(dw, x.get(), y.get(), 0, ActType::bf16); });
        expect_error([&] { cuda_quant::qgemv(dw, static_cast<char*>(x.get()) + 2, y.get(), 1, ActType::bf16); });
        expect_error([&] { cuda_quant::qgemm(dw, nullptr, y.get(), 4, ActType::fp16); });
        expect_error([&] { DeviceQuantMatrix bad(QuantKind::int4, 8, 96, 32); });
        suite.expect_true("bad arguments are clear errors", errors == 4, std::to_string(errors) + " of 4 refused");
    });
}

}  // namespace
}  // namespace tl::parity

int main(int argc, char** argv) {
    using namespace tl::parity;
    const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
    if (argc > 1 && !quick) {
        std::fprintf(stderr, "usage: quant_parity [--quick]\n");
        return 2;
    }
    std::string why;
    if (!tl::cuda_quant::gpu_available(&why)) {
        std::printf("SKIP: no usable GPU (%s)\n", why.c_str());
        return 77;
    }
    Suite suite;
    for (const auto t : {ActType::bf16, ActType::fp16})
        for (const Named& s : schemes()) {
            check_dequantize(suite, s, t);
            check_product(suite, s, t, Kernel::gemv, 97, 256, 1);
            check_product(suite, s, t, Kernel::gemv, 64, 128, 3);
            check_product(suite, s, t, Kernel::dispatch, 300, 1024, 1);
            for (const std::int64_t batch : {2, 17, 64, 100})
                check_product(suite, s, t, Kernel::gemm, 97, 256, batch);
            if (!quick) {
                check_product(suite, s, t, Kernel::gemm, 300, 1024, 16);  // split along K
                check_product(suite, s, t, Kernel::gemm, 100, 1152, 16);  // 18 K steps in 4 splits: 5, 5, 5, 3
                check_product(suite, s, t, Kernel::gemm, 64, 1920, 16);   // 30 steps: 7 splits planned, 6 used
                check_product(suite, s, t, Kernel::dispatch, 130, 512, 256);
            }
        }
    check_quantizer(suite, tl::Format::int8, 32);
    check_quantizer(suite, tl::Format::int8, 512);
    check_quantizer(suite, tl::Format::int4, 32);
    check_quantizer(suite, tl::Format::int4, 128);
    check_quantizer(suite, tl::Format::nf4, 64);
    check_bad_arguments(suite);
    std::printf("%d passed, %d failed\n", suite.passed(), suite.failed());
    return suite.failed() == 0 ? 0 : 1;
}
