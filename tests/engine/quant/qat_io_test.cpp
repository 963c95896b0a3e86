// QAT: the STE gradient is the gradient at the quantized point (central differences of the loss there), the
// master moves by exactly the optimizer's step, clipped STE blocks exactly the saturated elements, and a
// short QAT run beats PTQ at 2-3 bits. Quantized folders: round trip, ledger, damaged files.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <set>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "data/batch.hpp"
#include "io/safetensors.hpp"
#include "quant/qat.hpp"
#include "quant/quant_io.hpp"
#include "quant_fixture.hpp"
#include "train/evaluate.hpp"

namespace tl {
namespace {

namespace fs = std::filesystem;
using testing::trained_nano;

double batch_loss(Gpt& m, const Batch& b) {
    m.forward(b.tokens.data(), b.targets.data(), b.B, b.T);
    std::vector<float> l(b.weights.size());
    m.backend().copy_to_host(l.data(), m.losses());
    double s = 0, w = 0;
    for (std::size_t i = 0; i < l.size(); ++i) s += double(b.weights[i]) * l[i], w += b.weights[i];
    return s / w;
}

// d L / d master under the STE = d L / d w at w = q(master): compare with (L(q + h e_i) - L(q - h e_i)) / 2h,
// where the loss is evaluated with the perturbed quantized weights (no re-quantization).
TEST(Qat, SteGradientIsTheGradientAtTheQuantizedPoint) {
    auto be = make_cpu_backend({1});
    Gpt m(*be, find_preset("nano").config);
    m.init_gpt2(11);
    const QuantPlan plan = uniform_plan(m, make_scheme("int4", "per_channel", 0), EmbeddingPolicy::keep_fp32);
    QatState state(m, plan, SteMode::identity);
    ExampleBatcher batcher(task_examples(find_task("reverse"), Split::train, 8, 3), 4,
                           int(m.config().n_positions), 0.0f, ExampleBatcher::Order::sequential, 0);
    const Batch b = batcher.next();
    m.enable_grads();
    m.zero_grads();
    m.forward(b.tokens.data(), b.targets.data(), b.B, b.T);
    m.backward(b.weights.data(), total_weight(b));
    for (std::size_t e : {std::size_t(0), std::size_t(3)}) {
        const QuantTarget& t = plan[e].target;
        const std::vector<float> g = state.master_gradient(m, e);
        EXPECT_EQ(read_target(m, t), state.quantized(e));  // the model holds q(master)
        std::vector<std::size_t> idx(g.size());
        std::iota(idx.begin(), idx.end(), std::size_t(0));
        std::partial_sort(idx.begin(), idx.begin() + 4, idx.end(),
                          [&](std::size_t a, std::size_t c) { return std::fabs(g[a]) > std::fabs(g[c]); });
        for (int k = 0; k < 4; ++k) {
            const std::size_t i = idx[std::size_t(k)];
            const float h = 1e-2f;
            std::vector<float> w = state.quantized(e);
            w[i] += h;
            write_target(m, t, w);
            const double up = batch_loss(m, b);
            w[i] -= 2 * h;
            write_target(m, t, w);
            const double down = batch_loss(m, b);
            write_target(m, t, state.quantized(e));
            const double fd = (up - down) / (2 * h);
            EXPECT_NEAR(g[i], fd, 0.03 * std::fabs(fd) + 1e-4) << t.name << " element " << i;
        }
    }
}

// after_step hands the optimizer's move to the master exactly (identity STE) and re-quantizes.
TEST(Qat, MasterReceivesTheStepAndTheModelItsQuantization) {
    auto be = make_cpu_backend({1});
    Gpt m(*be, find_preset("nano").config);
    m.init_gpt2(2);
    const QuantPlan plan = uniform_plan(m, make_scheme("int4", "per_group", 16), EmbeddingPolicy::keep_fp32);
    const std::vector<float> master0 = read_target(m, plan[1].target);
    QatState state(m, plan, SteMode::identity);
    std::vector<float> w = state.quantized(1);
    for (std::size_t i = 0; i < w.size(); ++i) w[i] += 1e-3f * float(i % 7);  // a pretend optimizer step
    write_target(m, plan[1].target, w);
    state.after_step(m);
    for (std::size_t i = 0; i < w.size(); ++i)
        ASSERT_NEAR(state.master(1)[i], master0[i] + 1e-3f * float(i % 7), 1e-6f);
    std::vector<float> q = state.master(1);
    fake_quantize(q, plan[1].target.rows, plan[1].target.cols, plan[1].scheme);
    EXPECT_EQ(read_target(m, plan[1].target), q);
}

// Clipped STE: an element is blocked exactly when it saturates, i.e. its quantized value is the block's
// extreme level and it lies beyond it. mse clipping sacrifices a lone outlier in a long bell-shaped row.
TEST(Qat, ClippedSteBlocksExactlyTheSaturatedElements) {
    const std::int64_t rows = 2, cols = 512;
    std::vector<float> w(std::size_t(rows * cols));
    Rng rng(4);
    for (float& x : w) x = float(rng.normal());
    w[5] = 9.0f, w[600] = -8.0f;
    QuantScheme s = make_scheme("int4", "per_channel", 0);
    s.clip = ClipMethod::mse;
    const std::vector<float> mask = representable_mask(w, rows, cols, s);
    std::vector<float> q = w;
    fake_quantize(q, rows, cols, s);
    for (std::size_t i = 0; i < w.size(); ++i) {
        const auto r0 = long(i / std::size_t(cols) * std::size_t(cols));
        const float top =
            std::fabs(*std::max_element(q.begin() + r0, q.begin() + r0 + cols,
                                        [](float a, float b) { return std::fabs(a) < std::fabs(b); }));
        const bool saturated = std::fabs(q[i]) == top && std::fabs(w[i]) > top * (1 + 1e-3f);
        ASSERT_EQ(mask[i], saturated ? 0.0f : 1.0f) << i;
    }
    EXPECT_EQ(mask[5], 0.0f);
    EXPECT_EQ(mask[600], 0.0f);
    s.clip = ClipMethod::absmax;  // absmax clips nothing
    for (float x : representable_mask(w, rows, cols, s)) EXPECT_EQ(x, 1.0f);
}

// The claim lesson 04 rests on: at 2-3 bits, training through the quantizer recovers what PTQ loses. The
// control trains the fp32 model for the same steps and then quantizes it, so extra training alone is not
// credited.
TEST(Qat, BeatsPtqAtLowBitsInAShortRun) {
    auto& n = trained_nano();
    FinetuneSpec spec;
    spec.task = "reverse", spec.steps = 40, spec.batch = 8, spec.lr = 1e-3f, spec.train_examples = 1000;
    auto longer = clone_model(*n.model);
    finetune(*longer, spec);
    for (const char* f : {"ternary", "palette3"}) {
        const QuantScheme s = make_scheme(f, "per_channel", 0);
        auto ptq = clone_model(*longer);
        apply_ptq(*ptq, uniform_plan(*ptq, s, EmbeddingPolicy::keep_fp32));
        auto qat = clone_model(*n.model);
        qat_finetune(*qat, spec, uniform_plan(*qat, s, EmbeddingPolicy::keep_fp32), SteMode::identity);
        const double l_fp = response_loss(*longer, n.test, 16);
        const double l_ptq = response_loss(*ptq, n.test, 16), l_qat = response_loss(*qat, n.test, 16);
        std::printf("%-8s fp32 %.3f  PTQ %.3f  QAT %.3f\n", f, l_fp, l_ptq, l_qat);
        // QAT closes at least 30% of PTQ's gap, or ends within 0.01 of the fp32 loss: a k-means palette can lose so
        // little on nano that 30% of its gap is below the noise of 40 steps (palette3 PTQ 2.744 against fp32
        // 2.734 on an AMD EPYC; the nano model's training depends on the CPU's vector code). Ternary loses ~0.3,
        // so there the 30% bound is the binding one.
        const double bound = std::max(l_ptq - 0.3 * (l_ptq - l_fp), l_fp + 0.01);
        EXPECT_LT(l_qat, bound) << f << ": QAT must close at least 30% of PTQ's gap (or end within 0.01 of fp32)";
        if (std::string(f) == "ternary") {  // the QAT model really is ternary: <= 3 levels per output row
            const QuantPlan p = uniform_plan(*qat, s, EmbeddingPolicy::keep_fp32);
            const auto w = read_target(*qat, p[0].target);
            EXPECT_LE(std::set<float>(w.begin(), w.begin() + p[0].target.cols).size(), 3u);
        }
    }
}

std::vector<float> all_weights(const Gpt& m) {
    std::vector<float> w(std::size_t(m.weights().numel()));
    m.backend().copy_to_host(w.data(), CVecView(m.weights().data(), m.weights().numel()));
    return w;
}

struct TempDir {
    fs::path path = fs::temp_directory_path() / ("tl_quant_test_" + std::to_string(::getpid()));
    TempDir() { fs::create_directories(path); }
    ~TempDir() { fs::remove_all(path); }
};

// Saving then loading equals PTQ in memory, bit for bit, for every kind of stored scheme; the ledger holds
// the packed bytes in quant_storage.
TEST(QuantIo, FolderRoundTripEqualsInMemoryPtq) {
    auto& n = trained_nano();
    TempDir tmp;
    std::vector<QuantScheme> schemes = {
        make_scheme("int8", "per_channel", 0),   make_scheme("int4", "per_group", 16),
        make_scheme("nf4", "per_group", 16),     make_scheme("palette3", "per_channel", 0),
        make_scheme("ternary", "per_tensor", 0), make_scheme("fp4_e2m1", "per_group", 32)};
    schemes.push_back(schemes[1]);
    schemes.back().symmetry = Symmetry::asymmetric;
    schemes.push_back(schemes[2]);
    schemes.back().double_quant = DoubleQuant::int8;
    schemes.back().double_quant_block = 8;
    for (const QuantScheme& s : schemes) {
        const QuantPlan plan = uniform_plan(*n.model, s, EmbeddingPolicy::quantize);
        save_quantized_model(tmp.path / "q", *n.model, plan, {"nano", {}});
        auto expect = clone_model(*n.model);
        apply_ptq(*expect, plan);
        auto be = make_cpu_backend({1});
        ASSERT_TRUE(is_quantized_folder(tmp.path / "q"));
        const ModelForInference got = load_model_for_inference(tmp.path / "q", *be);
        EXPECT_EQ(all_weights(*got.model), all_weights(*expect)) << describe(s);
        double bits = 0;
        for (const PlanEntry& e : plan)
            bits += std::ceil(
                quantize(read_target(*n.model, e.target), e.target.rows, e.target.cols, s).storage_bits() /
                8);
        EXPECT_EQ(be->ledger().current(MemCategory::quant_storage), std::int64_t(bits)) << describe(s);
        EXPECT_EQ(got.meta.history.back().kind, "quantize");
    }
}

TEST(QuantIo, PlainFoldersLoadAsBefore) {
    auto& n = trained_nano();
    TempDir tmp;
    save_model(tmp.path / "m", *n.model, {"nano", {}});
    auto be = make_cpu_backend({1});
    EXPECT_FALSE(is_quantized_folder(tmp.path / "m"));
    const ModelForInference got = load_model_for_inference(tmp.path / "m", *be);
    EXPECT_EQ(all_weights(*got.model), all_weights(*n.model));
    EXPECT_EQ(got.quantization, "");
}

TEST(QuantIo, DamagedFilesAreClearErrors) {
    auto& n = trained_nano();
    TempDir tmp;
    const QuantPlan plan =
        uniform_plan(*n.model, make_scheme("int4", "per_group", 16), EmbeddingPolicy::keep_fp32);
    save_quantized_model(tmp.path / "q", *n.model, plan, {"nano", {}});
    const fs::path file = tmp.path / "q" / "model.safetensors";
    SafeTensorsFile st = read_safetensors(file);
    for (SafeTensor& t : st.tensors)
        if (t.name.ends_with(".qweight")) t.bytes.pop_back(), t.shape[0] -= 1;
    write_safetensors(file, st);
    auto be = make_cpu_backend({1});
    try {
        load_model_for_inference(tmp.path / "q", *be);
        FAIL() << "a truncated qweight loaded";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(".qweight"), std::string::npos) << e.what();
    }
    // A bad plan writes nothing.
    QuantScheme bad = make_scheme("int4", "per_group", 0);
    EXPECT_THROW(save_quantized_model(tmp.path / "bad", *n.model, {{plan[0].target, bad}}, {}), Error);
    EXPECT_FALSE(fs::exists(tmp.path / "bad"));
}

}  // namespace
}  // namespace tl
