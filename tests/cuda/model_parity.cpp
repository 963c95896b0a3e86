// Whole-model checks of the CUDA backend on the nano preset, against the CPU backend running the same model:
// the same weights on both (GPT-2 init plus noise, copied), one forward + backward on a task batch with
// zero-weight tokens (logits, losses, every parameter gradient), determinism of that step on the GPU, a few
// tl::train steps on both (loss curves), and the KV-cache decoder on the GPU against the GPU's full forward.
// Then LoRA and QLoRA on nano (the adapter's extra GEMMs; QLoRA's NF4 base decoded per layer): logits and every
// adapter gradient against the CPU. Then 20 training steps with tf32, bf16 and fp16 GEMMs against the CPU's FP32
// loss curve.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "data/batch.hpp"
#include "data/tasks.hpp"
#include "model/config.hpp"
#include "model/generate.hpp"
#include "model/gpt.hpp"
#include "parity_harness.hpp"
#include "train/recipes.hpp"
#include "train/trainer.hpp"

namespace tl::parity {
namespace {

Vf download(Backend& be, CVecView v) {
    Vf out(static_cast<std::size_t>(v.n));
    be.copy_to_host(out.data(), v);
    return out;
}

Vf slice(const Vf& v, std::int64_t offset, std::int64_t n) {
    return Vf(v.begin() + offset, v.begin() + offset + n);
}

double max_abs(const Vf& v) {
    double m = 0;
    for (float x : v) m = std::max(m, double(std::fabs(x)));
    return m;
}

// GPT-2 initialisation plus N(0, 0.05) on every parameter, so biases and LayerNorm parameters are not 0 and 1
// and the logits are far from uniform.
Vf random_weights(const GptConfig& cfg, std::uint64_t seed) {
    auto cpu = make_cpu_backend({1});
    Gpt m(*cpu, cfg);
    m.init_gpt2(seed);
    Vf w = download(*cpu, m.weights().vec());
    Rng rng(seed, /*stream=*/1000);
    for (auto& x : w) x += 0.05f * rng.normal();
    return w;
}

void set_weights(Gpt& m, const Vf& w) { m.backend().copy_from_host(m.weights().vec(), w.data()); }

// Task batches of the reverse task: prompt tokens and padding carry weight 0 (their rows get no gradient).
std::vector<Batch> task_batches(int count, int rows, int T, std::uint64_t seed) {
    ExampleBatcher batcher(task_examples(find_task("reverse"), Split::train, 400, seed), rows, T, 0.0f,
                           ExampleBatcher::Order::shuffled, seed);
    std::vector<Batch> out;
    for (int i = 0; i < count; ++i) out.push_back(batcher.next());
    return out;
}

struct StepOutputs {
    Vf logits, losses, grads;
};

StepOutputs forward_backward(Gpt& m, const Batch& b) {
    m.enable_grads();
    m.zero_grads();
    m.forward(b.tokens.data(), b.targets.data(), b.B, b.T);
    m.backward(b.weights.data(), total_weight(b));
    Backend& be = m.backend();
    const CMatView logits = m.logits();
    return {download(be, CVecView(logits.data, logits.rows * logits.cols)), download(be, m.losses()),
            download(be, m.grads().vec())};
}

void forward_backward_case(Suite& s, Backend& gpu, const GptConfig& cfg, const std::string& label = "") {
    const Vf w = random_weights(cfg, 41);
    const Batch batch = task_batches(1, 3, 31, 42)[0];  // B 3, T 31: odd, below the context of 32
    auto cpu = make_cpu_backend({});
    Gpt cm(*cpu, cfg);
    set_weights(cm, w);
    const StepOutputs want = forward_backward(cm, batch);

    std::vector<StepOutputs> runs;
    s.run("model nano: forward + backward on the GPU" + label, [&] {
        Gpt gm(gpu, cfg);
        set_weights(gm, w);
        runs.push_back(forward_backward(gm, batch));
        runs.push_back(forward_backward(gm, batch));  // the same step again: must give the same bits
    });
    if (runs.size() != 2) return;
    const StepOutputs& got = runs[0];
    // Logits of order 1 from float GEMMs in different orders through 2 layers: ~1e-6 relative; 1e-4 with a
    // floor scaled to the tensor leaves room for the reordering and still fails any indexing error by
    // decades.
    s.check(
        "model nano forward: logits, losses vs CPU" + label, {got.logits, got.losses},
        {runs[1].logits, runs[1].losses},
        {{"logits", want.logits, 1e-4, 1e-5 * max_abs(want.logits)}, {"losses", want.losses, 1e-5, 1e-5}});
    s.expect_true("model nano backward: GPU deterministic" + label, bitwise_equal(got.grads, runs[1].grads),
                  "two forward+backward runs give bitwise-equal gradients");
    // Each parameter's gradient: a sum over 93 rows of terms already carrying ~1e-6 relative error.
    // Element-wise relative error means nothing where a gradient cancels to near zero, so the floor is 1e-5
    // of the tensor's largest magnitude, with rtol 1e-4. (The reference kernels against the CPU backend,
    // `cuda_parity --ref`, use at most 1/20 of this.)
    for (const ParamInfo& p : cm.params().entries()) {
        const Vf g = slice(got.grads, p.offset, p.numel()), ref = slice(want.grads, p.offset, p.numel());
        s.check("model nano grad " + p.name + label, {g}, {}, {{"grad", ref, 1e-4, 1e-5 * max_abs(ref)}});
    }
}

// A PEFT method on both devices: the same base, the same method and seed, then every trainable (adapter) tensor
// set to the same random values (LoRA's B starts at 0, which would leave A's gradient and the branch's output 0).
// Adapters keep their weights and gradients in buffers of their own, so they are read through param()/grad().
struct PeftOutputs {
    Vf logits, losses;
    std::vector<std::pair<std::string, Vf>> adapter_grads;
};

PeftOutputs peft_step(Backend& be, const GptConfig& cfg, const Vf& base, Method method, const Batch& batch) {
    Gpt m(be, cfg);
    set_weights(m, base);
    PeftOptions options;
    options.rank = 4;
    apply_method(m, method, options, 7);
    Rng rng(47);
    for (const ParamInfo& p : m.params().entries()) {
        if (!p.is_trainable) continue;
        const Vf v = randn(rng, p.numel(), 0.05f);
        be.copy_from_host(m.param(p), v.data());
    }
    const StepOutputs out = forward_backward(m, batch);
    PeftOutputs r{out.logits, out.losses, {}};
    for (const ParamInfo& p : m.params().entries())
        if (p.is_trainable) r.adapter_grads.emplace_back(p.name, download(be, m.grad(p)));
    return r;
}

void peft_case(Suite& s, Backend& gpu, const GptConfig& cfg, Method method, const std::string& name) {
    const Vf base = random_weights(cfg, 46);
    const Batch batch = task_batches(1, 3, 31, 45)[0];
    auto cpu = make_cpu_backend({});
    const PeftOutputs want = peft_step(*cpu, cfg, base, method, batch);
    std::vector<PeftOutputs> runs;
    s.run("model nano " + name + ": forward + backward on the GPU",
          [&] { runs.push_back(peft_step(gpu, cfg, base, method, batch)); });
    if (runs.empty()) return;
    const PeftOutputs& got = runs[0];
    // The full model's tolerances (forward_backward_case): QLoRA's NF4 base is decoded by the same host loop for
    // both devices, so only the GEMMs' summation order differs.
    s.check("model nano " + name + ": logits, losses vs CPU", {got.logits, got.losses}, {},
            {{"logits", want.logits, 1e-4, 1e-5 * max_abs(want.logits)}, {"losses", want.losses, 1e-5, 1e-5}});
    s.expect_true("model nano " + name + ": the same adapters", got.adapter_grads.size() == want.adapter_grads.size() &&
                      !want.adapter_grads.empty(),
                  std::to_string(want.adapter_grads.size()) + " trainable tensors");
    for (std::size_t i = 0; i < std::min(got.adapter_grads.size(), want.adapter_grads.size()); ++i) {
        const Vf& ref = want.adapter_grads[i].second;
        s.check("model nano " + name + " grad " + want.adapter_grads[i].first, {got.adapter_grads[i].second}, {},
                {{"grad", ref, 1e-4, 1e-5 * max_abs(ref)}});
    }
}

void training_case(Suite& s, Backend& gpu, const GptConfig& cfg) {
    s.run("model nano: 8 training steps, CPU vs GPU loss curves", [&] {
        const Vf w = random_weights(cfg, 43);
        const std::vector<Batch> batches = task_batches(8, 4, int(cfg.n_positions), 44);
        TrainConfig tc;
        tc.steps = 8;
        tc.optim.lr = 1e-3f;
        tc.clip_norm = 1.0f;
        auto run = [&](Backend& be) {
            Gpt m(be, cfg);
            set_weights(m, w);
            std::size_t next = 0;
            const TrainSummary sum = train(m, tc, [&] { return batches[next++ % batches.size()]; });
            return Vf(sum.losses.begin(), sum.losses.end());
        };
        auto cpu = make_cpu_backend({});
        const Vf want = run(*cpu), got = run(gpu), again = run(gpu);
        // Per-step losses to 1e-4 relative: each step's small float differences move the weights by ~lr *
        // 1e-6.
        s.check("model nano train 8 steps: losses vs CPU (first " + Suite::fmt(want.front()) + ", last " +
                    Suite::fmt(want.back()) + ")",
                {got}, {again}, {{"losses", want, 1e-4, 0.0}});
    });
}

void decoder_case(Suite& s, Backend& gpu, const GptConfig& cfg) {
    s.run("model nano: KvDecoder on the GPU vs the GPU full forward", [&] {
        Gpt gm(gpu, cfg);
        set_weights(gm, random_weights(cfg, 45));
        const std::int64_t T = cfg.n_positions, V = cfg.vocab_size;  // the whole context
        Rng rng(46);
        const auto tokens = random_ids(rng, T, V);
        gm.forward(tokens.data(), nullptr, 1, T);
        const CMatView logits = gm.logits();
        const Vf full = download(gpu, CVecView(logits.data, T * V));
        KvDecoder dec(gm);
        Vf stepped;
        for (std::int64_t t = 0; t < T; ++t) {
            const std::vector<float>& l = dec.step(tokens[std::size_t(t)]);
            stepped.insert(stepped.end(), l.begin(), l.end());
        }
        // One row at a time (M = 1 GEMMs, the decode kernel) against batched GEMMs: float sums in other
        // orders.
        s.check("model nano KvDecoder: " + std::to_string(T) + " steps vs full forward", {stepped}, {},
                {{"logits", full, 1e-4, 1e-5 * max_abs(full)}});
    });
}

// ---- mixed precision: tl::train in tf32, bf16 and fp16 against the CPU's FP32 loss curve -----------------
// The same 20 steps (nano, 8 rows of the reverse task, lr 1e-3, clip 1) as FP32 on the CPU backend; fp16 with
// the CLI's dynamic loss scaling. Each step's loss carries the GEMM operands' rounding through 2 layers
// (relative error a few u of the precision) plus what the earlier updates drifted; a step skipped for inf
// gradients would put the curve a step behind, so fp16 must skip none here.
// clang-format off
constexpr struct {
    GemmPrecision p;
    double rtol;  // per-step loss, relative (the emulated GEMMs, emulated_backend.hpp, give the "seen")
} kCurveTolerance[] = {
    {GemmPrecision::tf32, 2e-3},  // u <= 2^-10; 1.3e-4 seen with truncated TF32 operands (the worst case)
    {GemmPrecision::bf16, 2e-3},  // u = 2^-8;   1e-4 seen: the rounding errors of the operands average out
    {GemmPrecision::fp16, 1e-3},  // u = 2^-11;  7e-6 seen
};
// clang-format on

void precision_training_cases(Suite& s, const MakeBackend& make, const GptConfig& cfg) {
    constexpr int kSteps = 20;
    const Vf w = random_weights(cfg, 47);
    const std::vector<Batch> batches = task_batches(kSteps, 8, int(cfg.n_positions), 48);
    auto run = [&](Backend& be, const LossScaleConfig& ls) {
        TrainConfig tc;
        tc.steps = kSteps;
        tc.optim.lr = 1e-3f;
        tc.clip_norm = 1.0f;
        tc.loss_scale = ls;
        Gpt m(be, cfg);
        set_weights(m, w);
        std::size_t next = 0;
        return train(m, tc, [&] { return batches[next++ % batches.size()]; });
    };
    auto cpu = make_cpu_backend({});
    const TrainSummary want = run(*cpu, {});
    const Vf want_losses(want.losses.begin(), want.losses.end());
    for (const auto& t : kCurveTolerance) {
        const std::string name = std::string(gemm_precision_name(t.p)) +
                                 " model nano: " + std::to_string(kSteps) +
                                 " training steps vs CPU fp32 losses";
        s.run(name, [&] {
            auto gpu = make(t.p);
            const bool is_fp16 = t.p == GemmPrecision::fp16;
            const TrainSummary got = run(*gpu, parse_loss_scaling(is_fp16 ? "dynamic" : "none"));
            s.check(name + " (first " + Suite::fmt(want_losses.front()) + ", last " +
                        Suite::fmt(want_losses.back()) + ")",
                    {Vf(got.losses.begin(), got.losses.end())}, {}, {{"losses", want_losses, t.rtol, 0.0}});
            if (is_fp16)
                s.expect_true(name + ": no skipped steps", got.skipped_steps == 0,
                              std::to_string(got.skipped_steps) + " skipped, final loss scale " +
                                  Suite::fmt(got.loss_scale));
        });
    }
}

}  // namespace

void run_precision_model_cases(Suite& s, const MakeBackend& make) {
    precision_training_cases(s, make, find_preset("nano").config);
}

void run_fused_attention_model_cases(Suite& s, Backend& fused) {
    forward_backward_case(s, fused, find_preset("nano").config, " [fused attention]");
}

void run_model_cases(Suite& s, Backend& gpu) {
    const GptConfig cfg = find_preset("nano").config;
    forward_backward_case(s, gpu, cfg);
    training_case(s, gpu, cfg);
    decoder_case(s, gpu, cfg);
    peft_case(s, gpu, cfg, Method::lora, "LoRA r4");
    peft_case(s, gpu, cfg, Method::qlora, "QLoRA r4");
}

}  // namespace tl::parity
