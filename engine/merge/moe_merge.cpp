// moe_merge: copy the base's non-MLP tensors, each expert's MLP tensors, and build the routers. The hidden
// router runs the base model on each expert's prompts and reads the ln_2 outputs through a PEFT hook (a probe
// with no parameters at HookSite::mlp_fc, whose input x is ln_2's output): no model internals are opened.
#include "merge/moe_merge.hpp"

#include <cmath>
#include <memory>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "data/tasks.hpp"
#include "data/tokenizer.hpp"
#include "model/gpt.hpp"
#include "model/moe.hpp"

namespace tl {

std::string_view router_init_name(RouterInit r) { return r == RouterInit::random ? "random" : "hidden"; }

RouterInit parse_router_init(std::string_view name) {
    if (name == "random") return RouterInit::random;
    if (name == "hidden") return RouterInit::hidden;
    throw Error("[merge] unknown router init '" + std::string(name) + "'; use random or hidden");
}

namespace {

// Sums ln_2's output per layer over every row it sees.
class Ln2Probe : public ModelAdapter {
public:
    Ln2Probe(std::int64_t L, std::int64_t C)
        : sums_(std::size_t(L), std::vector<double>(std::size_t(C), 0.0)) {}
    std::string name() const override { return "ln_2 probe"; }
    std::vector<AdapterParam> params() const override { return {}; }
    void init(Gpt&, std::uint64_t) override {}
    bool acts_at(HookSite site) const override { return site == HookSite::mlp_fc; }
    void forward(Gpt&, const HookForward& h) override {
        auto& s = sums_[std::size_t(h.layer)];
        for (std::int64_t r = 0; r < h.x.rows; ++r)
            for (std::int64_t c = 0; c < h.x.cols; ++c) s[std::size_t(c)] += h.x(r, c);
        if (h.layer == 0) rows_ += h.x.rows;
    }
    void reset() {
        for (auto& s : sums_) std::fill(s.begin(), s.end(), 0.0);
        rows_ = 0;
    }
    const std::vector<std::vector<double>>& sums() const { return sums_; }
    std::int64_t rows() const { return rows_; }

private:
    std::vector<std::vector<double>> sums_;
    std::int64_t rows_ = 0;
};

std::string shape_of(const GptConfig& c) {
    return "vocab " + std::to_string(c.vocab_size) + ", T " + std::to_string(c.n_positions) + ", C " +
           std::to_string(c.n_embd) + ", H " + std::to_string(c.n_head) + ", L " + std::to_string(c.n_layer);
}

const TrainingRecord* pretraining(const ModelMeta& m) {
    for (const auto& r : m.history)
        if (r.kind == "pretrain") return &r;
    return nullptr;
}

void check_spec(const MoeMergeSpec& s) {
    if (!s.base)
        throw Error("[merge] moe needs a base model (--base): it gives the attention and embeddings");
    const std::int64_t k = std::int64_t(s.experts.size());
    if (k < 1 || k > 64)
        throw Error("[merge] moe needs 1..64 expert models (--models), got " + std::to_string(k));
    if (s.top_k < 1 || s.top_k > k)
        throw Error("[merge] moe --top-k " + std::to_string(s.top_k) + " must be in 1.." + std::to_string(k) +
                    " (the number of experts)");
    if (!(s.aux_loss_coef >= 0 && s.aux_loss_coef < 100))
        throw Error("[merge] moe router aux loss coefficient must be in [0, 100), got " +
                    std::to_string(s.aux_loss_coef));
    const GptConfig& b = s.base->config;
    if (b.is_moe()) throw Error("[merge] moe: the base is already a mixture of experts; give a dense base");
    const TrainingRecord* bp = pretraining(s.base->meta);
    for (const MoeExpert& e : s.experts) {
        const GptConfig& c = e.state->config;
        if (c.is_moe())
            throw Error("[merge] moe: " + e.label + " is already a mixture of experts; give dense models");
        if (c.vocab_size != b.vocab_size || c.n_positions != b.n_positions || c.n_embd != b.n_embd ||
            c.n_head != b.n_head || c.n_layer != b.n_layer)
            throw Error("[merge] model " + e.label + " has a different shape (" + shape_of(c) +
                        ") from the base (" + shape_of(b) + "); upcycle only models of one architecture");
        const TrainingRecord* p = pretraining(e.state->meta);
        if (s.lineage == LineageCheck::same_pretraining && p && bp &&
            (p->seed != bp->seed || p->steps != bp->steps || p->task != bp->task ||
             p->final_loss != bp->final_loss))
            throw Error("[merge] " + e.label + " and the base come from different pretraining runs (seed " +
                        std::to_string(p->seed) + " vs " + std::to_string(bp->seed) + ", steps " +
                        std::to_string(p->steps) + " vs " + std::to_string(bp->steps) +
                        "); upcycle fine-tunes of one base");
        if (s.router == RouterInit::hidden && e.prompts.empty())
            throw Error("[merge] moe --router hidden needs prompts for every expert; " + e.label +
                        " has none");
    }
}

}  // namespace

std::vector<std::string> task_prompts(std::string_view task, int n) {
    std::vector<std::string> out;
    for (const Example& e : task_examples(find_task(task), Split::train, n, /*seed=*/0))
        out.push_back("\n" + e.prompt);
    return out;
}

std::vector<std::vector<float>> hidden_router_rows(const ModelState& base,
                                                   const std::vector<MoeExpert>& experts) {
    const GptConfig& c = base.config;
    const std::int64_t L = c.n_layer, C = c.n_embd, k = std::int64_t(experts.size());
    auto backend = make_cpu_backend({1});
    Gpt model(*backend, c);
    copy_state_into(model, base);
    auto& probe = static_cast<Ln2Probe&>(model.attach(std::make_unique<Ln2Probe>(L, C), 0));
    std::vector<std::vector<float>> rows(std::size_t(L), std::vector<float>(std::size_t(k * C), 0.0f));
    for (std::int64_t i = 0; i < k; ++i) {
        probe.reset();
        for (const std::string& text : experts[std::size_t(i)].prompts) {
            std::vector<std::int32_t> tok = encode(text);
            if (tok.size() > std::size_t(c.n_positions)) tok.resize(std::size_t(c.n_positions));
            if (tok.empty()) continue;
            model.forward(tok.data(), nullptr, 1, std::int64_t(tok.size()));
        }
        if (probe.rows() == 0)
            throw Error("[merge] moe --router hidden: the prompts of " + experts[std::size_t(i)].label +
                        " are empty");
        for (std::int64_t l = 0; l < L; ++l) {
            const auto& s = probe.sums()[std::size_t(l)];
            double norm = 0;
            for (double v : s) norm += v * v;
            norm = std::max(std::sqrt(norm), 1e-12);
            for (std::int64_t j = 0; j < C; ++j)
                rows[std::size_t(l)][std::size_t(i * C + j)] = float(s[std::size_t(j)] / norm);
        }
    }
    return rows;
}

ModelState moe_merge(const MoeMergeSpec& spec) {
    check_spec(spec);
    const GptConfig& b = spec.base->config;
    const std::int64_t L = b.n_layer, C = b.n_embd, k = std::int64_t(spec.experts.size());
    ModelState out;
    out.config = b;
    out.config.num_local_experts = k;
    out.config.num_experts_per_tok = spec.top_k;
    out.config.router_aux_loss_coef = spec.aux_loss_coef;
    out.meta = spec.base->meta;
    out.meta.preset = "custom";  // no preset has experts
    out.meta.history.push_back(
        {"merge", "", "moe-" + std::string(router_init_name(spec.router)), 0, spec.seed, 0, 0});
    for (const auto& [name, t] : spec.base->tensors)
        if (name.find(".mlp.") == std::string::npos) out.tensors.emplace(name, t);
    const std::vector<std::vector<float>> hidden = spec.router == RouterInit::hidden
                                                       ? hidden_router_rows(*spec.base, spec.experts)
                                                       : std::vector<std::vector<float>>{};
    for (std::int64_t l = 0; l < L; ++l) {
        const std::string pre = "transformer.h." + std::to_string(l) + ".mlp.";
        for (std::int64_t e = 0; e < k; ++e) {
            const StateDict& src = spec.experts[std::size_t(e)].state->tensors;
            for (const char* leaf : {"c_fc.weight", "c_fc.bias", "c_proj.weight", "c_proj.bias"}) {
                auto it = src.find(pre + leaf);
                if (it == src.end())
                    throw Error("[merge] " + spec.experts[std::size_t(e)].label + " lacks tensor '" + pre +
                                leaf + "'");
                out.tensors.emplace(moe_expert_name(l, e, leaf), it->second);
            }
        }
        TensorData gate{{k, C}, std::vector<float>(std::size_t(k * C))};
        if (spec.router == RouterInit::hidden) {
            gate.values = hidden[std::size_t(l)];
        } else {
            Rng rng(spec.seed, /*stream=*/std::uint64_t(l));
            for (float& v : gate.values) v = 0.02f * rng.normal();
        }
        out.tensors.emplace(moe_gate_name(l), std::move(gate));
    }
    validate_config(out.config, "[merge] moe result");
    return out;
}

}  // namespace tl
