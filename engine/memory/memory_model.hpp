// The analytic memory model: the course's two rules of thumb and a detailed, term-by-term prediction of what
// fine-tuning (any method, any weight format) or inference allocates, for tunelab's presets and real model shapes,
// with ZeRO-sharded data parallelism. Pure arithmetic, no engine runs. Measured numbers: measure.hpp.
// docs/memory.md explains every term and where the course formula undercounts.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/memory_ledger.hpp"
#include "memory/shapes.hpp"

namespace tl::memory {

// ---- The course's rules of thumb (N parameters, M bytes per parameter) ----
inline constexpr double kCourseInferenceOverhead = 1.2;  // +20% for activations, KV cache, buffers
inline constexpr double kCourseTrainingFactor = 3.0;     // weights + gradients + optimizer, "3 copies"

struct CourseFormula {
    double params = 0, bytes_per_param = 0;
    double weights_bytes() const { return params * bytes_per_param; }
    double inference_bytes() const { return weights_bytes() * kCourseInferenceOverhead; }
    double training_bytes() const { return weights_bytes() * kCourseTrainingFactor; }
};

// ---- What is trained ----
enum class MethodKind { full, partial, lora, qlora, adapters, prompt_tuning, prefix_tuning, bitfit, ia3 };
enum class LoraTargets { attention, all_linear };

struct MethodSpec {
    MethodKind kind = MethodKind::full;
    std::int64_t lora_rank = 8;                        // lora, qlora
    LoraTargets lora_targets = LoraTargets::all_linear;
    std::int64_t partial_layers = 1;                   // partial: the last k blocks (+ final norm) train
    std::int64_t adapter_size = 16;                    // adapters: Houlsby bottleneck width, two per block
    std::int64_t virtual_tokens = 20;                  // prompt / prefix tuning
};

std::string_view method_name(MethodKind m);
MethodKind parse_method_kind(std::string_view name);  // tl::Error listing the methods
std::int64_t trainable_params(const ArchShape& s, const MethodSpec& m);
// True when the method freezes the base model's weights (they then need no gradient, master copy or state).
bool freezes_base(MethodKind m);
// True when the method attaches modules that hook into the blocks (LoRA, adapters, IA3).
bool attaches_modules(MethodKind m);

// ---- Number formats ----
// Storage of a frozen weight matrix: payload bits plus per-block scales (and, for double quantization, the
// scales of the scales). QLoRA (Dettmers et al. 2023): nf4, block 64, fp32 absmax = 4.5 bits; with double
// quantization the absmax are 8-bit in blocks of 256 with an fp32 scale each = 4 + 8/64 + 32/(64*256) bits.
enum class WeightFormat { fp32, bf16, fp16, fp8, int8, int4, nf4, nf4_dq };
struct WeightFormatInfo {
    WeightFormat id;
    std::string_view name;
    double payload_bits;
    std::int64_t block;            // values per scale; 0: no scale
    double scale_bits;             // per block
    std::int64_t scale_block;      // double quantization: scales per second-level scale; 0: none
    double scale_scale_bits;
};
const WeightFormatInfo& format_info(WeightFormat f);
WeightFormat parse_weight_format(std::string_view name);
double bits_per_weight(WeightFormat f);  // payload + amortised scales
bool is_quantized(WeightFormat f);       // stored as integer codes + scales (ledger category quant_storage)

// Mixed precision keeps 16-bit weights and gradients for the math and an FP32 master copy for the update.
enum class Precision { fp32, mixed_bf16, mixed_fp16, pure_bf16 };
struct PrecisionInfo {
    Precision id;
    std::string_view name;
    double param_bytes, grad_bytes, master_bytes, activation_bytes;
};
const PrecisionInfo& precision_info(Precision p);
Precision parse_precision(std::string_view name);

enum class Optimizer { adamw, adamw_8bit, sgd_momentum, sgd };
struct OptimizerInfo {
    Optimizer id;
    std::string_view name;
    int states;          // tensors of the parameter's size (Adam: m and v)
    double state_bytes;  // per element, block scales amortised
};
const OptimizerInfo& optimizer_info(Optimizer o);
Optimizer parse_optimizer(std::string_view name);

// ---- Activations ----
// Which tensors are kept for backward (and which gradient scratch buffers exist), counted by width:
// C-wide (N, C), qkv-wide (N, C + 2 kv_dim), ffn-wide (N, F), attention scores (B, H, T, T), per-row words (N).
// `engine` is exactly what engine/model/gpt.cpp plans; `hf_flash` is a typical PyTorch/HF decoder with
// fused (flash) attention, which keeps no score matrix. Per-row words and vocab-wide buffers are 4 bytes.
struct WidthCounts {
    double c_wide = 0, qkv_wide = 0, ffn_wide = 0, scores = 0, row_words = 0, vocab_wide = 0;
};
enum class FrozenLayers { kept, skipped };  // are blocks below the first trainable one kept for backward?
struct ActivationPlan {
    std::string_view name;
    WidthCounts per_layer;   // kept for backward, per transformer block
    WidthCounts global;      // kept once (embeddings output, final norm, logits, tokens ...)
    WidthCounts scratch;     // gradient scratch, allocated once and reused by every block
    FrozenLayers frozen_layers = FrozenLayers::skipped;
    double hooked_scratch_c_wide = 0;  // extra C-wide scratch once a module is attached (engine: dsite)
};
enum class PlanKind { engine, hf_flash };
ActivationPlan activation_plan(PlanKind k, const ArchShape& s);

enum class Recompute { none, full };  // full: keep each block's input only, recompute the block in backward

// Does the gradient buffer cover frozen base parameters too? The engine's flat buffer does (one allocation for
// every base parameter); PyTorch allocates .grad only for parameters with requires_grad.
enum class FrozenGrads { skipped, allocated };

// ---- Data parallelism ----
enum class ZeroStage { none = 0, optimizer = 1, gradients = 2, parameters = 3 };

struct TrainSetup {
    MethodSpec method;
    Precision precision = Precision::mixed_bf16;
    WeightFormat frozen_format = WeightFormat::bf16;  // frozen base weights (qlora: nf4_dq)
    Optimizer optimizer = Optimizer::adamw;
    PlanKind plan = PlanKind::hf_flash;
    Recompute recompute = Recompute::none;
    FrozenGrads frozen_grads = FrozenGrads::skipped;
    std::int64_t batch = 1, seq = 512;   // per GPU
    ZeroStage zero = ZeroStage::none;
    std::int64_t gpus = 1;
};
// What tunelab's CPU engine does: FP32 everywhere, AdamW, no recomputation, the engine's buffer plan.
TrainSetup engine_setup(const MethodSpec& m, std::int64_t batch, std::int64_t seq);
// A typical GPU recipe: bf16 mixed precision, AdamW; qlora: nf4 + double quantization, else frozen in bf16.
TrainSetup typical_setup(const MethodSpec& m, std::int64_t batch, std::int64_t seq);

struct InferenceSetup {
    WeightFormat format = WeightFormat::bf16;
    double kv_bytes = 2;                 // KV cache element size
    double activation_bytes = 2;
    PlanKind plan = PlanKind::hf_flash;
    std::int64_t batch = 1, seq = 2048;  // sequences x (prompt + generated) tokens
};

// ---- The prediction ----
struct Term {
    std::string name;        // "optimizer states (m, v)"
    MemCategory category;    // the MemoryLedger category it is counted under
    double bytes = 0;
    std::string formula;     // with the numbers: "2 x 6.7e9 x 4 B"
};

struct Prediction {
    std::vector<Term> terms;
    std::int64_t total_params = 0, trainable = 0;
    double by_category(MemCategory c) const;
    double total() const;
};

Prediction predict_training(const ArchShape& s, const TrainSetup& t);
Prediction predict_inference(const ArchShape& s, const InferenceSetup& t);

// Bytes kept for backward, and gradient scratch, for a batch of B x T tokens.
double activation_bytes(const ArchShape& s, const TrainSetup& t);
double scratch_bytes(const ArchShape& s, const TrainSetup& t);

}  // namespace tl::memory
