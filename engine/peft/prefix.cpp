// Prefix tuning (see prefix.hpp). The model runs n virtual rows before each row's real tokens (gpt.cpp, [soft
// prompts]); at every layer's attn_qkv hook this module overwrites those rows' keys and values with the prefix.
//
// Why that is exactly prefix tuning: a real token attends to keys and values only; the virtual rows' own
// queries, attention outputs and MLPs feed nothing but the virtual rows of the next layer, whose keys and values
// are overwritten again, and the head reads the real rows only. So the real rows see the prefix and nothing
// else of the virtual rows, and in backward the gradient reaching the virtual rows is d loss / d (their K, V):
// it goes into the prefix, and is zeroed in dqkv so nothing flows below (the rows' Q gradient is zero already).
#include "peft/prefix.hpp"

#include <algorithm>
#include <cmath>
#include <memory>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "data/tokenizer.hpp"

namespace tl {

namespace {

// Records the keys and values of the first n rows of a one-row forward into the prefix layout (n, 2LC).
class KvRecorder final : public ModelAdapter {
public:
    KvRecorder(std::int64_t n, std::int64_t C, std::int64_t L)
        : kv(std::size_t(n * 2 * L * C)), n_(n), C_(C), W_(2 * L * C) {}
    std::string name() const override { return "kv_recorder"; }
    std::vector<AdapterParam> params() const override { return {}; }
    void init(Gpt&, std::uint64_t) override {}
    bool acts_at(HookSite site) const override { return site == HookSite::attn_qkv; }
    void forward(Gpt& model, const HookForward& h) override {
        for (std::int64_t j = 0; j < n_; ++j)
            for (std::int64_t part = 0; part < 2; ++part)  // 0: keys, 1: values
                model.backend().copy_to_host(kv.data() + j * W_ + (2 * h.layer + part) * C_,
                                             CVecView(h.y.data + j * 3 * C_ + (1 + part) * C_, C_));
    }
    std::vector<float> kv;

private:
    std::int64_t n_, C_, W_;
};

void tanh_forward(const Tensor& a, const Tensor& z) {
    for (std::int64_t i = 0; i < z.numel(); ++i) a.data()[i] = std::tanh(z.data()[i]);
}

}  // namespace

std::int64_t prefix_param_count(std::int64_t n, std::int64_t C, std::int64_t L, PrefixProjection projection,
                                std::int64_t H) {
    const std::int64_t W = 2 * L * C;
    return projection == PrefixProjection::none ? n * W : n * C + (C * H + H) + (H * W + W);
}

std::vector<float> prefix_from_tokens(const Gpt& model, const std::vector<std::int32_t>& tokens) {
    const GptConfig& c = model.config();
    const auto n = std::int64_t(tokens.size());
    if (n < 1 || n >= c.n_positions)
        throw Error("[peft] a prefix from tokens needs 1.." + std::to_string(c.n_positions - 1) + " tokens, got " +
                    std::to_string(n));
    Gpt plain(model.backend(), c);  // the base weights only: the model itself may carry the prefix already
    model.backend().copy(plain.weights().vec(), CVecView(model.weights().data(), model.base_param_count()));
    auto& rec = static_cast<KvRecorder&>(plain.attach(std::make_unique<KvRecorder>(n, c.n_embd, c.n_layer), 0));
    plain.forward(tokens.data(), nullptr, 1, n);
    return rec.kv;
}

PrefixTuning::PrefixTuning(const Gpt& model, const SoftPromptConfig& config, PrefixProjection projection)
    : config_(config),
      projection_(projection),
      C_(model.config().n_embd),
      L_(model.config().n_layer),
      H_(config.encoder_hidden == 0 ? model.config().n_embd : config.encoder_hidden) {
    const std::int64_t max_n = model.config().n_positions - 1;
    if (config_.virtual_tokens < 1 || config_.virtual_tokens > max_n)
        throw Error("[peft] prefix tuning needs 1.." + std::to_string(max_n) + " virtual tokens for this model (n_positions " +
                    std::to_string(max_n + 1) + ", and a row needs at least one real token), got " +
                    std::to_string(config_.virtual_tokens));
    if (config.encoder_hidden < 0 || H_ > 65536)
        throw Error("[peft] prefix encoder hidden size must be 1..65536 (0: n_embd), got " +
                    std::to_string(config.encoder_hidden));
    if (projection_ == PrefixProjection::none && config_.init == PromptInit::text && config_.init_text.empty())
        throw Error("[peft] prefix tuning with init 'text' needs a non-empty init text (--prompt-init-text)");
    if (projection_ == PrefixProjection::mlp) require_cpu(model, "prefix tuning with --prefix-projection");
}

std::vector<AdapterParam> PrefixTuning::params() const {
    const std::int64_t n = config_.virtual_tokens, W = width();
    if (projection_ == PrefixProjection::none) return {{kEmbedding, {n, W}, ParamRole::weight}};
    return {{kEmbedding, {n, C_}, ParamRole::weight},
            {weight_name(0), {C_, H_}, ParamRole::weight},
            {bias_name(0), {H_}, ParamRole::bias},
            {weight_name(2), {H_, W}, ParamRole::weight},
            {bias_name(2), {W}, ParamRole::bias}};
}

// none: text / sample_vocab -> the keys and values of real tokens (Li & Liang's init from real words; PEFT has
// only the N(0, 1) of nn.Embedding, our `random`). mlp: PyTorch's defaults, as PEFT leaves them.
void PrefixTuning::init(Gpt& model, std::uint64_t seed) {
    Backend& be = model.backend();
    const std::int64_t n = config_.virtual_tokens;
    auto fill = [&](const std::string& name, std::int64_t fan_in, std::uint64_t stream) {
        const ParamInfo& p = model.params().at(name);
        std::vector<float> host(std::size_t(p.numel()));
        Rng rng(seed, stream);
        const double bound = fan_in > 0 ? 1.0 / std::sqrt(double(fan_in)) : 0.0;
        for (float& x : host) x = fan_in > 0 ? float((2.0 * rng.uniform() - 1.0) * bound) : rng.normal();
        be.copy_from_host(model.param(p), host.data());
    };
    if (projection_ == PrefixProjection::mlp) {
        fill(kEmbedding, 0, 9300);
        fill(weight_name(0), C_, 9301), fill(bias_name(0), C_, 9302);
        fill(weight_name(2), H_, 9303), fill(bias_name(2), H_, 9304);
        return;
    }
    if (config_.init == PromptInit::random) return fill(kEmbedding, 0, 9300);
    std::vector<std::int32_t> ids;
    const std::vector<std::int32_t> text = encode(config_.init_text);
    Rng rng(seed, /*stream=*/9000);
    for (std::int64_t j = 0; j < n; ++j)
        ids.push_back(config_.init == PromptInit::text ? text[std::size_t(j) % text.size()]
                                                        : std::int32_t(rng.below(model.config().vocab_size)));
    const std::vector<float> kv = prefix_from_tokens(model, ids);
    be.copy_from_host(model.param(model.params().at(kEmbedding)), kv.data());
}

CMatView PrefixTuning::prefix_view(const Gpt& model) const {
    const std::int64_t n = config_.virtual_tokens;
    if (projection_ == PrefixProjection::none) return param_mat(model, kEmbedding, n);
    return const_cast<SavedBuffers&>(saved_).get(model.backend(), 2, {n, width()}, MemCategory::activations).mat(n);
}

// mlp:  z = E W0 + b0;  a = tanh(z);  kv = a W2 + b2      saves z, a, kv
void PrefixTuning::prompt_forward(const Gpt& model, MatView prompt) {
    Backend& be = model.backend();
    be.fill_zero(VecView(prompt.data, prompt.rows * prompt.cols));  // the virtual rows' input: unused downstream
    if (projection_ == PrefixProjection::none) return;
    const std::int64_t n = config_.virtual_tokens, W = width();
    const Tensor& z = saved_.get(be, 0, {n, H_}, MemCategory::activations);
    const Tensor& a = saved_.get(be, 1, {n, H_}, MemCategory::activations);
    const Tensor& kv = saved_.get(be, 2, {n, W}, MemCategory::activations);
    be.linear_forward({z.mat(n), param_mat(model, kEmbedding, n), param_mat(model, weight_name(0), C_),
                       CVecView(model.param(model.params().at(bias_name(0))))});
    tanh_forward(a, z);
    be.linear_forward({kv.mat(n), a.mat(n), param_mat(model, weight_name(2), H_),
                       CVecView(model.param(model.params().at(bias_name(2))))});
    be.fill_zero(scratch_.get(be, 0, {n, W}, MemCategory::workspace).vec());  // dkv, filled by backward_output
}

void PrefixTuning::prefix_kv(const Gpt& model, MatView kv) {
    const std::int64_t n = config_.virtual_tokens;
    TL_ASSERT(kv.rows == n && kv.cols == width(), "[prefix] prefix_kv: shape mismatch");
    if (projection_ == PrefixProjection::mlp) {
        const Tensor zeros = model.backend().tensor({n, C_}, MemCategory::workspace);
        prompt_forward(model, zeros.mat(n));
    }
    model.backend().copy(VecView(kv.data, n * width()), CVecView(prefix_view(model).data, n * width()));
}

// Layer l's keys and values of the virtual rows j = 0..n-1 of every batch row b (row b (n + T) + j of qkv).
void PrefixTuning::forward(Gpt& model, const HookForward& h) {
    Backend& be = model.backend();
    const std::int64_t n = config_.virtual_tokens, Ts = n + model.seq_len(), B = model.batch_rows(), W = width();
    TL_ASSERT(h.y.rows == B * Ts && h.y.cols == 3 * C_, "[prefix] forward: qkv is not (B (n + T), 3C)");
    const CMatView kv = prefix_view(model);
    for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t j = 0; j < n; ++j)
            for (std::int64_t part = 0; part < 2; ++part)
                be.copy(VecView(h.y.data + (b * Ts + j) * 3 * C_ + (1 + part) * C_, C_),
                        CVecView(kv.data + j * W + (2 * h.layer + part) * C_, C_));
}

