// LoRA modules on Conv1D linears: forward/backward pairs over the Backend's GEMMs, merge and unmerge.
// Layouts: x (N, in), W (in, out) as Hugging Face stores Conv1D, A (r, in), B (out, r), y (N, out).
#include "peft/lora.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "core/rng.hpp"

namespace tl {

float LoraConfig::scale() const {
    return scaling == LoraScaling::rslora ? alpha / std::sqrt(float(r)) : alpha / float(r);
}

static bool target_matches(std::string_view path, std::string_view target) {
    return path == target || (path.size() > target.size() && path.ends_with(target) &&
                              path[path.size() - target.size() - 1] == '.');
}

LoraAdapter::LoraAdapter(const Gpt& model, const LoraConfig& config) : config_(config), scale_(config.scale()) {
    if (config.targets.empty()) throw Error("[peft] LoRA needs at least one target module (e.g. c_attn)");
    const std::int64_t L = model.config().n_layer;
    for (const std::string& t : config.targets) {
        bool is_used = false;
        for (std::int64_t l = 0; l < L; ++l)
            for (const LinearSite& s : kLinearSites) is_used = is_used || target_matches(module_path(l, s.module), t);
        if (!is_used)
            throw Error("[peft] LoRA target '" + t + "' matches no linear of GPT-2; targets are module names: "
                        "c_attn, c_proj, c_fc (or attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj)");
    }
    for (std::int64_t l = 0; l < L; ++l)
        for (const LinearSite& s : kLinearSites) {
            Module m{l, s.site, module_path(l, s.module)};
            if (std::none_of(config.targets.begin(), config.targets.end(),
                             [&](const std::string& t) { return target_matches(m.path, t); }))
                continue;
            const Shape& w = model.params().at(m.path + ".weight").shape;  // (in, out)
            m.in = w[0], m.out = w[1];
            if (config.r < 1 || config.r > std::min(m.in, m.out))
                throw Error("[peft] LoRA rank " + std::to_string(config.r) + " is invalid for " + m.path + " (" +
                            std::to_string(m.in) + " -> " + std::to_string(m.out) + "): use 1 <= r <= " +
                            std::to_string(std::min(m.in, m.out)));
            modules_.push_back(std::move(m));
        }
}

std::vector<AdapterParam> LoraAdapter::params() const {
    std::vector<AdapterParam> out;
    for (const Module& m : modules_) {
        out.push_back({m.a_name(), {config_.r, m.in}, ParamRole::weight});
        out.push_back({m.b_name(), {m.out, config_.r}, ParamRole::weight});
    }
    return out;
}

// PEFT: nn.init.kaiming_uniform_(A, a=sqrt(5)) -> U(-b, b), b = gain sqrt(3 / fan_in), gain = sqrt(2 / (1 + 5)),
// so b = 1 / sqrt(in). B stays zero (the model zero-fills new parameters).
void LoraAdapter::init(Gpt& model, std::uint64_t seed) {
    std::vector<float> host;
    for (std::size_t i = 0; i < modules_.size(); ++i) {
        const Module& m = modules_[i];
        Rng rng(seed, /*stream=*/5000 + i);
        const double bound = 1.0 / std::sqrt(double(m.in));
        host.resize(std::size_t(config_.r * m.in));
        for (float& a : host) a = float((2.0 * rng.uniform() - 1.0) * bound);
        model.backend().copy_from_host(model.param(model.params().at(m.a_name())), host.data());
    }
}

const LoraAdapter::Module* LoraAdapter::find(std::int64_t layer, HookSite site) const {
    for (const Module& m : modules_)
        if (m.layer == layer && m.site == site) return &m;
    return nullptr;
}

bool LoraAdapter::acts_at(HookSite site) const {
    if (state_ == LoraState::merged) return false;
    return std::any_of(modules_.begin(), modules_.end(), [&](const Module& m) { return m.site == site; });
}

// Forward:  h = x A^T (N, r), saved;  y += s h B^T (N, out).
void LoraAdapter::forward(Gpt& model, const HookForward& hk) {
    const Module* m = find(hk.layer, hk.site);
    if (!m) return;
    Backend& be = model.backend();
    const std::int64_t N = hk.x.rows, r = config_.r;
    const Tensor& h = saved_h_.get(be, std::size_t(m - modules_.data()), {N, r}, MemCategory::activations);
    be.gemm({h.mat(N), hk.x, param_mat(model, m->a_name(), r), Trans::no, Trans::yes, 1.0f, 0.0f});
    be.gemm({hk.y, h.mat(N), param_mat(model, m->b_name(), m->out), Trans::no, Trans::yes, scale_, 1.0f});
}

// W gets no gradient: that is the point of LoRA.  dy (N, out) is the gradient of this module's output.
//   dB += s dy^T h (out, r);  dh = s dy B (N, r);  dA += dh^T x (r, in);  dx += dh A (N, in)
void LoraAdapter::backward_input(Gpt& model, const HookBackward& hk) {
    const Module* m = find(hk.layer, hk.site);
    if (!m) return;
    Backend& be = model.backend();
    const std::int64_t N = hk.x.rows, r = config_.r;
    const Tensor& h = saved_h_.get(be, std::size_t(m - modules_.data()), {N, r}, MemCategory::activations);
    const Tensor& dh = dh_.get(be, 0, {N, r}, MemCategory::workspace);
    const MatView B = param_mat(model, m->b_name(), m->out), A = param_mat(model, m->a_name(), r);
    const MatView dB = grad_mat(model, m->b_name(), m->out), dA = grad_mat(model, m->a_name(), r);
    const CMatView dy = hk.dy;
    be.gemm({dB, dy, h.mat(N), Trans::yes, Trans::no, scale_, 1.0f});
    be.gemm({dh.mat(N), dy, B, Trans::no, Trans::no, scale_, 0.0f});
    be.gemm({dA, dh.mat(N), hk.x, Trans::yes, Trans::no, 1.0f, 1.0f});
    if (hk.dx.data) be.gemm({hk.dx, dh.mat(N), A, Trans::no, Trans::no, 1.0f, 1.0f});
}

// W (in, out) += sign * s A^T B^T  =  sign * s (B A)^T.
void LoraAdapter::fold(Gpt& model, float sign) {
    for (const Module& m : modules_)
        model.backend().gemm({param_mat(model, m.path + ".weight", m.in), param_mat(model, m.a_name(), config_.r),
                              param_mat(model, m.b_name(), m.out), Trans::yes, Trans::yes, sign * scale_, 1.0f});
}

void LoraAdapter::merge(Gpt& model) {
    TL_ASSERT(state_ == LoraState::unmerged, "[lora] merge of a merged adapter");
    fold(model, 1.0f);
    state_ = LoraState::merged;
}

void LoraAdapter::unmerge(Gpt& model) {
    TL_ASSERT(state_ == LoraState::merged, "[lora] unmerge of an unmerged adapter");
    fold(model, -1.0f);
    state_ = LoraState::unmerged;
}

LoraAdapter& lora_attach(Gpt& model, const LoraConfig& config, std::uint64_t seed) {
    if (lora_find(model)) throw Error("[peft] the model already has a LoRA adapter attached");
    auto adapter = std::make_unique<LoraAdapter>(model, config);
    auto& lora = static_cast<LoraAdapter&>(model.attach(std::move(adapter), seed));
    freeze_base(model);
    return lora;
}

LoraAdapter* lora_find(const Gpt& model) {
    for (const auto& a : model.adapters())
        if (auto* l = dynamic_cast<LoraAdapter*>(a.get())) return l;
    return nullptr;
}

void lora_merge_and_detach(Gpt& model) {
    LoraAdapter* lora = lora_find(model);
    if (!lora) throw Error("[peft] the model has no LoRA adapter to merge");
    if (model.adapters().size() != 1)
        throw Error("[peft] merging LoRA detaches every module, and this model carries " +
                    std::to_string(model.adapters().size()) + "; merge or detach the others first");
    if (lora->state() == LoraState::unmerged) lora->merge(model);
    model.detach_adapters();
    unfreeze_all(model);
}

}  // namespace tl
