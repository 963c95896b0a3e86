// LoRA (Hu et al. 2021) on GPT-2's Conv1D linears: y = x W + b + s (x A^T) B^T with A (r, in), B (out, r),
// s = alpha / r (or alpha / sqrt(r) with rsLoRA). A is Kaiming-uniform as in Hugging Face PEFT, B is zero, so a
// fresh adapter changes nothing. Merge folds s (B A)^T into W (in, out); unmerge takes it out again.
// PEFT folders (adapter_config.json + adapter_model.safetensors): lora_io.hpp. Overview: docs/peft.md.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "peft/peft_common.hpp"

namespace tl {

enum class LoraScaling { standard, rslora };  // alpha / r, or alpha / sqrt(r)

struct LoraConfig {
    int r = 8;
    float alpha = 16.0f;
    LoraScaling scaling = LoraScaling::standard;
    // Module names as PEFT matches them: a name matches a module whose path ends with ".<name>"
    // ("c_proj" is both attn.c_proj and mlp.c_proj; "mlp.c_proj" only the MLP's).
    std::vector<std::string> targets = {"c_attn", "c_proj", "c_fc"};
    float scale() const;
};

enum class LoraState { unmerged, merged };

class LoraAdapter final : public ModelAdapter {
public:
    struct Module {
        std::int64_t layer = 0;
        HookSite site = HookSite::attn_qkv;
        std::string path;         // "transformer.h.0.attn.c_attn"
        std::int64_t in = 0, out = 0;
        std::string a_name() const { return path + ".lora_A.weight"; }  // (r, in)
        std::string b_name() const { return path + ".lora_B.weight"; }  // (out, r)
    };
    // Validates the targets and the rank against the model (tl::Error with the valid choices).
    LoraAdapter(const Gpt& model, const LoraConfig& config);

    std::string name() const override { return "lora"; }
    std::vector<AdapterParam> params() const override;
    void init(Gpt& model, std::uint64_t seed) override;
    void forward(Gpt& model, const HookForward& h) override;
    void backward_input(Gpt& model, const HookBackward& h) override;
    bool acts_at(HookSite site) const override;

    const LoraConfig& config() const { return config_; }
    const std::vector<Module>& modules() const { return modules_; }
    LoraState state() const { return state_; }
    void merge(Gpt& model);    // W += s (B A)^T for every module; the hooks then do nothing
    void unmerge(Gpt& model);  // W -= s (B A)^T

private:
    const Module* find(std::int64_t layer, HookSite site) const;
    void fold(Gpt& model, float sign);
    LoraConfig config_;
    float scale_ = 1.0f;
    std::vector<Module> modules_;
    LoraState state_ = LoraState::unmerged;
    SavedBuffers saved_h_;  // h = x A^T per module (N, r), activations
    SavedBuffers dh_;       // (N, r) scratch, workspace
};

// Freezes the base, attaches LoRA modules and returns them.
LoraAdapter& lora_attach(Gpt& model, const LoraConfig& config, std::uint64_t seed);
LoraAdapter* lora_find(const Gpt& model);  // the attached LoRA, or nullptr
// Merges, detaches every module and unfreezes: a plain GPT-2 whose logits equal the adapted model's.
void lora_merge_and_detach(Gpt& model);

}  // namespace tl
