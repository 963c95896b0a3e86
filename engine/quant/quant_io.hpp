// Quantized model folders: config.json and tunelab.json as model_io writes them, and model.safetensors
// holding each quantized tensor packed (NAME.qweight U8, NAME.scales F16/F32, NAME.zeros U8, NAME.codebook
// F16, NAME.scale_codes U8 + NAME.scale_scales F32 when double-quantized) beside the fp32 rest; the schemes
// are JSON in __metadata__["tunelab.quant"]. Loading dequantizes to fp32 and charges the packed bytes to the
// ledger's quant_storage. Plain folders load through model_io. docs/quantization.md shows a header.
#pragma once
#include <filesystem>

#include "core/tensor.hpp"
#include "model/model_io.hpp"
#include "quant/model_quant.hpp"

namespace tl {

// Writes the model quantized under the plan (atomic for the whole folder; nothing is written on error).
void save_quantized_model(const std::filesystem::path& dir, const Gpt& model, const QuantPlan& plan,
                          const ModelMeta& meta);

bool is_quantized_folder(const std::filesystem::path& dir);

struct ModelForInference {
    std::unique_ptr<Gpt> model;  // fp32 weights (dequantized when the folder is quantized)
    ModelMeta meta;
    Buffer quant_storage;      // the packed tensors as stored, charged to MemCategory::quant_storage
    std::string quantization;  // "" for a plain folder, else e.g. "int4 per_group(32), embeddings fp32"
};

// Loads a plain or a quantized folder. tl::Error for a damaged or inconsistent quantized file.
ModelForInference load_model_for_inference(const std::filesystem::path& dir, Backend& backend);

}  // namespace tl
