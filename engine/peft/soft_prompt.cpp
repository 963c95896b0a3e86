// Prompt tuning and P-tuning (see soft_prompt.hpp). The model builds each row as [P + wpe[0..n) ; tokens]
// (gpt.cpp, [soft prompts]) and hands back dP, summed over the batch; these modules only make P and take dP.
#include "peft/soft_prompt.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "data/tokenizer.hpp"

namespace tl {

namespace {

struct InitInfo {
    PromptInit init;
    const char* name;
    const char* peft_name;
};
constexpr InitInfo kInits[] = {{PromptInit::text, "text", "TEXT"},
                               {PromptInit::sample_vocab, "sample_vocab", "SAMPLE_VOCAB"},
                               {PromptInit::random, "random", "RANDOM"}};

const InitInfo& init_info(PromptInit init) {
    for (const InitInfo& i : kInits)
        if (i.init == init) return i;
    TL_ASSERT(false, "[peft] prompt init missing from kInits");
    return kInits[0];
}

// Rows of wte as the initial P: PEFT's TEXT (the text's tokens, cycled or cut to n) and SAMPLE_VOCAB (uniform
// token ids). RANDOM is PEFT's nn.Embedding default, N(0, 1): far larger than GPT-2's token embeddings.
std::vector<float> initial_prompt(const Gpt& model, const SoftPromptConfig& c, std::uint64_t seed) {
    const std::int64_t n = c.virtual_tokens, C = model.config().n_embd, V = model.config().vocab_size;
    std::vector<float> P(std::size_t(n * C));
    Rng rng(seed, /*stream=*/9000);
    if (c.init == PromptInit::random) {
        for (float& x : P) x = rng.normal();
        return P;
    }
    std::vector<std::int32_t> ids;
    const std::vector<std::int32_t> text = encode(c.init_text);
    for (std::int64_t j = 0; j < n; ++j)
        ids.push_back(c.init == PromptInit::text ? text[std::size_t(j) % text.size()]
                                                 : std::int32_t(rng.below(V)));
    std::vector<float> wte(std::size_t(V * C));
    model.backend().copy_to_host(wte.data(), CVecView(model.wte().data, V * C));
    for (std::int64_t j = 0; j < n; ++j)
        std::copy_n(wte.data() + ids[std::size_t(j)] * C, C, P.data() + j * C);
    return P;
}

// y = relu(x) and dx = dy [x > 0] on host memory (the CPU backend's tensors).
void relu_forward(const Tensor& y, const Tensor& x) {
    for (std::int64_t i = 0; i < x.numel(); ++i) y.data()[i] = std::max(x.data()[i], 0.0f);
}
void relu_backward(const Tensor& dx, const Tensor& dy, const Tensor& x) {
    for (std::int64_t i = 0; i < x.numel(); ++i) dx.data()[i] = x.data()[i] > 0.0f ? dy.data()[i] : 0.0f;
}

}  // namespace

PromptInit parse_prompt_init(const std::string& name) {
    std::string known;
    for (const InitInfo& i : kInits) {
        if (name == i.name) return i.init;
        known += std::string(known.empty() ? "" : ", ") + i.name;
    }
    throw Error("[peft] unknown prompt init '" + name + "'; available: " + known);
}

std::string prompt_init_name(PromptInit init) { return init_info(init).name; }
std::string prompt_init_peft_name(PromptInit init) { return init_info(init).peft_name; }

std::int64_t prompt_tuning_param_count(std::int64_t n, std::int64_t C) { return n * C; }
std::int64_t ptuning_param_count(std::int64_t n, std::int64_t C, std::int64_t H) {
    return n * C + (C * H + H) + (H * H + H) + (H * C + C);
}

SoftPrompt::SoftPrompt(const Gpt& model, const SoftPromptConfig& config)
    : config_(config), C_(model.config().n_embd) {
    const std::int64_t max_n = model.config().n_positions - 1;
    if (config_.virtual_tokens < 1 || config_.virtual_tokens > max_n)
        throw Error("[peft] virtual tokens must be 1.." + std::to_string(max_n) +
                    " for this model (n_positions " + std::to_string(max_n + 1) +
                    ", and a row needs at least one real token), got " +
                    std::to_string(config_.virtual_tokens));
}

// ---- prompt tuning ----

PromptTuning::PromptTuning(const Gpt& model, const SoftPromptConfig& config) : SoftPrompt(model, config) {
    if (config_.init == PromptInit::text && config_.init_text.empty())
        throw Error("[peft] prompt tuning with init 'text' needs a non-empty init text (--prompt-init-text)");
}

std::vector<AdapterParam> PromptTuning::params() const {
    return {{kEmbedding, {config_.virtual_tokens, C_}, ParamRole::weight}};
}

void PromptTuning::init(Gpt& model, std::uint64_t seed) {
    const std::vector<float> P = initial_prompt(model, config_, seed);
    model.backend().copy_from_host(model.param(model.params().at(kEmbedding)), P.data());
}

void PromptTuning::prompt_forward(const Gpt& model, MatView prompt) {
    model.backend().copy(VecView(prompt.data, prompt.rows * prompt.cols),
                         model.param(model.params().at(kEmbedding)));
}

void PromptTuning::prompt_backward(Gpt& model, CMatView dprompt) {
    model.backend().add_inplace(model.grad(model.params().at(kEmbedding)),
                                CVecView(dprompt.data, dprompt.rows * dprompt.cols));
}

// ---- P-tuning ----
//   z1 = E W1 + b1;  a1 = relu(z1);  z2 = a1 W2 + b2;  a2 = relu(z2);  P = a2 W3 + b3       saves z1, a1, z2,
//   a2 backward: dW3 += a2^T dP, db3 += sum dP;  da2 = dP W3^T;  dz2 = da2 [z2 > 0];  dW2 += a1^T dz2, db2 +=
//   sum dz2;
//             da1 = dz2 W2^T;  dz1 = da1 [z1 > 0];  dW1 += E^T dz1, db1 += sum dz1;  dE += dz1 W1^T

PTuning::PTuning(const Gpt& model, const SoftPromptConfig& config)
    : SoftPrompt(model, config),
      H_(config.encoder_hidden == 0 ? model.config().n_embd : config.encoder_hidden) {
    if (config.encoder_hidden < 0 || H_ > 65536)
        throw Error("[peft] P-tuning encoder hidden size must be 1..65536 (0: n_embd), got " +
                    std::to_string(config.encoder_hidden));
    require_cpu(model, "ptuning");
}

std::vector<AdapterParam> PTuning::params() const {
    const std::int64_t n = config_.virtual_tokens;
    return {{kEmbedding, {n, C_}, ParamRole::weight}, {weight_name(0), {C_, H_}, ParamRole::weight},
            {bias_name(0), {H_}, ParamRole::bias},    {weight_name(2), {H_, H_}, ParamRole::weight},
            {bias_name(2), {H_}, ParamRole::bias},    {weight_name(4), {H_, C_}, ParamRole::weight},
            {bias_name(4), {C_}, ParamRole::bias}};
}

// PyTorch's defaults, as PEFT leaves them: nn.Embedding N(0, 1); nn.Linear weight and bias U(+-1/sqrt(in)).
void PTuning::init(Gpt& model, std::uint64_t seed) {
    std::uint64_t stream = 9100;
    auto fill = [&](const std::string& name, std::int64_t fan_in) {
        const ParamInfo& p = model.params().at(name);
        std::vector<float> host(std::size_t(p.numel()));
        Rng rng(seed, stream++);
        const double bound = fan_in > 0 ? 1.0 / std::sqrt(double(fan_in)) : 0.0;
        for (float& x : host) x = fan_in > 0 ? float((2.0 * rng.uniform() - 1.0) * bound) : rng.normal();
        model.backend().copy_from_host(model.param(p), host.data());
    };
    fill(kEmbedding, 0);
    for (int i : {0, 2, 4}) {
        const std::int64_t in = i == 0 ? C_ : H_;
        fill(weight_name(i), in);
        fill(bias_name(i), in);
    }
}

void PTuning::prompt_forward(const Gpt& model, MatView prompt) {
    Backend& be = model.backend();
    const std::int64_t n = config_.virtual_tokens;
    const Tensor& z1 = saved_.get(be, 0, {n, H_}, MemCategory::activations);
    const Tensor& a1 = saved_.get(be, 1, {n, H_}, MemCategory::activations);
    const Tensor& z2 = saved_.get(be, 2, {n, H_}, MemCategory::activations);
    const Tensor& a2 = saved_.get(be, 3, {n, H_}, MemCategory::activations);
    auto b = [&](int i) { return CVecView(model.param(model.params().at(bias_name(i)))); };
    be.linear_forward(
        {z1.mat(n), param_mat(model, kEmbedding, n), param_mat(model, weight_name(0), C_), b(0)});
    relu_forward(a1, z1);
    be.linear_forward({z2.mat(n), a1.mat(n), param_mat(model, weight_name(2), H_), b(2)});
    relu_forward(a2, z2);
    be.linear_forward({prompt, a2.mat(n), param_mat(model, weight_name(4), H_), b(4)});
}

void PTuning::prompt_backward(Gpt& model, CMatView dprompt) {
    Backend& be = model.backend();
    const std::int64_t n = config_.virtual_tokens;
    const Tensor& z1 = saved_.get(be, 0, {n, H_}, MemCategory::activations);
    const Tensor& a1 = saved_.get(be, 1, {n, H_}, MemCategory::activations);
    const Tensor& z2 = saved_.get(be, 2, {n, H_}, MemCategory::activations);
    const Tensor& a2 = saved_.get(be, 3, {n, H_}, MemCategory::activations);
    const Tensor& da = scratch_.get(be, 0, {n, H_}, MemCategory::workspace);
    const Tensor& dz = scratch_.get(be, 1, {n, H_}, MemCategory::workspace);
    const Tensor& dE = scratch_.get(be, 2, {n, C_}, MemCategory::workspace);
    auto dW = [&](int i, std::int64_t in) { return grad_mat(model, weight_name(i), in); };
    auto db = [&](int i) { return model.grad(model.params().at(bias_name(i))); };
    auto W = [&](int i, std::int64_t in) { return CMatView(param_mat(model, weight_name(i), in)); };
    be.linear_backward({da.mat(n), dW(4, H_), db(4), dprompt, a2.mat(n), W(4, H_)});
    relu_backward(dz, da, z2);
    be.linear_backward({da.mat(n), dW(2, H_), db(2), dz.mat(n), a1.mat(n), W(2, H_)});
    relu_backward(dz, da, z1);
    be.linear_backward({dE.mat(n), dW(0, C_), db(0), dz.mat(n), param_mat(model, kEmbedding, n), W(0, C_)});
    be.add_inplace(model.grad(model.params().at(kEmbedding)), dE.vec());
}

// ---- attach, find ----

PromptTuning& prompt_tuning_attach(Gpt& model, const SoftPromptConfig& config, std::uint64_t seed) {
    auto& a = static_cast<PromptTuning&>(model.attach(std::make_unique<PromptTuning>(model, config), seed));
    freeze_base(model);
    return a;
}

PTuning& ptuning_attach(Gpt& model, const SoftPromptConfig& config, std::uint64_t seed) {
    auto& a = static_cast<PTuning&>(model.attach(std::make_unique<PTuning>(model, config), seed));
    freeze_base(model);
    return a;
}

const SoftPrompt* soft_prompt_find(const Gpt& model) {
    for (const auto& a : model.adapters())
        if (const auto* s = dynamic_cast<const SoftPrompt*>(a.get())) return s;
    return nullptr;
}

std::vector<float> soft_prompt_values(const Gpt& model) {
    if (!soft_prompt_find(model)) throw Error("[peft] the model has no soft prompt");
    const std::int64_t n = model.virtual_tokens(), C = model.config().n_embd;
    const Tensor P = model.backend().tensor({n, C}, MemCategory::workspace);
    model.virtual_embeddings(P.mat(n));
    std::vector<float> host(std::size_t(n * C));
    model.backend().copy_to_host(host.data(), P.vec());
    return host;
}

}  // namespace tl
