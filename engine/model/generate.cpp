#include "model/generate.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.hpp"
#include "core/rng.hpp"

namespace tl {

struct KvDecoder::Buffers {
    std::vector<Tensor> k, v;  // per layer (n_positions, C), category kv_cache
    Tensor x, ln, qkv, atty, proj, h, fch, fch_gelu, fcproj, stats, logits;
    Tensor token;
    Tensor prompt;  // (n, C) the soft prompt's virtual embeddings, fed first (empty without one)
    std::unique_ptr<MoeBlocks> moe;  // [MoE] the router and experts' one-row buffers (null for a dense model)
};

// The attached module that supplies a prefix's keys and values (prefix tuning), or nullptr.
static ModelAdapter* prefix_module(const Gpt& model) {
    for (const auto& a : model.adapters())
        if (a->has_prefix_kv()) return a.get();
    return nullptr;
}

KvDecoder::KvDecoder(const Gpt& model) : model_(model), buf_(std::make_unique<Buffers>()) {
    // The cached decode path runs the base ops only (engine/peft merges LoRA and IA3); a soft prompt changes only
    // the input, so it is fed here as the first n positions.
    // A prefix (prefix tuning) hooks attn_qkv but only replaces the virtual rows' keys and values: it is copied
    // into the caches instead (reset()).
    for (const auto& a : model.adapters())
        for (int site = 0; site < kHookSiteCount; ++site)
            if (a->acts_at(HookSite(site)) && !a->has_prefix_kv())
                throw Error("[generate] the model has " + a->name() +
                            " modules attached; merge them into the weights first (peft: merge_and_detach)");
    const GptConfig& c = model.config();
    Backend& be = model.backend();
    const std::int64_t C = c.n_embd;
    for (std::int64_t l = 0; l < c.n_layer; ++l) {
        buf_->k.push_back(be.tensor({c.n_positions, C}, MemCategory::kv_cache));
        buf_->v.push_back(be.tensor({c.n_positions, C}, MemCategory::kv_cache));
    }
    auto ws = [&](Shape s) { return be.tensor(s, MemCategory::workspace); };
    buf_->x = ws({C}), buf_->ln = ws({C}), buf_->qkv = ws({3 * C}), buf_->atty = ws({C}), buf_->proj = ws({C});
    buf_->h = ws({C}), buf_->fch = ws({4 * C}), buf_->fch_gelu = ws({4 * C}), buf_->fcproj = ws({C});
    if (c.is_moe()) buf_->moe = std::make_unique<MoeBlocks>(be, c), buf_->moe->plan(1);
    buf_->stats = ws({2}), buf_->logits = ws({c.vocab_size}), buf_->token = ws({1});
    logits_host_.resize(std::size_t(c.vocab_size));
    if (ModelAdapter* p = prefix_module(model)) {  // the (n, 2 L C) prefix in place of the virtual embeddings
        buf_->prompt = ws({model.virtual_tokens(), 2 * c.n_layer * C});
        p->prefix_kv(model, buf_->prompt.mat(model.virtual_tokens()));
    } else if (model.virtual_tokens() > 0) {
        buf_->prompt = ws({model.virtual_tokens(), C});
        model.virtual_embeddings(buf_->prompt.mat(model.virtual_tokens()));
    }
    reset();
}

KvDecoder::~KvDecoder() = default;

// Virtual token j enters at position j as P_j + wpe[j], exactly as Gpt::forward builds it. A prefix goes into
// the caches as it is (HF GPT-2's past_key_values): layer l's keys and values of position j.
void KvDecoder::reset() {
    len_ = 0;
    const std::int64_t n = model_.virtual_tokens(), C = model_.config().n_embd;
    if (prefix_module(model_)) {
        const std::int64_t W = 2 * model_.config().n_layer * C;
        for (std::size_t l = 0; l < buf_->k.size(); ++l)
            for (std::int64_t j = 0; j < n; ++j) {
                const float* row = buf_->prompt.data() + j * W + 2 * std::int64_t(l) * C;
                model_.backend().copy(VecView(buf_->k[l].data() + j * C, C), CVecView(row, C));
                model_.backend().copy(VecView(buf_->v[l].data() + j * C, C), CVecView(row + C, C));
            }
        len_ = n;
        return;
    }
    for (std::int64_t j = 0; j < n; ++j) {
        model_.backend().add(buf_->x.vec(), CVecView(buf_->prompt.data() + j * C, C),
                             CVecView(model_.wpe().row(j), C));
        run_position();
    }
}

const std::vector<float>& KvDecoder::step(std::int32_t token) {
    const GptConfig& c = model_.config();
    if (len_ >= c.n_positions)
        throw Error("[generate] the context is full (" + std::to_string(c.n_positions) + " tokens)");
    if (token < 0 || token >= c.vocab_size) throw Error("[generate] token id " + std::to_string(token) + " out of range");
    Buffers& b = *buf_;
    auto* tok = reinterpret_cast<std::int32_t*>(b.token.data());
    model_.backend().upload_bytes(tok, &token, sizeof(token));
    model_.backend().embedding_forward({b.x.mat(1), tok, model_.wte(), model_.wpe(), 1, 1, len_});
    return run_position();
}

// Runs the embedded input in b.x at position len_ through the blocks and the head, caching its keys and values.
const std::vector<float>& KvDecoder::run_position() {
    const GptConfig& c = model_.config();
    Backend& be = model_.backend();
    Buffers& b = *buf_;
    const std::int64_t C = c.n_embd;
    const float eps = c.layer_norm_epsilon;
    VecView mean(b.stats.data(), 1), rstd(b.stats.data() + 1, 1);
    for (std::int64_t l = 0; l < c.n_layer; ++l) {
        const LayerWeights w = model_.layer(l);
        be.layernorm_forward({b.ln.mat(1), mean, rstd, b.x.mat(1), w.ln1_w, w.ln1_b, eps});
        be.linear_forward({b.qkv.mat(1), b.ln.mat(1), w.qkv_w, w.qkv_b});
        // Append this position's k and v to the cache, then attend over positions 0..len.
        be.copy(VecView(b.k[std::size_t(l)].data() + len_ * C, C), CVecView(b.qkv.data() + C, C));
        be.copy(VecView(b.v[std::size_t(l)].data() + len_ * C, C), CVecView(b.qkv.data() + 2 * C, C));
        be.attention_decode({b.atty.vec(), CVecView(b.qkv.data(), C), CMatView(b.k[std::size_t(l)].data(), len_ + 1, C),
                             CMatView(b.v[std::size_t(l)].data(), len_ + 1, C), c.n_head});
        be.linear_forward({b.proj.mat(1), b.atty.mat(1), w.proj_w, w.proj_b});
        be.add(b.h.vec(), b.x.vec(), b.proj.vec());
        be.layernorm_forward({b.ln.mat(1), mean, rstd, b.h.mat(1), w.ln2_w, w.ln2_b, eps});
        if (b.moe) {  // [MoE] router + top-k experts on this one row
            b.moe->forward(l, b.fcproj.mat(1), b.ln.mat(1), model_.moe_weights(l));
        } else {
            be.linear_forward({b.fch.mat(1), b.ln.mat(1), w.fc_w, w.fc_b});
            be.gelu_forward({b.fch_gelu.vec(), b.fch.vec()});
            be.linear_forward({b.fcproj.mat(1), b.fch_gelu.mat(1), w.fcproj_w, w.fcproj_b});
        }
        be.add(b.x.vec(), b.h.vec(), b.fcproj.vec());
    }
    const auto& P = model_.params();
    const ParamInfo& lnf_w = P.at("transformer.ln_f.weight");
    const ParamInfo& lnf_b = P.at("transformer.ln_f.bias");
    be.layernorm_forward({b.ln.mat(1), mean, rstd, b.x.mat(1), CVecView(model_.param(lnf_w)),
                          CVecView(model_.param(lnf_b)), eps});
    be.gemm({b.logits.mat(1), b.ln.mat(1), model_.wte(), Trans::no, Trans::yes, 1.0f, 0.0f});
    be.copy_to_host(logits_host_.data(), b.logits.vec());
    ++len_;
    return logits_host_;
}

std::int32_t sample_token(const std::vector<float>& logits, const SampleOptions& opt, std::uint64_t draw_index) {
    const auto V = static_cast<std::int32_t>(logits.size());
    if (opt.temperature <= 0.0f)
        return static_cast<std::int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    std::vector<std::int32_t> ids(static_cast<std::size_t>(V));
    std::iota(ids.begin(), ids.end(), 0);
    std::int32_t keep = V;
    if (opt.top_k > 0 && opt.top_k < V) {
        keep = opt.top_k;
        std::partial_sort(ids.begin(), ids.begin() + keep, ids.end(),
                          [&](std::int32_t a, std::int32_t b) { return logits[std::size_t(a)] > logits[std::size_t(b)]; });
    }
    float maxv = -INFINITY;
    for (std::int32_t i = 0; i < keep; ++i) maxv = std::max(maxv, logits[std::size_t(ids[std::size_t(i)])]);
    std::vector<double> p(static_cast<std::size_t>(keep));
    double sum = 0;
    for (std::int32_t i = 0; i < keep; ++i)
        sum += p[std::size_t(i)] = std::exp((logits[std::size_t(ids[std::size_t(i)])] - maxv) / opt.temperature);
    Rng rng(opt.seed, /*stream=*/draw_index);
    double u = rng.uniform() * sum;
    for (std::int32_t i = 0; i < keep; ++i) {
        u -= p[std::size_t(i)];
        if (u < 0) return ids[std::size_t(i)];
    }
    return ids[std::size_t(keep - 1)];
}

std::vector<std::int32_t> generate(const Gpt& model, const std::vector<std::int32_t>& prompt, const SampleOptions& opt) {
    if (prompt.empty()) throw Error("[generate] the prompt is empty; give at least one token");
    const std::int64_t ctx = model.config().n_positions, n = model.virtual_tokens();
    if (n + std::int64_t(prompt.size()) >= ctx)
        throw Error("[generate] the prompt has " + std::to_string(prompt.size()) + " tokens" +
                    (n > 0 ? " after " + std::to_string(n) + " virtual tokens" : std::string()) +
                    "; the context holds " + std::to_string(ctx) + " (shorten the prompt)");
    KvDecoder dec(model);
    const std::vector<float>* logits = nullptr;
    for (std::int32_t t : prompt) logits = &dec.step(t);
    std::vector<std::int32_t> out;
    for (int i = 0; i < opt.max_new_tokens; ++i) {
        const std::int32_t next = sample_token(*logits, opt, std::uint64_t(i));
        if (std::find(opt.stop_tokens.begin(), opt.stop_tokens.end(), next) != opt.stop_tokens.end()) break;
        out.push_back(next);
        if (dec.length() >= ctx) break;
        logits = &dec.step(next);
    }
    return out;
}

}  // namespace tl
