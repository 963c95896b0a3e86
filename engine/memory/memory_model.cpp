// The detailed memory model, term by term. Each term is a closed form in the shape, the method, the formats and
// the batch; the `engine` buffer plan mirrors engine/model/gpt.cpp's plan_buffers() tensor by tensor, so the CPU
// engine's MemoryLedger can check it (measure.cpp). Tables of formats, precisions and optimizers come first.
#include "memory/memory_model.hpp"

#include <cstdio>

#include "core/error.hpp"
#include "peft/qlora.hpp"

namespace tl::memory {

namespace {

constexpr WeightFormatInfo kFormats[] = {
    //  id                    name      payload block scale  scale_block  scale_scale
    {WeightFormat::fp32, "fp32", 32, 0, 0, 0, 0},
    {WeightFormat::bf16, "bf16", 16, 0, 0, 0, 0},
    {WeightFormat::fp16, "fp16", 16, 0, 0, 0, 0},
    {WeightFormat::fp8, "fp8", 8, 0, 0, 0, 0},           // one per-tensor scale: negligible
    {WeightFormat::int8, "int8", 8, 64, 16, 0, 0},        // absmax per block of 64, fp16 scale
    {WeightFormat::int4, "int4", 4, 64, 16, 0, 0},        // absmax per block of 64, fp16 scale
    {WeightFormat::nf4, "nf4", 4, 64, 32, 0, 0},          // QLoRA without double quantization
    {WeightFormat::nf4_dq, "nf4-dq", 4, 64, 8, 256, 32},  // QLoRA's default: scales quantized to 8 bits
};

constexpr PrecisionInfo kPrecisions[] = {
    //  id                    name          param grad master activation (bytes)
    {Precision::fp32, "fp32", 4, 4, 0, 4},
    {Precision::mixed_bf16, "mixed-bf16", 2, 2, 4, 2},
    {Precision::mixed_fp16, "mixed-fp16", 2, 2, 4, 2},
    {Precision::pure_bf16, "bf16", 2, 2, 0, 2},
};

constexpr OptimizerInfo kOptimizers[] = {
    //  id                      name          states bytes
    {Optimizer::adamw, "adamw", 2, 4},
    {Optimizer::adamw_8bit, "adamw-8bit", 2, 1.0 + 4.0 / 2048},  // bitsandbytes: fp32 absmax per 2048 values
    {Optimizer::sgd_momentum, "sgd-momentum", 1, 4},
    {Optimizer::sgd, "sgd", 0, 4},
};

constexpr std::string_view kMethodNames[] = {"full",          "partial",       "lora",   "qlora", "adapters",
                                             "prompt-tuning", "prefix-tuning", "bitfit", "ia3"};

template <class Row, std::size_t K>
const Row& parse_row(const Row (&rows)[K], std::string_view name, const char* what) {
    std::string known;
    for (const Row& r : rows) {
        if (r.name == name) return r;
        known += (known.empty() ? "" : ", ") + std::string(r.name);
    }
    throw Error("[memory] unknown " + std::string(what) + " '" + std::string(name) + "'; known: " + known);
}

template <class Row, std::size_t K, class Id>
const Row& row_of(const Row (&rows)[K], Id id) {
    for (const Row& r : rows)
        if (r.id == id) return r;
    TL_ASSERT(false, "[memory] a table lacks a row for an enumerator");
    return rows[0];
}

std::string num(double x) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.4g", x);
    return buf;
}

// Widths of one row (token) of each kind of buffer.
double row_bytes(const WidthCounts& w, const ArchShape& s, double elem_bytes) {
    return elem_bytes * (w.c_wide * double(s.d_model) + w.qkv_wide * double(s.qkv_dim()) +
                         w.ffn_wide * double(s.d_ffn)) +
           4.0 * (w.row_words + w.vocab_wide * double(s.vocab));
}

// All of a plan's buffers of one kind for B rows of T tokens (scores are (B, H, T, T)).
double set_bytes(const WidthCounts& w, const ArchShape& s, double elem_bytes, std::int64_t B, std::int64_t T) {
    const double N = double(B) * double(T);
    return N * row_bytes(w, s, elem_bytes) + elem_bytes * w.scores * double(B * s.n_heads) * double(T) * double(T);
}

// Extra tensors a method keeps per block and per row (LoRA's x A^T, adapter bottlenecks, IA3's pre-scale values).
double method_extra_row_width(const ArchShape& s, const MethodSpec& m) {
    double w = 0;
    switch (m.kind) {
        case MethodKind::lora:
        case MethodKind::qlora:
            for (const LinearInfo& l : layer_linears(s))
                if (m.lora_targets == LoraTargets::all_linear || l.group == LinearGroup::attention)
                    w += double(m.lora_rank);
            break;
        case MethodKind::adapters:  // 2 adapters per block, each keeps its input (C) and bottleneck pre/post act
            w = 2.0 * (double(s.d_model) + 2.0 * double(m.adapter_size));
            break;
        case MethodKind::ia3: w = 2.0 * double(s.kv_dim()) + double(s.d_ffn); break;
        default: break;
    }
    return w;
}

// Scratch a method adds once: LoRA's dh (N, r); an adapter's input copy, output gradient and two bottlenecks.
double method_extra_scratch_width(const ArchShape& s, const MethodSpec& m) {
    switch (m.kind) {
        case MethodKind::lora:
        case MethodKind::qlora: return double(m.lora_rank);
        case MethodKind::adapters: return 2.0 * double(s.d_model) + 2.0 * double(m.adapter_size);
        default: return 0;
    }
}

std::int64_t seq_with_prompt(const TrainSetup& t) {
    return t.seq + (t.method.kind == MethodKind::prompt_tuning ? t.method.virtual_tokens : 0);
}

std::int64_t layers_kept(const ArchShape& s, const MethodSpec& m, const ActivationPlan& plan) {
    const bool skips = plan.frozen_layers == FrozenLayers::skipped && m.kind == MethodKind::partial;
    return skips ? m.partial_layers : s.n_layers;
}

}  // namespace

