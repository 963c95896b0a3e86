// [QLoRA] Frozen base matrices kept outside the model's fp32 buffer, in a compact (quantized) form. After
// Gpt::move_to_store, the model holds no fp32 copy of them: layer(l) decodes layer l's stored matrices into one
// shared workspace on each call, as bitsandbytes dequantizes a 4-bit weight for every matmul. engine/peft/qlora
// implements the NF4 store; the model only needs this interface.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace tl {

class FrozenMatrixStore {
public:
    virtual ~FrozenMatrixStore() = default;
    virtual std::string describe() const = 0;  // e.g. "nf4 per_group(64), scales double-quantized (fp8_e4m3, 256)"
    virtual bool holds(std::string_view name) const = 0;
    // The named matrix's values in the model's own layout (its ParamInfo shape, row-major), written to host memory.
    virtual void decode(std::string_view name, std::span<float> out) const = 0;
    virtual std::int64_t storage_bytes() const = 0;  // what the store keeps, charged to the ledger's quant_storage
};

}  // namespace tl