// dprefix[j, layer l's K and V] += sum over b of dqkv's virtual rows; then those entries of dqkv are zeroed:
// the rows' K and V did not come from below.
void PrefixTuning::backward_output(Gpt& model, const HookBackward& h) {
    Backend& be = model.backend();
    const std::int64_t n = config_.virtual_tokens, Ts = n + model.seq_len(), B = model.batch_rows(), W = width();
    const MatView dkv = projection_ == PrefixProjection::none
                            ? grad_mat(model, kEmbedding, n)
                            : scratch_.get(be, 0, {n, W}, MemCategory::workspace).mat(n);
    for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t j = 0; j < n; ++j)
            for (std::int64_t part = 0; part < 2; ++part) {
                const VecView d(h.dy.data + (b * Ts + j) * 3 * C_ + (1 + part) * C_, C_);
                be.add_inplace(VecView(dkv.data + j * W + (2 * h.layer + part) * C_, C_), d);
                be.fill_zero(d);
            }
}

// mlp backward:  dW2 += a^T dkv, db2 += sum dkv;  da = dkv W2^T;  dz = da (1 - a^2);
//                dW0 += E^T dz, db0 += sum dz;  dE += dz W0^T
void PrefixTuning::prompt_backward(Gpt& model, CMatView) {
    if (projection_ == PrefixProjection::none) return;  // backward_output wrote the gradient already
    Backend& be = model.backend();
    const std::int64_t n = config_.virtual_tokens, W = width();
    const Tensor& a = saved_.get(be, 1, {n, H_}, MemCategory::activations);
    const Tensor& dkv = scratch_.get(be, 0, {n, W}, MemCategory::workspace);
    const Tensor& da = scratch_.get(be, 1, {n, H_}, MemCategory::workspace);
    const Tensor& dE = scratch_.get(be, 2, {n, C_}, MemCategory::workspace);
    auto db = [&](int i) { return model.grad(model.params().at(bias_name(i))); };
    be.linear_backward({da.mat(n), grad_mat(model, weight_name(2), H_), db(2), dkv.mat(n), a.mat(n),
                        param_mat(model, weight_name(2), H_)});
    for (std::int64_t i = 0; i < da.numel(); ++i) da.data()[i] *= 1.0f - a.data()[i] * a.data()[i];
    be.linear_backward({dE.mat(n), grad_mat(model, weight_name(0), C_), db(0), da.mat(n),
                        param_mat(model, kEmbedding, n), param_mat(model, weight_name(0), C_)});
    be.add_inplace(model.grad(model.params().at(kEmbedding)), dE.vec());
}

PrefixTuning& prefix_tuning_attach(Gpt& model, const SoftPromptConfig& config, PrefixProjection projection,
                                   std::uint64_t seed) {
    auto& p = static_cast<PrefixTuning&>(
        model.attach(std::make_unique<PrefixTuning>(model, config, projection), seed));
    freeze_base(model);
    return p;
}

PrefixTuning* prefix_find(const Gpt& model) {
    for (const auto& a : model.adapters())
        if (auto* p = dynamic_cast<PrefixTuning*>(a.get())) return p;
    return nullptr;
}

std::vector<float> prefix_values(const Gpt& model) {
    PrefixTuning* p = prefix_find(model);
    if (!p) throw Error("[peft] the model has no prefix");
    const std::int64_t n = p->virtual_tokens();
    const Tensor kv = model.backend().tensor({n, p->width()}, MemCategory::workspace);
    p->prefix_kv(model, kv.mat(n));
    std::vector<float> host(std::size_t(kv.numel()));
    model.backend().copy_to_host(host.data(), kv.vec());
    return host;
}

}  // namespace tl
