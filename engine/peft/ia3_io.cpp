// PEFT folder writer and reader for IA3 (see ia3_io.hpp). Field names follow peft's IA3Config; tensor shapes
// its IA3Layer.update_layer for a Conv1D base layer (in_features, out_features = weight.shape).
#include "peft/ia3_io.hpp"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.hpp"
#include "io/safetensors.hpp"
#include "peft/lora_io.hpp"

namespace tl {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::set<std::string> kTargets = {"c_attn", "mlp.c_proj"};  // PEFT's default for gpt2
const std::set<std::string> kFeedforward = {"mlp.c_proj"};

std::vector<float> host_values(const Gpt& model, const std::string& name) {
    const ParamInfo& p = model.params().at(name);
    std::vector<float> v(std::size_t(p.numel()));
    model.backend().copy_to_host(v.data(), model.param(p));
    return v;
}

// A config field that PEFT writes as a list (or, for a regex, a string), as a set of names.
std::set<std::string> name_set(const json& j, const char* field, const fs::path& file) {
    try {
        const json& v = j.at(field);
        if (v.is_string()) return {v.get<std::string>()};
        const auto names = v.get<std::vector<std::string>>();
        return {names.begin(), names.end()};
    } catch (const json::exception& e) {
        throw Error("[peft] " + file.string() + ": missing or malformed field '" + field + "' (" + e.what() +
                    ")");
    }
}

std::string joined(const std::set<std::string>& s) {
    std::string out;
    for (const std::string& n : s) out += (out.empty() ? "" : ", ") + n;
    return "[" + out + "]";
}

// Checks the tensor's presence, shape and values; returns its values.
std::vector<float> checked_tensor(const SafeTensorsFile& st, const std::string& name, const Shape& shape,
                                  const fs::path& file) {
    const SafeTensor* t = st.find(name);
    if (!t) throw Error("[peft] " + file.string() + ": tensor '" + name + "' is missing");
    if (t->shape != shape)
        throw Error("[peft] " + file.string() + ": tensor '" + name + "' has shape " + shape_str(t->shape) +
                    ", this base model needs " + shape_str(shape) +
                    " (an adapter trained for another base model?)");
    std::vector<float> v = t->to_f32();  // tl::Error for an integer dtype
    const auto bad = std::find_if(v.begin(), v.end(), [](float x) { return !std::isfinite(x); });
    if (bad != v.end())
        throw Error("[peft] " + file.string() + ": tensor '" + name + "' holds a non-finite value at index " +
                    std::to_string(bad - v.begin()));
    return v;
}

}  // namespace

std::string ia3_peft_attn_name(std::int64_t l) {
    return kPeftTensorPrefix + module_path(l, "attn.c_attn.ia3_l");
}
std::string ia3_peft_ff_name(std::int64_t l) {
    return kPeftTensorPrefix + module_path(l, "mlp.c_proj.ia3_l");
}

void save_ia3_adapter(const fs::path& dir, const Gpt& model, const std::string& base_model_name) {
    const Ia3Adapter* ia3 = nullptr;
    for (const auto& m : model.adapters())
        if (const auto* a = dynamic_cast<const Ia3Adapter*>(m.get())) ia3 = a;
    if (!ia3) throw Error("[peft] the model has no IA3 vectors to save");
    const json cfg = {{"peft_type", "IA3"},
                      {"task_type", "CAUSAL_LM"},
                      {"base_model_name_or_path", base_model_name},
                      {"target_modules", kTargets},
                      {"feedforward_modules", kFeedforward},
                      {"fan_in_fan_out", true},  // GPT-2's Conv1D stores W as (in, out)
                      {"init_ia3_weights", true},
                      {"inference_mode", true},
                      {"modules_to_save", nullptr}};
    const std::int64_t L = model.config().n_layer, C = model.config().n_embd;
    SafeTensorsFile st;
    st.metadata["format"] = "pt";
    for (std::int64_t l = 0; l < L; ++l) {
        std::vector<float> qkv(std::size_t(C), 1.0f);  // queries: not scaled by tunelab's IA3
        for (const std::string& n : {Ia3Adapter::k_name(l), Ia3Adapter::v_name(l)}) {
            const std::vector<float> v = host_values(model, n);
            qkv.insert(qkv.end(), v.begin(), v.end());
        }
        st.tensors.push_back(SafeTensor::from_f32(ia3_peft_attn_name(l), {3 * C, 1}, qkv.data()));
        const std::vector<float> ff = host_values(model, Ia3Adapter::ff_name(l));
        st.tensors.push_back(SafeTensor::from_f32(ia3_peft_ff_name(l), {1, 4 * C}, ff.data()));
    }
    write_peft_folder(dir, cfg.dump(2) + "\n", st);
}

