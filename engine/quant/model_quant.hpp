// Weight quantization of a whole model: which tensors are quantized (the matrices, optionally the
// embeddings), each with its own QuantScheme (a plan), applied as post-training quantization (fake-quantize
// in place: the model computes with the dequantized values) or stored packed (quant_io.hpp). The per-tensor
// work is engine/formats' quantizer; QAT (qat.hpp) and mixed-bit plans (mixed_bit.hpp) build on this file.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "formats/quantizer.hpp"
#include "model/gpt.hpp"

namespace tl {

enum class EmbeddingPolicy { quantize, keep_fp32 };  // keep_fp32: wte / wpe stay full precision

// A tensor quantization acts on, in the quantizer's orientation: rows are output channels, so per_channel
// means one scale per output feature and groups run along the input dimension (as GPTQ, llama.cpp,
// bitsandbytes). GPT-2 stores Conv1D weights as (in, out), so those are transposed; embeddings (V, C) are
// rows of tokens.
struct QuantTarget {
    std::string name;  // the parameter's Hugging Face name
    std::int64_t rows = 0, cols = 0;
    bool is_transposed = false;  // the stored tensor is (cols, rows)
    bool is_embedding = false;
};

// The matrices (role weight) and, unless kept, the two embeddings, in table order. Biases and LayerNorm
// parameters always stay fp32 (they are < 2% of the weights and every recipe keeps them).
std::vector<QuantTarget> quant_targets(const Gpt& model, EmbeddingPolicy embeddings);

struct PlanEntry {
    QuantTarget target;
    QuantScheme scheme;
};
using QuantPlan = std::vector<PlanEntry>;

// Every target with the same scheme. tl::Error naming the tensor when the scheme does not fit one of them.
QuantPlan uniform_plan(const Gpt& model, const QuantScheme& scheme, EmbeddingPolicy embeddings);
void validate_plan(const QuantPlan& plan);

// A target's values in the quantizer's orientation, and back.
std::vector<float> read_target(const Gpt& model, const QuantTarget& t);
void write_target(Gpt& model, const QuantTarget& t, const std::vector<float>& values);
std::vector<float> read_target_grad(const Gpt& model, const QuantTarget& t);  // needs enable_grads()

// Bits charged for the plan: quantized weights at bits_per_weight (scales, zero points, palettes included),
// everything else at 32.
struct QuantFootprint {
    std::int64_t quantized_params = 0, other_params = 0;
    double quantized_bits = 0;  // storage of the quantized tensors
    double bits_per_quantized_weight() const;
    double bits_per_weight() const;  // over all parameters
    double bytes() const;            // the whole model
};
QuantFootprint footprint(const Gpt& model, const QuantPlan& plan);

// Post-training quantization in place: every planned tensor becomes dequantize(quantize(W)).
void apply_ptq(Gpt& model, const QuantPlan& plan);

// A fresh model on the same backend with the same weights (Gpt is not copyable: it owns device buffers).
std::unique_ptr<Gpt> clone_model(const Gpt& model);
// The same on another backend (e.g. a RoundingBackend that quantizes activations), through host memory.
std::unique_ptr<Gpt> clone_model_onto(const Gpt& model, Backend& backend);

// "int4 per_group(32)" and the like, and parsing a scheme from the names the CLI and experiments use.
QuantScheme make_scheme(const std::string& format, const std::string& granularity, std::int64_t group_size);
std::string short_name(const QuantScheme& s);

}  // namespace tl
