// Conversion between Gpt / model folders and StateDict, and GPT-2 block-name arithmetic.
#include "merge/state_dict.hpp"

#include <charconv>

#include "core/error.hpp"
#include "model/gpt.hpp"

namespace tl {

namespace fs = std::filesystem;

namespace {
constexpr std::string_view kBlockPrefix = "transformer.h.";
}  // namespace

ModelState state_of(const Gpt& model, const ModelMeta& meta) {
    ModelState s;
    s.config = model.config();
    s.meta = meta;
    for (const ParamInfo& p : model.params().entries()) {
        TensorData t{p.shape, std::vector<float>(std::size_t(p.numel()))};
        model.backend().copy_to_host(t.values.data(), model.param(p));
        s.tensors.emplace(p.name, std::move(t));
    }
    return s;
}

ModelState read_model_state(const fs::path& dir) {
    auto backend = make_cpu_backend({1});
    LoadedModel lm = load_model(dir, *backend);
    return state_of(*lm.model, lm.meta);
}

void copy_state_into(Gpt& model, const ModelState& state) {
    if (model.params().entries().size() != state.tensors.size())
        throw Error("[merge] the state has " + std::to_string(state.tensors.size()) + " tensors, a GPT-2 with n_layer " +
                    std::to_string(model.config().n_layer) + " has " +
                    std::to_string(model.params().entries().size()) + "; the merge produced the wrong layer count");
    for (const ParamInfo& p : model.params().entries()) {
        auto it = state.tensors.find(p.name);
        if (it == state.tensors.end()) throw Error("[merge] the state lacks tensor '" + p.name + "'");
        if (it->second.shape != p.shape || it->second.numel() != p.numel())
            throw Error("[merge] tensor '" + p.name + "' has shape " + shape_str(it->second.shape) +
                        ", the config implies " + shape_str(p.shape));
        model.backend().copy_from_host(model.param(p), it->second.values.data());
    }
}

void write_model_state(const fs::path& dir, const ModelState& state) {
    validate_config(state.config, "[merge] merged model");
    auto backend = make_cpu_backend({1});
    Gpt model(*backend, state.config);
    copy_state_into(model, state);
    save_model(dir, model, state.meta);
}

std::optional<std::int64_t> layer_index(std::string_view name) {
    if (!name.starts_with(kBlockPrefix)) return std::nullopt;
    const std::string_view rest = name.substr(kBlockPrefix.size());
    std::int64_t l = 0;
    const auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), l);
    if (ec != std::errc() || end == rest.data() || end == rest.data() + rest.size() || *end != '.')
        return std::nullopt;
    return l;
}

std::string with_layer_index(std::string_view name, std::int64_t layer) {
    TL_ASSERT(layer_index(name).has_value(), "[merge] with_layer_index on a non-block name " + std::string(name));
    const std::string_view rest = name.substr(kBlockPrefix.size());
    return std::string(kBlockPrefix) + std::to_string(layer) + std::string(rest.substr(rest.find('.')));
}

double depth_position(std::string_view name, std::int64_t n_layer) {
    if (const auto l = layer_index(name)) return n_layer > 1 ? double(*l) / double(n_layer - 1) : 0.0;
    if (name.starts_with("transformer.wte") || name.starts_with("transformer.wpe")) return 0.0;
    return 1.0;
}

}  // namespace tl
