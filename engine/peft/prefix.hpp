// Prefix tuning (Li & Liang 2021; Hugging Face PEFT's PREFIX_TUNING on GPT-2): n trainable key/value pairs per
// layer that every real token attends to, the model frozen. Built on the soft-prompt mechanism (Gpt:
// [soft prompts]): the model gives each row n virtual rows before the real ones, and this module overwrites
// their keys and values at every layer's attn_qkv hook; the real tokens sit at positions n..n+T-1, as in HF
// GPT-2 with past_key_values of length n. PEFT folders: soft_prompt_io.hpp. Overview: docs/peft.md.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "peft/peft_common.hpp"
#include "peft/soft_prompt.hpp"

namespace tl {

// PEFT's prefix_projection: the prefix is the parameter itself (none), or the output of a reparameterisation
// MLP, Linear(C, H) -> tanh -> Linear(H, 2 L C), applied to an (n, C) embedding (mlp).
enum class PrefixProjection { none, mlp };

// The prefix (n, 2 L C) in PEFT's layout: row j = virtual token j; layer l's keys at columns [2l C, (2l+1) C),
// its values at [(2l+1) C, (2l+2) C), heads contiguous inside (PEFT views it as (n, 2L, H, hs)).
//   trainable: none  n 2 L C          mlp  n C + C H + H + H 2 L C + 2 L C
class PrefixTuning final : public ModelAdapter {
public:
    // config: virtual_tokens, encoder_hidden (mlp: H, 0 = C), init and init_text (none only: text and
    // sample_vocab start the prefix at the keys and values the base model computes for those tokens; random
    // is PEFT's nn.Embedding default, N(0, 1)). tl::Error for a bad n, H or init.
    PrefixTuning(const Gpt& model, const SoftPromptConfig& config, PrefixProjection projection);
    std::string name() const override { return "prefix"; }
    std::vector<AdapterParam> params() const override;
    void init(Gpt& model, std::uint64_t seed) override;
    bool acts_at(HookSite site) const override { return site == HookSite::attn_qkv; }
    void forward(Gpt& model, const HookForward& h) override;          // overwrite the virtual rows' K, V
    void backward_output(Gpt& model, const HookBackward& h) override;  // take their dK, dV; zero them in dy
    std::int64_t virtual_tokens() const override { return config_.virtual_tokens; }
    void prompt_forward(const Gpt& model, MatView prompt) override;    // zeros; computes the prefix
    void prompt_backward(Gpt& model, CMatView dprompt) override;       // the MLP's backward (mlp)
    bool has_prefix_kv() const override { return true; }
    void prefix_kv(const Gpt& model, MatView kv) override;

    const SoftPromptConfig& config() const { return config_; }
    PrefixProjection projection() const { return projection_; }
    std::int64_t hidden() const { return H_; }
    std::int64_t width() const { return 2 * L_ * C_; }  // 2 L C: one row of the prefix

    static constexpr const char* kEmbedding = "prompt_encoder.embedding.weight";  // (n, 2LC) or (n, C), PEFT's
    // "prompt_encoder.transform.<i>.weight" / ".bias" for i = 0, 2 (PEFT's Sequential indices), stored (in, out).
    static std::string weight_name(int i) { return "prompt_encoder.transform." + std::to_string(i) + ".weight"; }
    static std::string bias_name(int i) { return "prompt_encoder.transform." + std::to_string(i) + ".bias"; }

private:
    CMatView prefix_view(const Gpt& model) const;  // the current (n, 2LC) prefix
    SoftPromptConfig config_;
    PrefixProjection projection_;
    std::int64_t C_, L_, H_;
    SavedBuffers saved_;    // mlp: z = E W0 + b0, a = tanh(z) (n, H), kv (n, 2LC)
    SavedBuffers scratch_;  // mlp: dkv (n, 2LC), da (n, H), dE (n, C)
};

// Freezes the base and attaches (tl::Error for a bad config or a second virtual-token module).
PrefixTuning& prefix_tuning_attach(Gpt& model, const SoftPromptConfig& config, PrefixProjection projection,
                                   std::uint64_t seed);
PrefixTuning* prefix_find(const Gpt& model);  // the attached prefix, or nullptr
// The (n, 2LC) prefix as the model uses it (mlp: the encoder's output), row-major on the host.
std::vector<float> prefix_values(const Gpt& model);
// The keys and values the model (its base weights only) computes for `tokens` at positions 0..n-1, in the
// prefix layout (n, 2LC): a prefix set to them makes the model read as if the tokens came first.
std::vector<float> prefix_from_tokens(const Gpt& model, const std::vector<std::int32_t>& tokens);
std::int64_t prefix_param_count(std::int64_t n, std::int64_t C, std::int64_t L, PrefixProjection projection,
                                std::int64_t H);

}  // namespace tl
