// GPT-2 forward and backward over the Backend's ops. Buffers are planned once per (B, T) and counted in the
// ledger: activations kept for backward under `activations`, gradient scratch under `workspace`.
//
//   x0 = wte[tokens] + wpe[t]
//   per layer l:  h = x + attn(ln_1(x));  x' = h + mlp(ln_2(h))          (pre-LN residual stream)
//   logits = ln_f(x_L) wte^T  (tied);  loss_i = CE(logits_i, targets_i)
// [PEFT hooks] With no adapter attached the hook calls are empty loops and the ops are exactly the base ones.
// [soft prompts] With n virtual tokens each row's blocks see n + T positions: x0 = [P + wpe[0..n) ; wte[tokens] +
// wpe[n..n+T)]; ln_f and the head run on the T real rows only (gathered), so logits and losses keep (B*T) rows.
// [MoE] With num_local_experts > 0 each block's MLP is a router + top-k experts (model/moe.hpp); the loss adds
// router_aux_loss_coef times the load-balancing loss. A dense config never enters those branches.
#include "model/gpt.hpp"

#include <algorithm>
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
    Tensor prompt, head_in;  // soft prompts only: the (n, C) virtual embeddings; the real rows of x_L (B*T, C)
};

struct Gpt::Scratch {
    Tensor dresid, dln, dx_ln, dbranch, dqkv, datt, dfch, dfch_gelu, dlogits;
    Tensor dsite;    // (N, C): a residual branch's dy, copied so a hook may rewrite it (only with adapters)
    Tensor dprompt;  // (n, C): d loss / d the virtual embeddings (soft prompts only)
};

Gpt::Gpt(Backend& backend, const GptConfig& config) : backend_(backend), config_(config), params_(config) {
    validate_config(config_, "model config");
    weights_ = backend_.tensor({params_.total()}, MemCategory::weights);
    base_total_ = params_.total();
    flat_total_ = base_total_;
    base_entries_ = params_.entries().size();
    if (config_.is_moe()) moe_ = std::make_unique<MoeBlocks>(backend_, config_);
}

Gpt::~Gpt() = default;

void Gpt::init_gpt2(std::uint64_t seed) {
    const float resid_std = 0.02f / std::sqrt(2.0f * float(config_.n_layer));
    std::vector<float> host;
    for (std::size_t i = 0; i < params_.entries().size(); ++i) {
        const ParamInfo& p = params_.entries()[i];
        host.assign(std::size_t(p.numel()), 0.0f);
        Rng rng(seed, /*stream=*/i);
        const bool is_resid_proj = p.name.ends_with("c_proj.weight");  // attn, mlp and MoE experts
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
    if (grads_.empty()) grads_ = backend_.tensor({flat_total_}, MemCategory::grads);
    for (AdapterStorage& st : adapter_storage_)
        if (st.grads.empty()) st.grads = backend_.tensor({st.n}, MemCategory::grads);
}

void Gpt::zero_grads() {
    TL_ASSERT(has_grads(), "[model] zero_grads before enable_grads");
    backend_.fill_zero(grads_.vec());
    for (AdapterStorage& st : adapter_storage_) backend_.fill_zero(st.grads.vec());
}

static VecView view_of(const Tensor& w, const ParamInfo& p) {
    TL_ASSERT(!p.is_in_store && p.offset >= 0 && p.offset + p.numel() <= w.numel(),
              "[model] " + p.name + (p.is_in_store ? " is stored quantized: read it through layer()"
                                                   : " lies outside its buffer"));
    return {w.data() + p.offset, p.numel()};
}

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
    TL_ASSERT(!p.is_in_store, "[model] " + p.name + " is stored quantized and frozen: it has no gradient");
    if (p.offset < base_total_) return view_of(grads_, p);
    const AdapterStorage& st = storage_of(p);
    TL_ASSERT(!st.grads.empty(), "[model] gradient of " + p.name + " before enable_grads");
    return {st.grads.data() + (p.offset - st.first), p.numel()};
}

