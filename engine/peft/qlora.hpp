// QLoRA's frozen base (Dettmers et al. 2023): every block matrix quantized to NF4 in groups of 64 along the input
// dimension, the group scales double-quantized (their mean subtracted, then 8 bits with one fp32 scale per 256),
// and nothing else kept of it. The model decodes one layer at a time while it runs (Gpt::move_to_store), so the
// fp32 matrices never exist whole again; a LoRA adapter then trains through the decoded weights. Embeddings,
// LayerNorms and biases stay fp32, as bitsandbytes leaves everything but the linear layers. The arithmetic stays
// fp32 (QLoRA computes in bf16). docs/quantization.md ("QLoRA") and docs/memory.md explain.
#pragma once
#include <cstdint>

#include "formats/quantizer.hpp"
#include "model/gpt.hpp"

namespace tl {

struct QloraBaseOptions {
    std::int64_t group_size = 64;                      // NF4 elements per scale (bitsandbytes' blocksize)
    DoubleQuant double_quant = DoubleQuant::fp8_e4m3;  // the scales' 8-bit format; none: fp32 scales
    std::int64_t double_quant_block = 256;             // scales per fp32 second-level scale
};

// The per-matrix scheme: nf4, per group, symmetric absmax, scales as the options say.
QuantScheme qlora_scheme(const QloraBaseOptions& o);

// Quantizes the block matrices (attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj) of a dense model and moves them
// into the model's store; the store's bytes are charged to the backend ledger's quant_storage. tl::Error when the
// base is already stored, or the model is a mixture of experts.
void qlora_quantize_base(Gpt& model, const QloraBaseOptions& o = {});

// The same NF4 rounding written back into the fp32 model in place (nothing is stored): what evaluating a QLoRA
// adapter needs before LoRA is merged in, since the KV-cache decoder runs a plain GPT-2 (`--load-in-4bit`).
void qlora_round_base(Gpt& model, const QloraBaseOptions& o = {});

// Bytes the store keeps for one (rows, cols) matrix under the options: packed codes, one 8-bit code per scale,
// one fp32 per double_quant_block scales and the fp32 mean (or fp32 scales without double quantization).
std::int64_t qlora_matrix_bytes(std::int64_t rows, std::int64_t cols, const QloraBaseOptions& o);

}  // namespace tl