// ---- tables ----
const WeightFormatInfo& format_info(WeightFormat f) { return row_of(kFormats, f); }
WeightFormat parse_weight_format(std::string_view name) { return parse_row(kFormats, name, "weight format").id; }
double bits_per_weight(WeightFormat f) {
    const WeightFormatInfo& r = format_info(f);
    if (r.block == 0) return r.payload_bits;
    double bits = r.payload_bits + r.scale_bits / double(r.block);
    if (r.scale_block > 0) bits += r.scale_scale_bits / double(r.block * r.scale_block);
    return bits;
}
bool is_quantized(WeightFormat f) { return format_info(f).block > 0; }

const PrecisionInfo& precision_info(Precision p) { return row_of(kPrecisions, p); }
Precision parse_precision(std::string_view name) { return parse_row(kPrecisions, name, "precision").id; }
const OptimizerInfo& optimizer_info(Optimizer o) { return row_of(kOptimizers, o); }
Optimizer parse_optimizer(std::string_view name) { return parse_row(kOptimizers, name, "optimizer").id; }

std::string_view method_name(MethodKind m) { return kMethodNames[static_cast<int>(m)]; }
MethodKind parse_method_kind(std::string_view name) {
    std::string known;
    for (std::size_t i = 0; i < std::size(kMethodNames); ++i) {
        if (kMethodNames[i] == name) return MethodKind(i);
        known += (known.empty() ? "" : ", ") + std::string(kMethodNames[i]);
    }
    throw Error("[memory] unknown method '" + std::string(name) + "'; known: " + known);
}

bool freezes_base(MethodKind m) { return m != MethodKind::full; }
bool attaches_modules(MethodKind m) {
    return m == MethodKind::lora || m == MethodKind::qlora || m == MethodKind::adapters || m == MethodKind::ia3;
}

