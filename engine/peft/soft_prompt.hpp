// Soft prompts: n trainable virtual tokens put before every row, the model frozen (Gpt: [soft prompts]).
//   prompt tuning (Lester et al. 2021): the virtual embeddings P (n, C) are the parameters, initialised from
//     rows of wte (the tokens of an init text, or random vocabulary tokens) as Hugging Face PEFT does;
//   P-tuning (Liu et al. 2021, PEFT's PromptEncoder with the MLP reparameterisation): P = MLP(E), E (n, C),
//     MLP = Linear(C, H) -> ReLU -> Linear(H, H) -> ReLU -> Linear(H, C); E and the MLP train.
// PEFT folders: soft_prompt_io.hpp. Prefix tuning (per-layer K/V, on the same virtual rows): prefix.hpp.
// Overview: docs/peft.md.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "peft/peft_common.hpp"

namespace tl {

enum class PromptInit { text, sample_vocab, random };  // PEFT's prompt_tuning_init TEXT, SAMPLE_VOCAB, RANDOM

// "text", "sample_vocab", "random" (tl::Error otherwise), and the names back: ours and PEFT's
// ("SAMPLE_VOCAB").
PromptInit parse_prompt_init(const std::string& name);
std::string prompt_init_name(PromptInit init);
std::string prompt_init_peft_name(PromptInit init);

struct SoftPromptConfig {
    std::int64_t virtual_tokens = 8;  // n: 1..n_positions - 1
    // Prompt tuning: where P starts (P-tuning ignores it: E ~ N(0, 1) as in PEFT).
    PromptInit init = PromptInit::sample_vocab;
    std::string init_text;            // init text: its tokens' wte rows, cut or cycled to n (PEFT's rule)
    std::int64_t encoder_hidden = 0;  // P-tuning: the MLP's width H; 0: C (PEFT's default)
};

// What prompt tuning and P-tuning share: n virtual tokens, no hook sites, the base frozen by *_attach.
class SoftPrompt : public ModelAdapter {
public:
    const SoftPromptConfig& config() const { return config_; }
    std::int64_t virtual_tokens() const override { return config_.virtual_tokens; }
    bool acts_at(HookSite) const override { return false; }
    void forward(Gpt&, const HookForward&) override {}  // never called: the model asks prompt_forward instead
    virtual std::string peft_type() const = 0;          // "PROMPT_TUNING", "P_TUNING"

    static constexpr const char* kEmbedding = "prompt_encoder.embedding.weight";  // (n, C), PEFT's name

protected:
    SoftPrompt(const Gpt& model, const SoftPromptConfig& config);  // validates n against the model
    SoftPromptConfig config_;
    std::int64_t C_;
};

// Prompt tuning: P itself is the parameter. n C trainable parameters.
class PromptTuning final : public SoftPrompt {
public:
    PromptTuning(const Gpt& model, const SoftPromptConfig& config);  // tl::Error: init text missing
    std::string name() const override { return "prompt"; }
    std::string peft_type() const override { return "PROMPT_TUNING"; }
    std::vector<AdapterParam> params() const override;
    void init(Gpt& model, std::uint64_t seed) override;
    void prompt_forward(const Gpt& model, MatView prompt) override;
    void prompt_backward(Gpt& model, CMatView dprompt) override;
};

// P-tuning's MLP encoder. n C + 2 C H + H^2 + 2 H + C trainable parameters. Linear weights are stored (in,
// out), GPT-2's Conv1D layout (the transpose of PEFT's nn.Linear), so the Backend's linear ops run them. The
// ReLUs are host loops: CPU backend only.
class PTuning final : public SoftPrompt {
public:
    PTuning(const Gpt& model, const SoftPromptConfig& config);  // tl::Error: H outside 1..65536
    std::string name() const override { return "ptuning"; }
    std::string peft_type() const override { return "P_TUNING"; }
    std::vector<AdapterParam> params() const override;
    void init(Gpt& model, std::uint64_t seed) override;
    void prompt_forward(const Gpt& model, MatView prompt) override;
    void prompt_backward(Gpt& model, CMatView dprompt) override;
    std::int64_t hidden() const { return H_; }

    // "prompt_encoder.mlp_head.<i>.weight" / ".bias" for i = 0, 2, 4 (PEFT's Sequential indices).
    static std::string weight_name(int i) {
        return "prompt_encoder.mlp_head." + std::to_string(i) + ".weight";
    }
    static std::string bias_name(int i) { return "prompt_encoder.mlp_head." + std::to_string(i) + ".bias"; }

private:
    std::int64_t H_;
    SavedBuffers saved_;    // z1, a1, z2, a2 (n, H): the pre- and post-ReLU activations
    SavedBuffers scratch_;  // da (n, H) and dE (n, C)
};

// Freeze the base and attach (tl::Error for a bad config or a second soft prompt).
PromptTuning& prompt_tuning_attach(Gpt& model, const SoftPromptConfig& config, std::uint64_t seed);
PTuning& ptuning_attach(Gpt& model, const SoftPromptConfig& config, std::uint64_t seed);
const SoftPrompt* soft_prompt_find(const Gpt& model);  // the attached soft prompt, or nullptr
// The (n, C) virtual embeddings as they enter the model (P-tuning: the encoder's output), row-major on the
// host.
std::vector<float> soft_prompt_values(const Gpt& model);
// Trainable parameters of each method, in closed form (the tests and docs/peft.md compare against these).
std::int64_t prompt_tuning_param_count(std::int64_t n, std::int64_t C);
std::int64_t ptuning_param_count(std::int64_t n, std::int64_t C, std::int64_t H);

}  // namespace tl
