// GPT-2 forward and backward over the Backend's ops. Buffers are planned once per (B, T) and counted in the
// ledger: activations kept for backward under `activations`, gradient scratch under `workspace`.
//
//   x0 = wte[tokens] + wpe[t]
//   per layer l:  h = x + attn(ln_1(x));  x' = h + mlp(ln_2(h))          (pre-LN residual stream)
//   logits = ln_f(x_L) wte^T  (tied);  loss_i = CE(logits_i, targets_i)
// [PEFT hooks] With no adapter attached the hook calls are empty loops and the ops are exactly the base ones.
#include "model/gpt.hpp"

#include <cmath>
#include <vector>

#include "core/error.hpp"
#include "core/rng.hpp"

namespace tl {

struct Gpt::Activations {
    Tensor tokens, targets, ce_weights;  // int32 / int32 / float, stored as 4-byte words
    Tensor encoded;                      // (N, C)
    struct Layer {
        Tensor ln1, ln1_mean, ln1_rstd, qkv, atty, att, attproj, resid2, ln2, ln2_mean, ln2_rstd, fch, fch_gelu,
            fcproj, resid3;
    };
    std::vector<Layer> layers;
    Tensor lnf, lnf_mean, lnf_rstd, logits, losses;
};

struct Gpt::Scratch {
    Tensor dresid, dln, dx_ln, dbranch, dqkv, datt, dfch, dfch_gelu, dlogits;
    Tensor dsite;  // (N, C): a residual branch's dy, copied so a hook may rewrite it (only with adapters)
};

Gpt::Gpt(Backend& backend, const GptConfig& config) : backend_(backend), config_(config), params_(config) {
    validate_config(config_, "model config");
    weights_ = backend_.tensor({params_.total()}, MemCategory::weights);
    base_total_ = params_.total();
    base_entries_ = params_.entries().size();
}

Gpt::~Gpt() = default;

void Gpt::init_gpt2(std::uint64_t seed) {
    const float resid_std = 0.02f / std::sqrt(2.0f * float(config_.n_layer));
    std::vector<float> host;
    for (std::size_t i = 0; i < params_.entries().size(); ++i) {
        const ParamInfo& p = params_.entries()[i];
        host.assign(std::size_t(p.numel()), 0.0f);
        Rng rng(seed, /*stream=*/i);
        const bool is_resid_proj = p.name.ends_with("attn.c_proj.weight") || p.name.ends_with("mlp.c_proj.weight");
        switch (p.role) {
            case ParamRole::norm_weight: host.assign(host.size(), 1.0f); break;
            case ParamRole::norm_bias:
            case ParamRole::bias: break;
            default:
                for (auto& w : host) w = rng.normal() * (is_resid_proj ? resid_std : 0.02f);
        }
        backend_.copy_from_host(param(p), host.data());
    }
}

void Gpt::enable_grads() {
    if (grads_.empty()) grads_ = backend_.tensor({base_total_}, MemCategory::grads);
    for (AdapterStorage& st : adapter_storage_)
        if (st.grads.empty()) st.grads = backend_.tensor({st.n}, MemCategory::grads);
}

void Gpt::zero_grads() {
    TL_ASSERT(has_grads(), "[model] zero_grads before enable_grads");
    backend_.fill_zero(grads_.vec());
    for (AdapterStorage& st : adapter_storage_) backend_.fill_zero(st.grads.vec());
}

static VecView view_of(const Tensor& w, const ParamInfo& p) { return {w.data() + p.offset, p.numel()}; }

const Gpt::AdapterStorage& Gpt::storage_of(const ParamInfo& p) const {
    for (const AdapterStorage& st : adapter_storage_)
        if (p.offset >= st.first && p.offset < st.first + st.n) return st;
    TL_ASSERT(false, "[model] parameter " + p.name + " lies in no buffer");
    return adapter_storage_.front();
}

VecView Gpt::param(const ParamInfo& p) const {
    if (p.offset < base_total_) return view_of(weights_, p);
    const AdapterStorage& st = storage_of(p);
    return {st.weights.data() + (p.offset - st.first), p.numel()};
}

VecView Gpt::grad(const ParamInfo& p) const {
    if (p.offset < base_total_) return view_of(grads_, p);
    const AdapterStorage& st = storage_of(p);
    TL_ASSERT(!st.grads.empty(), "[model] gradient of " + p.name + " before enable_grads");
    return {st.grads.data() + (p.offset - st.first), p.numel()};
}

ModelAdapter& Gpt::attach(std::unique_ptr<ModelAdapter> adapter, std::uint64_t seed) {
    TL_ASSERT(adapter != nullptr, "[model] attach of a null adapter");
    AdapterStorage st;
    st.first = params_.total();
    for (AdapterParam& ap : adapter->params()) params_.append(std::move(ap.name), std::move(ap.shape), ap.role);
    st.n = params_.total() - st.first;
    if (st.n > 0) {
        st.weights = backend_.tensor({st.n}, MemCategory::weights);
        if (has_grads()) st.grads = backend_.tensor({st.n}, MemCategory::grads);
        adapter_storage_.push_back(std::move(st));
    }
    adapters_.push_back(std::move(adapter));
    acts_.reset();  // re-plan: a hooked model keeps a copy of each branch gradient
    scratch_.reset();
    adapters_.back()->init(*this, seed);
    return *adapters_.back();
}

void Gpt::detach_adapters() {
    adapters_.clear();
    adapter_storage_.clear();
    params_.truncate(base_entries_);
    acts_.reset();
    scratch_.reset();
}

bool Gpt::is_hooked(HookSite site) const {
    for (const auto& a : adapters_)
        if (a->acts_at(site)) return true;
    return false;
}

void Gpt::hook_forward(std::int64_t l, HookSite site, MatView y, CMatView x) {
    for (const auto& a : adapters_)
        if (a->acts_at(site)) a->forward(*this, {l, site, y, x});
}

void Gpt::hook_backward_output(std::int64_t l, HookSite site, MatView dy, CMatView x) {
    for (auto it = adapters_.rbegin(); it != adapters_.rend(); ++it)
        if ((*it)->acts_at(site)) (*it)->backward_output(*this, {l, site, dy, MatView(), x});
}

void Gpt::hook_backward_input(std::int64_t l, HookSite site, MatView dy, MatView dx, CMatView x) {
    for (const auto& a : adapters_)
        if (a->acts_at(site)) a->backward_input(*this, {l, site, dy, dx, x});
}

// One layer's views into a flat buffer (weights or grads): the same walk of the table serves both.
template <class Layer, class V, class M>
static Layer layer_views(const Tensor& flat, const ParamTable& params, std::int64_t l, std::int64_t C) {
    const std::string pre = "transformer.h." + std::to_string(l) + ".";
    auto v = [&](const char* n) { return V(view_of(flat, params.at(pre + n))); };
    auto m = [&](const char* n, std::int64_t rows) {
        const VecView x = view_of(flat, params.at(pre + n));
        return M(x.data, rows, x.n / rows);
    };
    return {v("ln_1.weight"), v("ln_1.bias"), m("attn.c_attn.weight", C), v("attn.c_attn.bias"),
            m("attn.c_proj.weight", C), v("attn.c_proj.bias"), v("ln_2.weight"), v("ln_2.bias"),
            m("mlp.c_fc.weight", C), v("mlp.c_fc.bias"), m("mlp.c_proj.weight", 4 * C), v("mlp.c_proj.bias")};
}

LayerWeights Gpt::layer(std::int64_t l) const {
    return layer_views<LayerWeights, CVecView, CMatView>(weights_, params_, l, config_.n_embd);
}

LayerGrads Gpt::layer_grads(std::int64_t l) const {
    return layer_views<LayerGrads, VecView, MatView>(grads_, params_, l, config_.n_embd);
}

CMatView Gpt::wte() const {
    return {weights_.data() + params_.at("transformer.wte.weight").offset, config_.vocab_size, config_.n_embd};
}
CMatView Gpt::wpe() const {
    return {weights_.data() + params_.at("transformer.wpe.weight").offset, config_.n_positions, config_.n_embd};
}

void Gpt::plan_buffers(std::int64_t B, std::int64_t T) {
    if (acts_ && planned_rows_ == B * T && planned_T_ == T) return;
    acts_.reset();
    scratch_.reset();
    const std::int64_t N = B * T, C = config_.n_embd, V = config_.vocab_size, H = config_.n_head;
    auto act = [&](Shape s) { return backend_.tensor(s, MemCategory::activations); };
    auto ws = [&](Shape s) { return backend_.tensor(s, MemCategory::workspace); };
    acts_ = std::make_unique<Activations>();
    Activations& a = *acts_;
    a.tokens = act({N});
    a.targets = act({N});
    a.ce_weights = act({N});
    a.encoded = act({N, C});
    a.layers.resize(std::size_t(config_.n_layer));
    for (auto& L : a.layers) {
        L.ln1 = act({N, C}), L.ln1_mean = act({N}), L.ln1_rstd = act({N}), L.qkv = act({N, 3 * C});
        L.atty = act({N, C}), L.att = act({B, H, T, T}), L.attproj = act({N, C}), L.resid2 = act({N, C});
        L.ln2 = act({N, C}), L.ln2_mean = act({N}), L.ln2_rstd = act({N}), L.fch = act({N, 4 * C});
        L.fch_gelu = act({N, 4 * C}), L.fcproj = act({N, C}), L.resid3 = act({N, C});
    }
    a.lnf = act({N, C}), a.lnf_mean = act({N}), a.lnf_rstd = act({N});
    a.logits = act({N, V}), a.losses = act({N});
    scratch_ = std::make_unique<Scratch>();
    Scratch& s = *scratch_;
    s.dresid = ws({N, C}), s.dln = ws({N, C}), s.dx_ln = ws({N, C}), s.dbranch = ws({N, C});
    s.dqkv = ws({N, 3 * C}), s.datt = ws({B, H, T, T}), s.dfch = ws({N, 4 * C}), s.dfch_gelu = ws({N, 4 * C});
    s.dlogits = ws({N, V});
    if (has_adapters()) s.dsite = ws({N, C});
    planned_rows_ = N;
    planned_T_ = T;
}

const float* Gpt::layer_input(std::int64_t l) const {
    return l == 0 ? acts_->encoded.data() : acts_->layers[std::size_t(l - 1)].resid3.data();
}

void Gpt::forward(const std::int32_t* tokens, const std::int32_t* targets, std::int64_t B, std::int64_t T) {
    if (T < 1 || T > config_.n_positions || B < 1)
        throw Error("[model] forward needs 1 <= T <= n_positions (" + std::to_string(config_.n_positions) +
                    ") and B >= 1; got B " + std::to_string(B) + ", T " + std::to_string(T));
    for (std::int64_t i = 0; i < B * T; ++i) {
        if (tokens[i] < 0 || tokens[i] >= config_.vocab_size)
            throw Error("[model] token id " + std::to_string(tokens[i]) + " at position " + std::to_string(i) +
                        " is outside the vocabulary (0.." + std::to_string(config_.vocab_size - 1) + ")");
        if (targets && (targets[i] < 0 || targets[i] >= config_.vocab_size))
            throw Error("[model] target id " + std::to_string(targets[i]) + " is outside the vocabulary");
    }
    plan_buffers(B, T);
    B_ = B, T_ = T;
    has_targets_ = targets != nullptr;
    Activations& a = *acts_;
    const std::int64_t N = B * T, C = config_.n_embd, V = config_.vocab_size;
    auto* tok_dev = reinterpret_cast<std::int32_t*>(a.tokens.data());
    backend_.upload_bytes(tok_dev, tokens, sizeof(std::int32_t) * std::size_t(N));
    backend_.embedding_forward({a.encoded.mat(N), tok_dev, wte(), wpe(), B, T, 0});
    for (std::int64_t l = 0; l < config_.n_layer; ++l) forward_layer(l, layer_input(l));
    const float* x = layer_input(config_.n_layer);
    backend_.layernorm_forward({a.lnf.mat(N), a.lnf_mean.vec(), a.lnf_rstd.vec(), CMatView(x, N, C),
                                CVecView(view_of(weights_, params_.at("transformer.ln_f.weight"))),
                                CVecView(view_of(weights_, params_.at("transformer.ln_f.bias"))),
                                config_.layer_norm_epsilon});
    backend_.gemm({a.logits.mat(N), a.lnf.mat(N), wte(), Trans::no, Trans::yes, 1.0f, 0.0f});
    if (targets) {
        auto* tgt_dev = reinterpret_cast<std::int32_t*>(a.targets.data());
        backend_.upload_bytes(tgt_dev, targets, sizeof(std::int32_t) * std::size_t(N));
        backend_.cross_entropy_forward({a.losses.vec(), CMatView(a.logits.data(), N, V), tgt_dev});
    }
}

void Gpt::forward_layer(std::int64_t l, const float* residual_in) {
    const std::int64_t N = B_ * T_, C = config_.n_embd;
    const LayerWeights w = layer(l);
    auto& L = acts_->layers[std::size_t(l)];
    const CMatView x(residual_in, N, C);
    backend_.layernorm_forward({L.ln1.mat(N), L.ln1_mean.vec(), L.ln1_rstd.vec(), x, w.ln1_w, w.ln1_b,
                                config_.layer_norm_epsilon});
    backend_.linear_forward({L.qkv.mat(N), L.ln1.mat(N), w.qkv_w, w.qkv_b});
    hook_forward(l, HookSite::attn_qkv, L.qkv.mat(N), L.ln1.mat(N));
    backend_.attention_forward({L.atty.mat(N), L.att.data(), L.qkv.mat(N), B_, T_, config_.n_head});
    backend_.linear_forward({L.attproj.mat(N), L.atty.mat(N), w.proj_w, w.proj_b});
    hook_forward(l, HookSite::attn_proj, L.attproj.mat(N), L.atty.mat(N));
    backend_.add(L.resid2.vec(), CVecView(residual_in, N * C), L.attproj.vec());
    backend_.layernorm_forward({L.ln2.mat(N), L.ln2_mean.vec(), L.ln2_rstd.vec(), L.resid2.mat(N), w.ln2_w,
                                w.ln2_b, config_.layer_norm_epsilon});
    backend_.linear_forward({L.fch.mat(N), L.ln2.mat(N), w.fc_w, w.fc_b});
    hook_forward(l, HookSite::mlp_fc, L.fch.mat(N), L.ln2.mat(N));
    backend_.gelu_forward({L.fch_gelu.vec(), L.fch.vec()});
    hook_forward(l, HookSite::mlp_hidden, L.fch_gelu.mat(N), L.fch.mat(N));
    backend_.linear_forward({L.fcproj.mat(N), L.fch_gelu.mat(N), w.fcproj_w, w.fcproj_b});
    hook_forward(l, HookSite::mlp_proj, L.fcproj.mat(N), L.fch_gelu.mat(N));
    backend_.add(L.resid3.vec(), L.resid2.vec(), L.fcproj.vec());
}

CMatView Gpt::logits() const {
    TL_ASSERT(acts_ != nullptr, "[model] logits before forward");
    return acts_->logits.mat(B_ * T_);
}

CVecView Gpt::losses() const {
    TL_ASSERT(acts_ != nullptr && has_targets_, "[model] losses need a forward with targets");
    return {acts_->losses.data(), B_ * T_};
}

void Gpt::backward(const float* weights, float norm) {
    TL_ASSERT(acts_ != nullptr && has_targets_, "[model] backward needs a forward with targets");
    TL_ASSERT(has_grads(), "[model] backward before enable_grads");
    TL_ASSERT(norm > 0, "[model] backward needs a positive loss normaliser (sum of token weights)");
    Activations& a = *acts_;
    Scratch& s = *scratch_;
    const std::int64_t N = B_ * T_, C = config_.n_embd, V = config_.vocab_size;
    backend_.upload_bytes(a.ce_weights.data(), weights, sizeof(float) * std::size_t(N));
    const auto* tgt = reinterpret_cast<const std::int32_t*>(a.targets.data());
    backend_.cross_entropy_backward({s.dlogits.mat(N), a.logits.mat(N), tgt, a.ce_weights.vec(), norm});

    // Tied head: logits = lnf wte^T  =>  dwte += dlogits^T lnf,  dlnf = dlogits wte.
    const ParamInfo& wte_p = params_.at("transformer.wte.weight");
    const MatView dwte(grads_.data() + wte_p.offset, V, C);
    const ParamInfo& wpe_p = params_.at("transformer.wpe.weight");
    const bool is_embedding_frozen = !wte_p.is_trainable && !wpe_p.is_trainable;  // PEFT: skip their GEMMs
    if (wte_p.is_trainable) backend_.gemm({dwte, s.dlogits.mat(N), a.lnf.mat(N), Trans::yes, Trans::no, 1.0f, 1.0f});
    backend_.gemm({s.dln.mat(N), s.dlogits.mat(N), wte(), Trans::no, Trans::no, 1.0f, 0.0f});
    backend_.layernorm_backward({s.dresid.mat(N), view_of(grads_, params_.at("transformer.ln_f.weight")),
                                 view_of(grads_, params_.at("transformer.ln_f.bias")), s.dln.mat(N),
                                 CMatView(layer_input(config_.n_layer), N, C), a.lnf_mean.vec(),
                                 a.lnf_rstd.vec(),
                                 CVecView(view_of(weights_, params_.at("transformer.ln_f.weight")))});
    for (std::int64_t l = config_.n_layer - 1; l >= 0; --l) backward_layer(l, layer_input(l));

    if (is_embedding_frozen) return;
    const auto* tok = reinterpret_cast<const std::int32_t*>(a.tokens.data());
    backend_.embedding_backward({dwte, MatView(grads_.data() + wpe_p.offset, config_.n_positions, C),
                                 s.dresid.mat(N), tok, B_, T_, 0});
}

// The layer's parameter gradients, with frozen linear weights and biases as null views: their GEMMs are skipped.
LayerGrads Gpt::trainable_layer_grads(std::int64_t l) const {
    LayerGrads g = layer_grads(l);
    if (!has_adapters() && params_.trainable_count() == params_.total()) return g;
    const std::string pre = "transformer.h." + std::to_string(l) + ".";
    auto frozen = [&](const char* n) { return !params_.at(pre + n).is_trainable; };
    if (frozen("attn.c_attn.weight")) g.qkv_w = {};
    if (frozen("attn.c_attn.bias")) g.qkv_b = {};
    if (frozen("attn.c_proj.weight")) g.proj_w = {};
    if (frozen("attn.c_proj.bias")) g.proj_b = {};
    if (frozen("mlp.c_fc.weight")) g.fc_w = {};
    if (frozen("mlp.c_fc.bias")) g.fc_b = {};
    if (frozen("mlp.c_proj.weight")) g.fcproj_w = {};
    if (frozen("mlp.c_proj.bias")) g.fcproj_b = {};
    return g;
}

// A residual branch's output gradient is s.dresid itself; a hook that rewrites dy gets a copy instead.
MatView Gpt::branch_grad(std::int64_t l, HookSite site) {
    const std::int64_t N = B_ * T_;
    Scratch& s = *scratch_;
    if (!is_hooked(site)) return s.dresid.mat(N);
    auto& L = acts_->layers[std::size_t(l)];
    backend_.copy(s.dsite.vec(), s.dresid.vec());
    const CMatView x = site == HookSite::attn_proj ? L.atty.mat(N) : L.fch_gelu.mat(N);
    hook_backward_output(l, site, s.dsite.mat(N), x);
    return s.dsite.mat(N);
}

// On entry s.dresid holds d(loss)/d(output of layer l); on exit d(loss)/d(input of layer l).
void Gpt::backward_layer(std::int64_t l, const float* residual_in) {
    const std::int64_t N = B_ * T_, C = config_.n_embd;
    const LayerWeights w = layer(l);
    const LayerGrads g = trainable_layer_grads(l);
    auto& L = acts_->layers[std::size_t(l)];
    Scratch& s = *scratch_;
    // x' = h + mlp(ln_2(h)): the MLP branch sees dresid; h gets dresid + the branch's gradient.
    const MatView dmlp = branch_grad(l, HookSite::mlp_proj);
    backend_.linear_backward({s.dfch_gelu.mat(N), g.fcproj_w, g.fcproj_b, dmlp, L.fch_gelu.mat(N), w.fcproj_w});
    hook_backward_input(l, HookSite::mlp_proj, dmlp, s.dfch_gelu.mat(N),
                        L.fch_gelu.mat(N));
    hook_backward_output(l, HookSite::mlp_hidden, s.dfch_gelu.mat(N), L.fch.mat(N));
    backend_.gelu_backward({s.dfch.vec(), s.dfch_gelu.vec(), L.fch.vec()});
    hook_backward_output(l, HookSite::mlp_fc, s.dfch.mat(N), L.ln2.mat(N));
    backend_.linear_backward({s.dln.mat(N), g.fc_w, g.fc_b, s.dfch.mat(N), L.ln2.mat(N), w.fc_w});
    hook_backward_input(l, HookSite::mlp_fc, s.dfch.mat(N), s.dln.mat(N), L.ln2.mat(N));
    backend_.layernorm_backward({s.dx_ln.mat(N), g.ln2_w, g.ln2_b, s.dln.mat(N), L.resid2.mat(N), L.ln2_mean.vec(),
                                 L.ln2_rstd.vec(), w.ln2_w});
    backend_.add_inplace(s.dresid.vec(), s.dx_ln.vec());
    // h = x + attn(ln_1(x)).
    const MatView dattn = branch_grad(l, HookSite::attn_proj);
    backend_.linear_backward({s.dbranch.mat(N), g.proj_w, g.proj_b, dattn, L.atty.mat(N), w.proj_w});
    hook_backward_input(l, HookSite::attn_proj, dattn, s.dbranch.mat(N),
                        L.atty.mat(N));
    backend_.attention_backward({s.dqkv.mat(N), s.datt.data(), s.dbranch.mat(N), L.qkv.mat(N), L.att.data(), B_,
                                 T_, config_.n_head});
    hook_backward_output(l, HookSite::attn_qkv, s.dqkv.mat(N), L.ln1.mat(N));
    backend_.linear_backward({s.dln.mat(N), g.qkv_w, g.qkv_b, s.dqkv.mat(N), L.ln1.mat(N), w.qkv_w});
    hook_backward_input(l, HookSite::attn_qkv, s.dqkv.mat(N), s.dln.mat(N), L.ln1.mat(N));
    backend_.layernorm_backward({s.dx_ln.mat(N), g.ln1_w, g.ln1_b, s.dln.mat(N), CMatView(residual_in, N, C),
                                 L.ln1_mean.vec(), L.ln1_rstd.vec(), w.ln1_w});
    backend_.add_inplace(s.dresid.vec(), s.dx_ln.vec());
}

}  // namespace tl