// ---- trainable parameters ----
namespace {

// Parameters of the base model that train (the rest of trainable_params() is new modules).
std::int64_t trainable_base(const ArchShape& s, const MethodSpec& m, const ParamCounts& p) {
    switch (m.kind) {
        case MethodKind::full: return p.total();
        case MethodKind::partial: return m.partial_layers * p.per_layer() + p.final_norm;
        case MethodKind::bitfit: {
            const std::int64_t norm_bias = s.norm == NormKind::layernorm ? s.d_model : 0;
            return s.n_layers * (p.layer_biases + 2 * norm_bias) + norm_bias;
        }
        default: return 0;
    }
}

std::int64_t trainable_matrices(const MethodSpec& m, const ParamCounts& p) {
    if (m.kind == MethodKind::full) return p.n_layers * p.layer_linear_weights;
    if (m.kind == MethodKind::partial) return m.partial_layers * p.layer_linear_weights;
    return 0;
}

std::int64_t added_params(const ArchShape& s, const MethodSpec& m) {
    const std::int64_t C = s.d_model, L = s.n_layers;
    switch (m.kind) {
        case MethodKind::lora:
        case MethodKind::qlora: {
            std::int64_t per_layer = 0;
            for (const LinearInfo& l : layer_linears(s))
                if (m.lora_targets == LoraTargets::all_linear || l.group == LinearGroup::attention)
                    per_layer += m.lora_rank * (l.in + l.out);  // A (r, in) + B (out, r)
            return L * per_layer;
        }
        case MethodKind::adapters: return L * 2 * (C * m.adapter_size + m.adapter_size + m.adapter_size * C + C);
        case MethodKind::prompt_tuning: return m.virtual_tokens * C;
        case MethodKind::prefix_tuning: return L * 2 * m.virtual_tokens * s.kv_dim();
        case MethodKind::ia3: return L * (2 * s.kv_dim() + s.d_ffn);
        default: return 0;
    }
}

void check_method(const ArchShape& s, const MethodSpec& m) {
    auto fail = [&](const std::string& what) { throw Error("[memory] " + std::string(method_name(m.kind)) + ": " + what); };
    if (m.kind == MethodKind::partial && (m.partial_layers < 1 || m.partial_layers > s.n_layers))
        fail("--layers must be in 1.." + std::to_string(s.n_layers) + ", got " + std::to_string(m.partial_layers));
    if ((m.kind == MethodKind::lora || m.kind == MethodKind::qlora) && (m.lora_rank < 1 || m.lora_rank > s.d_model))
        fail("rank must be in 1.." + std::to_string(s.d_model) + ", got " + std::to_string(m.lora_rank));
    if (m.kind == MethodKind::adapters && m.adapter_size < 1) fail("adapter size must be at least 1");
    if ((m.kind == MethodKind::prompt_tuning || m.kind == MethodKind::prefix_tuning) && m.virtual_tokens < 1)
        fail("virtual tokens must be at least 1");
}

}  // namespace

std::int64_t trainable_params(const ArchShape& s, const MethodSpec& m) {
    check_method(s, m);
    const ParamCounts p = count_params(s);
    const std::int64_t n = trainable_base(s, m, p) + added_params(s, m);
    if (n == 0) throw Error("[memory] " + std::string(method_name(m.kind)) + " trains nothing on " + s.name +
                            " (it has no bias terms); pick another method");
    return n;
}

// ---- setups ----
TrainSetup engine_setup(const MethodSpec& m, std::int64_t batch, std::int64_t seq) {
    TrainSetup t;
    t.method = m;
    t.precision = Precision::fp32;
    t.frozen_format = m.kind == MethodKind::qlora ? WeightFormat::nf4_dq : WeightFormat::fp32;
    t.optimizer = Optimizer::adamw;
    t.plan = PlanKind::engine;
    t.frozen_grads = FrozenGrads::allocated;
    t.batch = batch;
    t.seq = seq;
    return t;
}

