// LoRA (Hu et al. 2021) on GPT-2's Conv1D linears: y = x W + b + s (x A^T) B^T with A (r, in), B (out, r),
// s = alpha / r (or alpha / sqrt(r) with rsLoRA). A is Kaiming-uniform as in Hugging Face PEFT, B is zero, so a
// fresh adapter changes nothing. Merge folds s (B A)^T into W (in, out); unmerge takes it out again.
// Options as in PEFT: lora_dropout (on the branch's input, training only: LoraTrainingScope) and use_dora (DoRA,
// Liu et al. 2024: y = b + m / ||W + s (BA)^T||_col * x (W + s (BA)^T), a magnitude m per output column).
// PEFT folders (adapter_config.json + adapter_model.safetensors): lora_io.hpp. Overview: docs/peft.md.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "peft/peft_common.hpp"

namespace tl {

enum class LoraScaling { standard, rslora };  // alpha / r, or alpha / sqrt(r)
enum class LoraVariant { lora, dora };        // PEFT's use_dora
// DoRA's column norm ||W + s (BA)^T|| in backward: detached (a constant, as PEFT and the paper's section 4.3 do)
// or exact (the full derivative; the tests check it against central differences).
enum class DoraNorm { detached, exact };
enum class LoraPhase { eval, train };  // dropout acts in train only

struct LoraConfig {
    int r = 8;
    float alpha = 16.0f;
    LoraScaling scaling = LoraScaling::standard;
    // Module names as PEFT matches them: a name matches a module whose path ends with ".<name>"
    // ("c_proj" is both attn.c_proj and mlp.c_proj; "mlp.c_proj" only the MLP's).
    std::vector<std::string> targets = {"c_attn", "c_proj", "c_fc"};
    float dropout = 0.0f;  // PEFT's lora_dropout p in [0, 1): x -> x * mask / (1 - p) on the branch, training only
    LoraVariant variant = LoraVariant::lora;
    DoraNorm dora_norm = DoraNorm::detached;
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
        std::string m_name() const { return path + ".lora_magnitude_vector"; }  // DoRA (out), PEFT's saved name
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
    // W += s (B A)^T for every module (DoRA: W <- c (W + s (B A)^T) per column, c = m / norm); the hooks then do
    // nothing. unmerge undoes it (DoRA: with the c of the merge).
    void merge(Gpt& model);
    void unmerge(Gpt& model);
    // Dropout masks are drawn in train only, from (seed, a per-module draw counter that this resets): the same
    // seed and forward count give the same masks.
    void set_phase(LoraPhase phase, std::uint64_t seed);
    LoraPhase phase() const { return phase_; }

private:
    const Module* find(std::int64_t layer, HookSite site) const;
    bool is_dropping() const { return phase_ == LoraPhase::train && config_.dropout > 0.0f; }
    CMatView dropped_input(Gpt& model, std::size_t i, CMatView x);
    void dora_forward(Gpt& model, std::size_t i, CMatView x, CMatView h, MatView y);
    void dora_backward(Gpt& model, const HookBackward& hk, std::size_t i);
    void dora_norms(Gpt& model, std::size_t i);  // W' = W + s A^T B^T (saved), norms_[i], c_[i]
    void fold(Gpt& model, float sign);
    LoraConfig config_;
    float scale_ = 1.0f;
    std::vector<Module> modules_;
    LoraState state_ = LoraState::unmerged;
    LoraPhase phase_ = LoraPhase::eval;
    std::uint64_t dropout_seed_ = 0;
    std::vector<std::uint64_t> draws_;          // dropout masks drawn per module
    std::vector<std::vector<float>> norms_, c_;  // DoRA per module: ||W'||_col and m / ||W'||_col (host)
    std::vector<std::vector<float>> merged_c_;   // DoRA: the c folded in by merge()
    SavedBuffers saved_h_;  // h = x A^T per module (N, r), activations
    SavedBuffers saved_x_;  // dropout: x * mask / (1 - p) (N, in) at slot 2i, the mask at 2i + 1
    SavedBuffers saved_z_;  // DoRA: z = x W + s h B^T (N, out), and W' (in, out) at slot 2i + 1
    SavedBuffers dh_;       // (N, r), (N, out), (N, in), (in, out) scratch, workspace
};

// Training with LoRA dropout: sets the attached LoRA's phase to train for the scope's life (eval after, also
// on an exception). Does nothing without a LoRA.
class LoraTrainingScope {
public:
    LoraTrainingScope(Gpt& model, std::uint64_t seed);
    ~LoraTrainingScope();
    LoraTrainingScope(const LoraTrainingScope&) = delete;
    LoraTrainingScope& operator=(const LoraTrainingScope&) = delete;

private:
    Gpt& model_;
};
// Trainable parameters of LoRA on modules of (in, out) shapes: r (in + out) each, + out with DoRA.
std::int64_t lora_param_count(const std::vector<std::pair<std::int64_t, std::int64_t>>& shapes, int r,
                              LoraVariant variant);

// Freezes the base, attaches LoRA modules and returns them.
LoraAdapter& lora_attach(Gpt& model, const LoraConfig& config, std::uint64_t seed);
LoraAdapter* lora_find(const Gpt& model);  // the attached LoRA, or nullptr
// Merges, detaches every module and unfreezes: a plain GPT-2 whose logits equal the adapted model's.
void lora_merge_and_detach(Gpt& model);

}  // namespace tl
