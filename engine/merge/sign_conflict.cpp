#include "merge/sign_conflict.hpp"

#include "core/error.hpp"
#include "merge/merge_ops.hpp"

namespace tl {

namespace {

const char* const kColumns[] = {"attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj", "biases+norms"};
constexpr std::size_t kOther = 4;

// The (row, column) a tensor name falls in: blocks by index, their matrices by module, everything else of a block
// (biases, LayerNorms) in the last column; wte/wpe in "embeddings", ln_f in "ln_f".
std::pair<std::size_t, std::size_t> cell_of(const std::string& name, std::int64_t n_layer) {
    const std::string h = "transformer.h.";
    if (name.starts_with(h)) {
        const std::size_t dot = name.find('.', h.size());
        const std::size_t layer = std::stoul(name.substr(h.size(), dot - h.size()));
        for (std::size_t c = 0; c < kOther; ++c)
            if (name == name.substr(0, dot + 1) + kColumns[c] + ".weight") return {layer, c};
        return {layer, kOther};
    }
    const bool is_embedding = name.starts_with("transformer.wte") || name.starts_with("transformer.wpe");
    return {std::size_t(n_layer) + (is_embedding ? 0 : 1), is_embedding ? 0 : kOther};
}

}  // namespace

SignConflictMap sign_conflicts(const ModelState& base, const ModelState& a, const ModelState& b, double density) {
    if (!(density > 0 && density <= 1))
        throw Error("[merge] sign conflicts: density must be in (0, 1], got " + std::to_string(density));
    const std::int64_t L = base.config.n_layer;
    SignConflictMap m;
    for (std::int64_t l = 0; l < L; ++l) m.rows.push_back("h." + std::to_string(l));
    m.rows.push_back("embeddings");
    m.rows.push_back("ln_f");
    m.cols.assign(std::begin(kColumns), std::end(kColumns));
    std::vector<double> conflicts(m.rows.size() * m.cols.size(), 0.0);
    m.both.assign(conflicts.size(), 0);
    std::vector<float> da, db, scratch;
    double all_conflicts = 0, all_both = 0;
    for (const auto& [name, w0] : base.tensors) {
        const auto ia = a.tensors.find(name), ib = b.tensors.find(name);
        if (ia == a.tensors.end() || ib == b.tensors.end() || ia->second.shape != w0.shape ||
            ib->second.shape != w0.shape)
            throw Error("[merge] sign conflicts: tensor " + name + " is missing or has another shape in a fine-tune");
        const std::size_t n = w0.values.size();
        da.resize(n), db.resize(n);
        for (std::size_t i = 0; i < n; ++i) {
            da[i] = ia->second.values[i] - w0.values[i];
            db[i] = ib->second.values[i] - w0.values[i];
        }
        if (density < 1) {
            trim_top_k(da.data(), std::int64_t(n), density, scratch);
            trim_top_k(db.data(), std::int64_t(n), density, scratch);
        }
        const auto [row, col] = cell_of(name, L);
        const std::size_t k = row * m.cols.size() + col;
        for (std::size_t i = 0; i < n; ++i) {
            if (da[i] == 0 || db[i] == 0) continue;
            ++m.both[k];
            conflicts[k] += (da[i] > 0) != (db[i] > 0);
        }
    }
    for (std::size_t k = 0; k < conflicts.size(); ++k) {
        m.share.push_back(m.both[k] ? conflicts[k] / double(m.both[k]) : 0.0);
        all_conflicts += conflicts[k], all_both += double(m.both[k]);
    }
    m.overall = all_both > 0 ? all_conflicts / all_both : 0.0;
    return m;
}

}  // namespace tl