TrainSetup typical_setup(const MethodSpec& m, std::int64_t batch, std::int64_t seq) {
    TrainSetup t;
    t.method = m;
    t.frozen_format = m.kind == MethodKind::qlora ? WeightFormat::nf4_dq : WeightFormat::bf16;
    t.batch = batch;
    t.seq = seq;
    return t;
}

// ---- activations ----
ActivationPlan activation_plan(PlanKind k, const ArchShape& s) {
    if (k == PlanKind::engine) {
        // gpt.cpp plan_buffers(): per block ln1, atty, attproj, resid2, ln2, fcproj, resid3 (C); qkv (3C);
        // fch, fch_gelu (4C); att (B,H,T,T); ln1/ln2 mean and rstd. Once: encoded, lnf (C); logits (V);
        // tokens, targets, ce_weights, lnf mean/rstd, losses. Scratch: dresid, dln, dx_ln, dbranch (C), dqkv,
        // datt, dfch, dfch_gelu, dlogits.
        // Every block is kept even when frozen; a hooked model adds dsite (N, C) to the scratch.
        return {"engine", {7, 1, 2, 1, 4, 0}, {2, 0, 0, 0, 6, 1}, {4, 1, 2, 1, 0, 1}, FrozenLayers::kept, 1};
    }
    // A PyTorch decoder with fused attention: block input, norm outputs, attention output, mid residual (C);
    // q, k, v after RoPE (qkv); MLP inner tensors (SwiGLU: gate, up, silu(gate), product; GELU: pre, post);
    // per row: two norm statistics + one log-sum-exp per head. Logits and their gradient in fp32.
    const double ffn = s.mlp == MlpKind::swiglu ? 4 : 2;
    return {"hf_flash",           {5, 1, ffn, 0, 2.0 + double(s.n_heads), 0}, {2, 0, 0, 0, 3, 1},
            {3, 1, ffn - 1, 0, 0, 1}, FrozenLayers::skipped, 0};
}

double activation_bytes(const ArchShape& s, const TrainSetup& t) {
    const ActivationPlan plan = activation_plan(t.plan, s);
    const double ab = precision_info(t.precision).activation_bytes;
    const std::int64_t T = seq_with_prompt(t), B = t.batch;
    const double N = double(B) * double(T);
    const double one_block = set_bytes(plan.per_layer, s, ab, B, T) + N * ab * method_extra_row_width(s, t.method);
    const double blocks = t.recompute == Recompute::full
                              ? double(layers_kept(s, t.method, plan)) * N * ab * double(s.d_model) + one_block
                              : double(layers_kept(s, t.method, plan)) * one_block;
    return blocks + set_bytes(plan.global, s, ab, B, T);
}

double scratch_bytes(const ArchShape& s, const TrainSetup& t) {
    const ActivationPlan plan = activation_plan(t.plan, s);
    const double ab = precision_info(t.precision).activation_bytes;
    const double N = double(t.batch) * double(seq_with_prompt(t));
    const double hooked = attaches_modules(t.method.kind) ? plan.hooked_scratch_c_wide * double(s.d_model) : 0;
    return set_bytes(plan.scratch, s, ab, t.batch, seq_with_prompt(t)) +
           N * ab * (hooked + method_extra_scratch_width(s, t.method));
}

// ---- the prediction ----
double Prediction::by_category(MemCategory c) const {
    double b = 0;
    for (const Term& t : terms)
        if (t.category == c) b += t.bytes;
    return b;
}

double Prediction::total() const {
    double b = 0;
    for (const Term& t : terms) b += t.bytes;
    return b;
}