Ia3Adapter& load_ia3_adapter(const fs::path& dir, Gpt& model) {
    const fs::path file = dir / "adapter_config.json";
    const json j = read_adapter_config(dir);
    const std::string type = j.is_object() ? j.value("peft_type", std::string("?")) : "?";
    if (type != "IA3") throw Error("[peft] " + file.string() + ": peft_type is '" + type + "', not IA3");
    const std::set<std::string> targets = name_set(j, "target_modules", file);
    const std::set<std::string> feedforward = name_set(j, "feedforward_modules", file);
    if (targets != kTargets || feedforward != kFeedforward)
        throw Error("[peft] " + file.string() + ": target_modules " + joined(targets) +
                    ", feedforward_modules " + joined(feedforward) +
                    "; tunelab's IA3 reads PEFT's GPT-2 default only: target_modules " + joined(kTargets) +
                    ", feedforward_modules " + joined(kFeedforward));
    const std::int64_t L = model.config().n_layer, C = model.config().n_embd;
    const fs::path tensors = dir / "adapter_model.safetensors";
    const SafeTensorsFile st = read_safetensors(tensors);
    std::vector<std::vector<float>> qkv, ff;  // everything checked before anything is attached
    for (std::int64_t l = 0; l < L; ++l) {
        qkv.push_back(checked_tensor(st, ia3_peft_attn_name(l), {3 * C, 1}, tensors));
        ff.push_back(checked_tensor(st, ia3_peft_ff_name(l), {1, 4 * C}, tensors));
    }
    if (st.tensors.size() != std::size_t(2 * L))
        throw Error("[peft] " + tensors.string() + " holds " + std::to_string(st.tensors.size()) +
                    " tensors; this model's " + std::to_string(L) + " blocks imply " + std::to_string(2 * L) +
                    " (an adapter trained for another base model?)");
    Ia3Adapter& ia3 = ia3_attach(model, 0);  // CPU only: tl::Error elsewhere, before any weight changes
    for (std::int64_t l = 0; l < L; ++l) {
        const float* q = qkv[std::size_t(l)].data();
        model.backend().copy_from_host(model.param(model.params().at(Ia3Adapter::k_name(l))), q + C);
        model.backend().copy_from_host(model.param(model.params().at(Ia3Adapter::v_name(l))), q + 2 * C);
        model.backend().copy_from_host(model.param(model.params().at(Ia3Adapter::ff_name(l))),
                                       ff[std::size_t(l)].data());
        if (std::all_of(q, q + C, [](float x) { return x == 1.0f; })) continue;
        // PEFT scaled the queries too: (x W + b)[:, 0:C] diag(l_q) = x (W[:, 0:C] diag(l_q)) + b[0:C]
        // diag(l_q).
        const MatView w = param_mat(model, module_path(l, "attn.c_attn.weight"), C);  // (C, 3C)
        const MatView b = param_mat(model, module_path(l, "attn.c_attn.bias"), 1);    // (1, 3C)
        for (const MatView& m : {w, b})
            for (std::int64_t i = 0; i < m.rows; ++i)
                for (std::int64_t c = 0; c < C; ++c) m(i, c) *= q[c];
    }
    return ia3;
}

}  // namespace tl