ModelAdapter& Gpt::attach(std::unique_ptr<ModelAdapter> adapter, std::uint64_t seed) {
    TL_ASSERT(adapter != nullptr, "[model] attach of a null adapter");
    if (config_.is_moe())
        for (HookSite site : {HookSite::mlp_fc, HookSite::mlp_hidden, HookSite::mlp_proj})
            if (adapter->acts_at(site))
                throw Error("[model] " + adapter->name() + " acts on the MLP, which this mixture-of-experts model "
                            "replaces by experts; target the attention (attn.c_attn, attn.c_proj) instead");
    const std::int64_t n = adapter->virtual_tokens();
    if (n > 0 && virtual_tokens() > 0)
        throw Error("[model] a soft prompt (" + std::to_string(virtual_tokens()) +
                    " virtual tokens) is already attached; detach it before attaching " + adapter->name());
    if (n < 0 || n >= config_.n_positions)
        throw Error("[model] " + adapter->name() + " asks for " + std::to_string(n) + " virtual tokens; this model's " +
                    std::to_string(config_.n_positions) + " positions leave room for 0.." +
                    std::to_string(config_.n_positions - 1));
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

bool Gpt::has_hooks() const {
    for (int s = 0; s < kHookSiteCount; ++s)
        if (is_hooked(HookSite(s))) return true;
    return false;
}

std::int64_t Gpt::virtual_tokens() const {
    for (const auto& a : adapters_)
        if (a->virtual_tokens() > 0) return a->virtual_tokens();
    return 0;
}

// Const because the KV-cache decoder calls it on a const model; the module may keep what its backward needs.
void Gpt::virtual_embeddings(MatView out) const {
    const std::int64_t n = virtual_tokens();
    TL_ASSERT(n > 0 && out.rows == n && out.cols == config_.n_embd, "[model] virtual_embeddings: shape mismatch");
    for (const auto& a : adapters_)
        if (a->virtual_tokens() > 0) return a->prompt_forward(*this, out);
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
static Layer layer_views(const Tensor& flat, const ParamTable& params, std::int64_t l, const GptConfig& cfg) {
    const std::int64_t C = cfg.n_embd;
    const std::string pre = "transformer.h." + std::to_string(l) + ".";
    auto v = [&](const char* n) { return V(view_of(flat, params.at(pre + n))); };
    auto m = [&](const char* n, std::int64_t rows) {
        const ParamInfo& p = params.at(pre + n);
        if (p.is_in_store) return M();  // [QLoRA] Gpt::layer fills it from the decode workspace
        const VecView x = view_of(flat, p);
        return M(x.data, rows, x.n / rows);
    };
    if (cfg.is_moe())  // [MoE] no dense MLP: the mlp views stay null
        return {v("ln_1.weight"), v("ln_1.bias"), m("attn.c_attn.weight", C), v("attn.c_attn.bias"),
                m("attn.c_proj.weight", C), v("attn.c_proj.bias"), v("ln_2.weight"), v("ln_2.bias"),
                M(), V(), M(), V()};
    return {v("ln_1.weight"), v("ln_1.bias"), m("attn.c_attn.weight", C), v("attn.c_attn.bias"),
            m("attn.c_proj.weight", C), v("attn.c_proj.bias"), v("ln_2.weight"), v("ln_2.bias"),
            m("mlp.c_fc.weight", C), v("mlp.c_fc.bias"), m("mlp.c_proj.weight", 4 * C), v("mlp.c_proj.bias")};
}

// [MoE] Views of layer l's router and experts in a flat buffer; frozen tensors get null views when asked.
template <class Out, class V, class M>
static Out moe_views(const Tensor& flat, const ParamTable& params, std::int64_t l, const GptConfig& cfg,
                     bool skip_frozen) {
    const std::int64_t C = cfg.n_embd;
    auto pick = [&](const std::string& name) -> const ParamInfo* {
        const ParamInfo& p = params.at(name);
        return skip_frozen && !p.is_trainable ? nullptr : &p;
    };
    auto v = [&](const std::string& n) { const ParamInfo* p = pick(n); return p ? V(view_of(flat, *p)) : V(); };
    auto m = [&](const std::string& n, std::int64_t rows) {
        const ParamInfo* p = pick(n);
        return p ? M(flat.data() + p->offset, rows, p->numel() / rows) : M();
    };
    Out out;
    out.gate = m(moe_gate_name(l), cfg.num_local_experts);
    for (std::int64_t e = 0; e < cfg.num_local_experts; ++e)
        out.experts.push_back({m(moe_expert_name(l, e, "c_fc.weight"), C), v(moe_expert_name(l, e, "c_fc.bias")),
                               m(moe_expert_name(l, e, "c_proj.weight"), 4 * C),
                               v(moe_expert_name(l, e, "c_proj.bias"))});
    return out;
}

MoeWeights Gpt::moe_weights(std::int64_t l) const {
    return moe_views<MoeWeights, CVecView, CMatView>(weights_, params_, l, config_, false);
}

MoeGrads Gpt::moe_grads(std::int64_t l) const {
    return moe_views<MoeGrads, VecView, MatView>(grads_, params_, l, config_, true);
}

LayerWeights Gpt::layer(std::int64_t l) const {
    LayerWeights w = layer_views<LayerWeights, CVecView, CMatView>(weights_, params_, l, config_);
    if (store_) decode_stored(l, w);
    return w;
}

// [QLoRA] Layer l's stored matrices, decoded one after another into stored_ws_. Forward runs layers 0..L-1 and
// backward L-1..0, so the backward's first layer is still decoded.
void Gpt::decode_stored(std::int64_t l, LayerWeights& w) const {
    const std::int64_t C = config_.n_embd;
    const std::string pre = "transformer.h." + std::to_string(l) + ".";
    const bool is_decoded = decoded_layer_ == l;
    std::int64_t at = 0;
    std::vector<float> host;
    auto fill = [&](CMatView& m, const char* n, std::int64_t rows) {
        const ParamInfo& p = params_.at(pre + n);
        if (!p.is_in_store) return;
        float* dst = stored_ws_.data() + at;
        at += p.numel();
        m = CMatView(dst, rows, p.numel() / rows);
        if (is_decoded) return;
        if (backend_.device() == Device::cpu) return store_->decode(p.name, {dst, std::size_t(p.numel())});
        host.resize(std::size_t(p.numel()));
        store_->decode(p.name, host);
        backend_.copy_from_host(VecView(dst, p.numel()), host.data());
    };
    fill(w.qkv_w, "attn.c_attn.weight", C);
    fill(w.proj_w, "attn.c_proj.weight", C);
    fill(w.fc_w, "mlp.c_fc.weight", C);
    fill(w.fcproj_w, "mlp.c_proj.weight", 4 * C);
    decoded_layer_ = l;
}

void Gpt::move_to_store(std::unique_ptr<FrozenMatrixStore> store) {
    TL_ASSERT(store != nullptr, "[model] move_to_store of a null store");
    if (store_) throw Error("[model] the base matrices are already stored as " + store_->describe());
    if (config_.is_moe())
        throw Error("[model] a quantized frozen base (QLoRA) is for dense models; this one is a mixture of experts");
    // New offsets: the kept entries packed from 0 (the new flat buffer), the stored ones after them (no buffer).
    std::int64_t kept = 0;
    for (std::size_t i = 0; i < base_entries_; ++i) {
        const ParamInfo& p = params_.entries()[i];
        TL_ASSERT(!store->holds(p.name) || p.role == ParamRole::weight, "[model] only matrices can be stored");
        if (!store->holds(p.name)) kept += p.numel();
    }
    Tensor fresh = backend_.tensor({kept}, MemCategory::weights);
    std::int64_t at = 0, stored_at = kept, widest_layer = 0, layer_sum = 0;
    std::string layer_prefix;
    for (std::size_t i = 0; i < base_entries_; ++i) {
        ParamInfo& p = params_.entries()[i];
        if (!store->holds(p.name)) {
            backend_.copy(VecView(fresh.data() + at, p.numel()), param(p));
            p.offset = at;
            at += p.numel();
            continue;
        }
        const std::string prefix = p.name.substr(0, p.name.find('.', std::string("transformer.h.").size()));
        if (prefix != layer_prefix) layer_prefix = prefix, layer_sum = 0;
        layer_sum += p.numel();
        widest_layer = std::max(widest_layer, layer_sum);
        p.offset = stored_at;
        stored_at += p.numel();
        p.is_in_store = true;
        p.is_trainable = false;
    }
    weights_ = std::move(fresh);
    flat_total_ = kept;
    if (has_grads()) grads_ = backend_.tensor({flat_total_}, MemCategory::grads);
    stored_ws_ = backend_.tensor({std::max<std::int64_t>(widest_layer, 1)}, MemCategory::workspace);
    decoded_layer_ = -1;
    store_ = std::move(store);
}

LayerGrads Gpt::layer_grads(std::int64_t l) const {
    return layer_views<LayerGrads, VecView, MatView>(grads_, params_, l, config_);
}

CMatView Gpt::wte() const {
    return {weights_.data() + params_.at("transformer.wte.weight").offset, config_.vocab_size, config_.n_embd};
}
CMatView Gpt::wpe() const {
    return {weights_.data() + params_.at("transformer.wpe.weight").offset, config_.n_positions, config_.n_embd};
}

// Blocks run on N = B (n + T) rows; the head (ln_f, logits, loss) on Nh = B T real rows.
void Gpt::plan_buffers(std::int64_t B, std::int64_t T, std::int64_t n) {
    if (acts_ && planned_B_ == B && planned_T_ == T && planned_n_ == n) return;
    acts_.reset();
    scratch_.reset();
    const std::int64_t Ts = n + T, N = B * Ts, Nh = B * T;
    const std::int64_t C = config_.n_embd, V = config_.vocab_size, H = config_.n_head;
    auto act = [&](Shape s) { return backend_.tensor(s, MemCategory::activations); };
    auto ws = [&](Shape s) { return backend_.tensor(s, MemCategory::workspace); };
    acts_ = std::make_unique<Activations>();
    Activations& a = *acts_;
    a.tokens = act({Nh});
    a.targets = act({Nh});
    a.ce_weights = act({Nh});
    a.encoded = act({N, C});
    a.layers.resize(std::size_t(config_.n_layer));
    for (auto& L : a.layers) {
        L.ln1 = act({N, C}), L.ln1_mean = act({N}), L.ln1_rstd = act({N}), L.qkv = act({N, 3 * C});
        L.atty = act({N, C}), L.att = act({B, H, Ts, Ts}), L.attproj = act({N, C}), L.resid2 = act({N, C});
        L.ln2 = act({N, C}), L.ln2_mean = act({N}), L.ln2_rstd = act({N});
        if (!moe_) L.fch = act({N, 4 * C}), L.fch_gelu = act({N, 4 * C});  // [MoE] the experts keep their own
        L.fcproj = act({N, C}), L.resid3 = act({N, C});
    }
    a.lnf = act({Nh, C}), a.lnf_mean = act({Nh}), a.lnf_rstd = act({Nh});
    a.logits = act({Nh, V}), a.losses = act({Nh});
    if (n > 0) a.prompt = act({n, C}), a.head_in = act({Nh, C});
    scratch_ = std::make_unique<Scratch>();
    Scratch& s = *scratch_;
    s.dresid = ws({N, C}), s.dln = ws({N, C}), s.dx_ln = ws({N, C}), s.dbranch = ws({N, C});
    s.dqkv = ws({N, 3 * C}), s.datt = ws({B, H, Ts, Ts});
    if (!moe_) s.dfch = ws({N, 4 * C}), s.dfch_gelu = ws({N, 4 * C});
    else moe_->plan(N);
    s.dlogits = ws({Nh, V});
    if (has_adapters()) s.dsite = ws({N, C});
    if (n > 0) s.dprompt = ws({n, C});
    planned_B_ = B, planned_T_ = T, planned_n_ = n;
}

const float* Gpt::layer_input(std::int64_t l) const {
    return l == 0 ? acts_->encoded.data() : acts_->layers[std::size_t(l - 1)].resid3.data();
}

const float* Gpt::head_input() const {
    return n_ == 0 ? layer_input(config_.n_layer) : acts_->head_in.data();
}

// x0 = wte[tokens] + wpe[t]; with a soft prompt each row is [P + wpe[0..n) ; wte[tokens] + wpe[n..n+T)].
void Gpt::embed_forward() {
    Activations& a = *acts_;
    const std::int64_t C = config_.n_embd, Ts = n_ + T_;
    const auto* tok = reinterpret_cast<const std::int32_t*>(a.tokens.data());
    if (n_ == 0) return backend_.embedding_forward({a.encoded.mat(B_ * T_), tok, wte(), wpe(), B_, T_, 0});
    virtual_embeddings(a.prompt.mat(n_));
    for (std::int64_t b = 0; b < B_; ++b) {
        float* row = a.encoded.data() + b * Ts * C;
        backend_.add(VecView(row, n_ * C), a.prompt.vec(), CVecView(wpe().data, n_ * C));
        backend_.embedding_forward({MatView(row + n_ * C, T_, C), tok + b * T_, wte(), wpe(), 1, T_, n_});
    }
}

// On entry s.dresid holds d loss / d x0 (all N rows). The virtual rows of every batch row share one prompt, so
// dP = sum over b of their gradients; the real rows go to wte and wpe as in the plain model.
void Gpt::embed_backward() {
    Activations& a = *acts_;
    Scratch& s = *scratch_;
    const std::int64_t C = config_.n_embd, Ts = n_ + T_;
    if (n_ > 0) {
        backend_.copy(s.dprompt.vec(), CVecView(s.dresid.data(), n_ * C));
        for (std::int64_t b = 1; b < B_; ++b)
            backend_.add_inplace(s.dprompt.vec(), CVecView(s.dresid.data() + b * Ts * C, n_ * C));
        for (const auto& m : adapters_)
            if (m->virtual_tokens() > 0) m->prompt_backward(*this, s.dprompt.mat(n_));
    }
    const ParamInfo& wte_p = params_.at("transformer.wte.weight");
    const ParamInfo& wpe_p = params_.at("transformer.wpe.weight");
    if (!wte_p.is_trainable && !wpe_p.is_trainable) return;  // PEFT: nothing to do
    const MatView dwte(grads_.data() + wte_p.offset, config_.vocab_size, C);
    const MatView dwpe(grads_.data() + wpe_p.offset, config_.n_positions, C);
    const auto* tok = reinterpret_cast<const std::int32_t*>(a.tokens.data());
    if (n_ == 0) return backend_.embedding_backward({dwte, dwpe, s.dresid.mat(B_ * T_), tok, B_, T_, 0});
    for (std::int64_t b = 0; b < B_; ++b) {
        const float* row = s.dresid.data() + b * Ts * C;
        backend_.embedding_backward({dwte, dwpe, CMatView(row + n_ * C, T_, C), tok + b * T_, 1, T_, n_});
        backend_.add_inplace(VecView(dwpe.data, n_ * C), CVecView(row, n_ * C));  // the virtual rows' positions
    }
}

void Gpt::forward(const std::int32_t* tokens, const std::int32_t* targets, std::int64_t B, std::int64_t T) {
    const std::int64_t n = virtual_tokens();
    if (n == 0 && (T < 1 || T > config_.n_positions || B < 1))
        throw Error("[model] forward needs 1 <= T <= n_positions (" + std::to_string(config_.n_positions) +
                    ") and B >= 1; got B " + std::to_string(B) + ", T " + std::to_string(T));
    if (n > 0 && (T < 1 || n + T > config_.n_positions || B < 1))
        throw Error("[model] forward with " + std::to_string(n) + " virtual tokens needs 1 <= T <= n_positions (" +
                    std::to_string(config_.n_positions) + ") - " + std::to_string(n) + " = " +
                    std::to_string(config_.n_positions - n) + " and B >= 1; got B " + std::to_string(B) + ", T " +
                    std::to_string(T) + " (use fewer virtual tokens or shorter rows)");
    for (std::int64_t i = 0; i < B * T; ++i) {
        if (tokens[i] < 0 || tokens[i] >= config_.vocab_size)
            throw Error("[model] token id " + std::to_string(tokens[i]) + " at position " + std::to_string(i) +
                        " is outside the vocabulary (0.." + std::to_string(config_.vocab_size - 1) + ")");
        if (targets && (targets[i] < 0 || targets[i] >= config_.vocab_size))
            throw Error("[model] target id " + std::to_string(targets[i]) + " is outside the vocabulary");
    }
    plan_buffers(B, T, n);
    B_ = B, T_ = T, n_ = n;
    has_targets_ = targets != nullptr;
    Activations& a = *acts_;
    const std::int64_t Nh = B * T, C = config_.n_embd, V = config_.vocab_size, Ts = n + T;
    auto* tok_dev = reinterpret_cast<std::int32_t*>(a.tokens.data());
    backend_.upload_bytes(tok_dev, tokens, sizeof(std::int32_t) * std::size_t(Nh));
    embed_forward();
    for (std::int64_t l = 0; l < config_.n_layer; ++l) forward_layer(l, layer_input(l));
    for (std::int64_t b = 0; b < B && n > 0; ++b)  // gather the real rows for the head
        backend_.copy(VecView(a.head_in.data() + b * T * C, T * C),
                      CVecView(layer_input(config_.n_layer) + (b * Ts + n) * C, T * C));
    backend_.layernorm_forward({a.lnf.mat(Nh), a.lnf_mean.vec(), a.lnf_rstd.vec(), CMatView(head_input(), Nh, C),
                                CVecView(view_of(weights_, params_.at("transformer.ln_f.weight"))),
                                CVecView(view_of(weights_, params_.at("transformer.ln_f.bias"))),
                                config_.layer_norm_epsilon});
    backend_.gemm({a.logits.mat(Nh), a.lnf.mat(Nh), wte(), Trans::no, Trans::yes, 1.0f, 0.0f});
    if (targets) {
        auto* tgt_dev = reinterpret_cast<std::int32_t*>(a.targets.data());
        backend_.upload_bytes(tgt_dev, targets, sizeof(std::int32_t) * std::size_t(Nh));
        backend_.cross_entropy_forward({a.losses.vec(), CMatView(a.logits.data(), Nh, V), tgt_dev});
    }
}

void Gpt::forward_layer(std::int64_t l, const float* residual_in) {
    const std::int64_t N = B_ * (n_ + T_), C = config_.n_embd;
    const LayerWeights w = layer(l);
    auto& L = acts_->layers[std::size_t(l)];
    const CMatView x(residual_in, N, C);
    backend_.layernorm_forward({L.ln1.mat(N), L.ln1_mean.vec(), L.ln1_rstd.vec(), x, w.ln1_w, w.ln1_b,
                                config_.layer_norm_epsilon});
    backend_.linear_forward({L.qkv.mat(N), L.ln1.mat(N), w.qkv_w, w.qkv_b});
    hook_forward(l, HookSite::attn_qkv, L.qkv.mat(N), L.ln1.mat(N));
    backend_.attention_forward({L.atty.mat(N), L.att.data(), L.qkv.mat(N), B_, n_ + T_, config_.n_head});
    backend_.linear_forward({L.attproj.mat(N), L.atty.mat(N), w.proj_w, w.proj_b});
    hook_forward(l, HookSite::attn_proj, L.attproj.mat(N), L.atty.mat(N));
    backend_.add_layernorm_forward(L.resid2.vec(), CVecView(residual_in, N * C), L.attproj.vec(),
                                   {L.ln2.mat(N), L.ln2_mean.vec(), L.ln2_rstd.vec(), L.resid2.mat(N), w.ln2_w,
                                    w.ln2_b, config_.layer_norm_epsilon});
    if (moe_) {  // [MoE] router + top-k experts instead of the MLP (model/moe.hpp)
        moe_->forward(l, L.fcproj.mat(N), L.ln2.mat(N), moe_weights(l));
        return backend_.add(L.resid3.vec(), L.resid2.vec(), L.fcproj.vec());
    }
    if (is_hooked(HookSite::mlp_fc)) {  // a hook changes c_fc's output before the GELU: no fusion
        backend_.linear_forward({L.fch.mat(N), L.ln2.mat(N), w.fc_w, w.fc_b});
        hook_forward(l, HookSite::mlp_fc, L.fch.mat(N), L.ln2.mat(N));
        backend_.gelu_forward({L.fch_gelu.vec(), L.fch.vec()});
    } else {
        backend_.linear_gelu_forward({L.fch.mat(N), L.ln2.mat(N), w.fc_w, w.fc_b}, L.fch_gelu.vec());
    }
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
    const std::int64_t Nh = B_ * T_, Ts = n_ + T_, C = config_.n_embd, V = config_.vocab_size;
    backend_.upload_bytes(a.ce_weights.data(), weights, sizeof(float) * std::size_t(Nh));
    const auto* tgt = reinterpret_cast<const std::int32_t*>(a.targets.data());
    backend_.cross_entropy_backward({s.dlogits.mat(Nh), a.logits.mat(Nh), tgt, a.ce_weights.vec(), norm});

    // Tied head: logits = lnf wte^T  =>  dwte += dlogits^T lnf,  dlnf = dlogits wte.
    const ParamInfo& wte_p = params_.at("transformer.wte.weight");
    const MatView dwte(grads_.data() + wte_p.offset, V, C);
    if (wte_p.is_trainable) backend_.gemm({dwte, s.dlogits.mat(Nh), a.lnf.mat(Nh), Trans::yes, Trans::no, 1.0f, 1.0f});
    const MatView dlnf(s.dln.data(), Nh, C);
    backend_.gemm({dlnf, s.dlogits.mat(Nh), wte(), Trans::no, Trans::no, 1.0f, 0.0f});
    // Without a soft prompt ln_f's input gradient is dresid itself; with one it is scattered to the real rows
    // and the virtual rows start at zero (the head never read them).
    const MatView dhead = n_ == 0 ? s.dresid.mat(Nh) : MatView(s.dx_ln.data(), Nh, C);
    backend_.layernorm_backward({dhead, view_of(grads_, params_.at("transformer.ln_f.weight")),
                                 view_of(grads_, params_.at("transformer.ln_f.bias")), dlnf,
                                 CMatView(head_input(), Nh, C), a.lnf_mean.vec(), a.lnf_rstd.vec(),
                                 CVecView(view_of(weights_, params_.at("transformer.ln_f.weight")))});
    if (n_ > 0) {
        backend_.fill_zero(s.dresid.vec());
        for (std::int64_t b = 0; b < B_; ++b)
            backend_.copy(VecView(s.dresid.data() + (b * Ts + n_) * C, T_ * C),
                          CVecView(dhead.data + b * T_ * C, T_ * C));
    }
    if (moe_) {  // [MoE] loss += coef * (this micro-batch's weight / norm) * mean over layers of the aux loss
        double w_sum = 0;
        for (std::int64_t i = 0; i < Nh; ++i) w_sum += weights[i];
        moe_aux_scale_ = double(config_.router_aux_loss_coef) * w_sum / double(norm) / double(config_.n_layer);
    }
    for (std::int64_t l = config_.n_layer - 1; l >= 0; --l) backward_layer(l, layer_input(l));
    embed_backward();
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
    if (config_.is_moe()) return g;  // [MoE] experts: moe_grads
    if (frozen("mlp.c_fc.weight")) g.fc_w = {};
    if (frozen("mlp.c_fc.bias")) g.fc_b = {};
    if (frozen("mlp.c_proj.weight")) g.fcproj_w = {};
    if (frozen("mlp.c_proj.bias")) g.fcproj_b = {};
    return g;
}

// A residual branch's output gradient is s.dresid itself; a hook that rewrites dy gets a copy instead.
MatView Gpt::branch_grad(std::int64_t l, HookSite site) {
    const std::int64_t N = B_ * (n_ + T_);
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
    const std::int64_t N = B_ * (n_ + T_), C = config_.n_embd;
    const LayerWeights w = layer(l);
    const LayerGrads g = trainable_layer_grads(l);
    auto& L = acts_->layers[std::size_t(l)];
    Scratch& s = *scratch_;
    // x' = h + mlp(ln_2(h)): the MLP branch sees dresid; h gets dresid + the branch's gradient.
    const MatView dmlp = branch_grad(l, HookSite::mlp_proj);
    if (moe_) {  // [MoE] d ln_2 output, through the experts and the router (+ the load-balancing term)
        moe_->backward(l, s.dln.mat(N), dmlp, L.ln2.mat(N), moe_weights(l), moe_grads(l), moe_aux_scale_);
    } else {
        backend_.linear_backward(
            {s.dfch_gelu.mat(N), g.fcproj_w, g.fcproj_b, dmlp, L.fch_gelu.mat(N), w.fcproj_w});
        hook_backward_input(l, HookSite::mlp_proj, dmlp, s.dfch_gelu.mat(N), L.fch_gelu.mat(N));
        hook_backward_output(l, HookSite::mlp_hidden, s.dfch_gelu.mat(N), L.fch.mat(N));
        backend_.gelu_backward({s.dfch.vec(), s.dfch_gelu.vec(), L.fch.vec()});
        hook_backward_output(l, HookSite::mlp_fc, s.dfch.mat(N), L.ln2.mat(N));
        backend_.linear_backward({s.dln.mat(N), g.fc_w, g.fc_b, s.dfch.mat(N), L.ln2.mat(N), w.fc_w});
        hook_backward_input(l, HookSite::mlp_fc, s.dfch.mat(N), s.dln.mat(N), L.ln2.mat(N));
    }
    backend_.layernorm_backward({s.dx_ln.mat(N), g.ln2_w, g.ln2_b, s.dln.mat(N), L.resid2.mat(N), L.ln2_mean.vec(),
                                 L.ln2_rstd.vec(), w.ln2_w});
    backend_.add_inplace(s.dresid.vec(), s.dx_ln.vec());
    // h = x + attn(ln_1(x)).
    const MatView dattn = branch_grad(l, HookSite::attn_proj);
    backend_.linear_backward({s.dbranch.mat(N), g.proj_w, g.proj_b, dattn, L.atty.mat(N), w.proj_w});
    hook_backward_input(l, HookSite::attn_proj, dattn, s.dbranch.mat(N),
                        L.atty.mat(N));
    backend_.attention_backward({s.dqkv.mat(N), s.datt.data(), s.dbranch.mat(N), L.qkv.mat(N), L.att.data(), B_,
                                 n_ + T_, config_.n_head});
    hook_backward_output(l, HookSite::attn_qkv, s.dqkv.mat(N), L.ln1.mat(N));
    backend_.linear_backward({s.dln.mat(N), g.qkv_w, g.qkv_b, s.dqkv.mat(N), L.ln1.mat(N), w.qkv_w});
    hook_backward_input(l, HookSite::attn_qkv, s.dqkv.mat(N), s.dln.mat(N), L.ln1.mat(N));
    backend_.layernorm_backward({s.dx_ln.mat(N), g.ln1_w, g.ln1_b, s.dln.mat(N), CMatView(residual_in, N, C),
                                 L.ln1_mean.vec(), L.ln1_rstd.vec(), w.ln1_w});
    backend_.add_inplace(s.dresid.vec(), s.dx_ln.vec());
}

}  // namespace tl