namespace {

// The engine's QLoRA (peft/qlora.hpp) stores every block matrix in NF4 with double-quantized scales and decodes one
// layer at a time into an fp32 workspace; the flat gradient buffer then covers the unstored parameters only.
bool is_engine_nf4(const TrainSetup& t) {
    return t.plan == PlanKind::engine && t.method.kind == MethodKind::qlora && t.frozen_format == WeightFormat::nf4_dq;
}

double engine_nf4_bytes(const ArchShape& s) {
    double bytes = 0;
    for (const LinearInfo& l : layer_linears(s)) bytes += double(qlora_matrix_bytes(l.out, l.in, {}));
    return double(s.n_layers) * bytes;
}

void add_weight_terms(Prediction& out, const ArchShape& s, const TrainSetup& t, double shard) {
    const ParamCounts p = count_params(s);
    const PrecisionInfo& pr = precision_info(t.precision);
    const std::int64_t base_trainable = trainable_base(s, t.method, p);
    const std::int64_t frozen_mats = p.n_layers * p.layer_linear_weights - trainable_matrices(t.method, p);
    const std::int64_t frozen_other = p.total() - base_trainable - frozen_mats;
    const double sh = shard > 1 ? shard : 1;
    const std::string per_gpu = sh > 1 ? " / " + num(sh) + " GPUs (ZeRO-3)" : "";
    out.terms.push_back({"trainable weights", MemCategory::weights, double(out.trainable) * pr.param_bytes / sh,
                         num(double(out.trainable)) + " x " + num(pr.param_bytes) + " B" + per_gpu});
    if (frozen_mats > 0 && is_engine_nf4(t)) {
        out.terms.push_back({"frozen matrices (nf4-dq, engine layout)", MemCategory::quant_storage,
                             engine_nf4_bytes(s) / sh,
                             "per matrix: n / 2 codes + 1 B per 64 + 4 B per 256 scales + a 4 B mean" + per_gpu});
    } else if (frozen_mats > 0) {
        const double bits = bits_per_weight(t.frozen_format);
        const MemCategory c = is_quantized(t.frozen_format) ? MemCategory::quant_storage : MemCategory::weights;
        out.terms.push_back({"frozen matrices (" + std::string(format_info(t.frozen_format).name) + ")", c,
                             double(frozen_mats) * bits / 8.0 / sh,
                             num(double(frozen_mats)) + " x " + num(bits) + " bits / 8" + per_gpu});
    }
    if (frozen_other > 0)
        out.terms.push_back({"frozen embeddings, norms, biases", MemCategory::weights,
                             double(frozen_other) * pr.param_bytes / sh,
                             num(double(frozen_other)) + " x " + num(pr.param_bytes) + " B" + per_gpu});
}

}  // namespace

Prediction predict_training(const ArchShape& s, const TrainSetup& t) {
    if (t.batch < 1 || t.seq < 1) throw Error("[memory] batch and sequence length must be at least 1");
    if (t.gpus < 1) throw Error("[memory] the GPU count must be at least 1, got " + std::to_string(t.gpus));
    Prediction out;
    out.total_params = count_params(s).total();
    out.trainable = trainable_params(s, t.method);
    const PrecisionInfo& pr = precision_info(t.precision);
    const OptimizerInfo& opt = optimizer_info(t.optimizer);
    const double G = double(t.gpus);
    const int stage = static_cast<int>(t.zero);
    const double n = double(out.trainable);
    add_weight_terms(out, s, t, stage >= 3 ? G : 1);
    auto shard = [&](int from_stage) { return stage >= from_stage && G > 1 ? " / " + num(G) + " GPUs" : ""; };
    auto div = [&](int from_stage) { return stage >= from_stage ? G : 1.0; };
    out.terms.push_back({"gradients (trainable only)", MemCategory::grads, n * pr.grad_bytes / div(2),
                         num(n) + " x " + num(pr.grad_bytes) + " B" + shard(2)});
    const ParamCounts pc = count_params(s);
    const double stored = is_engine_nf4(t) ? double(pc.n_layers * pc.layer_linear_weights) : 0;  // no fp32, no grads
    const double frozen = double(pc.total() - trainable_base(s, t.method, pc)) - stored;
    if (t.frozen_grads == FrozenGrads::allocated && frozen > 0)
        out.terms.push_back({"gradient buffer of frozen weights", MemCategory::grads, frozen * pr.grad_bytes / div(2),
                             num(frozen) + " x " + num(pr.grad_bytes) + " B (the engine's flat buffer covers them)" +
                                 shard(2)});
    if (pr.master_bytes > 0)
        out.terms.push_back({"FP32 master weights", MemCategory::optimizer, n * pr.master_bytes / div(1),
                             num(n) + " x " + num(pr.master_bytes) + " B" + shard(1)});
    if (opt.states > 0)
        out.terms.push_back({"optimizer states (" + std::string(opt.name) + ")", MemCategory::optimizer,
                             opt.states * n * opt.state_bytes / div(1),
                             std::to_string(opt.states) + " x " + num(n) + " x " + num(opt.state_bytes) + " B" +
                                 shard(1)});
    const std::string bt = "B=" + std::to_string(t.batch) + ", T=" + std::to_string(seq_with_prompt(t));
    out.terms.push_back({"activations kept for backward", MemCategory::activations, activation_bytes(s, t),
                         std::string(activation_plan(t.plan, s).name) + " plan, " + bt +
                             (t.recompute == Recompute::full ? ", recomputation" : "")});
    out.terms.push_back({"gradient scratch", MemCategory::workspace, scratch_bytes(s, t),
                         "one block's activation gradients + dlogits, " + bt});
    if (is_engine_nf4(t))
        out.terms.push_back({"NF4 decode buffer (one layer, fp32)", MemCategory::workspace,
                             4.0 * double(pc.layer_linear_weights),
                             num(double(pc.layer_linear_weights)) + " x 4 B"});
    return out;
}

Prediction predict_inference(const ArchShape& s, const InferenceSetup& t) {
    if (t.batch < 1 || t.seq < 1) throw Error("[memory] batch and sequence length must be at least 1");
    Prediction out;
    const ParamCounts p = count_params(s);
    out.total_params = p.total();
    const std::int64_t mats = p.n_layers * p.layer_linear_weights;
    const double bits = bits_per_weight(t.format);
    const bool quant = is_quantized(t.format);
    const double other_bytes = quant ? 2.0 : bits / 8.0;  // unquantized tensors stay 16-bit next to int codes
    out.terms.push_back({"weight matrices (" + std::string(format_info(t.format).name) + ")",
                         quant ? MemCategory::quant_storage : MemCategory::weights, double(mats) * bits / 8.0,
                         num(double(mats)) + " x " + num(bits) + " bits / 8"});
    out.terms.push_back({"embeddings, norms, biases", MemCategory::weights, double(p.total() - mats) * other_bytes,
                         num(double(p.total() - mats)) + " x " + num(other_bytes) + " B"});
    const double kv = 2.0 * double(s.n_layers) * double(t.batch) * double(t.seq) * double(s.kv_dim()) * t.kv_bytes;
    out.terms.push_back({"KV cache", MemCategory::kv_cache, kv,
                         "2 x L " + std::to_string(s.n_layers) + " x B " + std::to_string(t.batch) + " x T " +
                             std::to_string(t.seq) + " x kv_dim " + std::to_string(s.kv_dim()) + " x " +
                             num(t.kv_bytes) + " B"});
    // Prefill holds one block's tensors at a time (nothing is kept for backward) and the last position's logits.
    const ActivationPlan plan = activation_plan(t.plan, s);
    out.terms.push_back({"activations (one block, prefill)", MemCategory::activations,
                         set_bytes(plan.per_layer, s, t.activation_bytes, t.batch, t.seq) +
                             4.0 * double(t.batch) * double(s.vocab),
                         "one block's buffers for B x T tokens + B x V fp32 logits"});
    return out;
}

}  // namespace tl::memory
