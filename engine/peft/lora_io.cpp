// PEFT folder writer and reader for LoRA (see lora_io.hpp). Field names follow peft's LoraConfig.
#include "peft/lora_io.hpp"

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "io/atomic_file.hpp"
#include "io/safetensors.hpp"
#include "model/model_io.hpp"

namespace tl {

namespace fs = std::filesystem;
using nlohmann::json;

// A module's tensors as PEFT saves them: lora_A, lora_B and, with DoRA, lora_magnitude_vector (out).
static std::vector<std::string> lora_tensor_names(const LoraAdapter::Module& m, LoraVariant v) {
    std::vector<std::string> names = {m.a_name(), m.b_name()};
    if (v == LoraVariant::dora) names.push_back(m.m_name());
    return names;
}

void save_lora_adapter(const fs::path& dir, const Gpt& model, const std::string& base_model_name) {
    const LoraAdapter* lora = lora_find(model);
    if (!lora) throw Error("[peft] the model has no LoRA adapter to save");
    TL_ASSERT(lora->state() == LoraState::unmerged, "[peft] save an unmerged adapter (its B would be folded in)");
    const LoraConfig& c = lora->config();
    json cfg = {{"peft_type", "LORA"},
                {"task_type", "CAUSAL_LM"},
                {"base_model_name_or_path", base_model_name},
                {"r", c.r},
                {"lora_alpha", c.alpha},
                {"lora_dropout", std::round(double(c.dropout) * 1e6) / 1e6},  // 0.1, not 0.10000000149
                {"use_dora", c.variant == LoraVariant::dora},
                {"target_modules", c.targets},
                {"use_rslora", c.scaling == LoraScaling::rslora},
                {"fan_in_fan_out", true},  // GPT-2's Conv1D stores W as (in, out)
                {"bias", "none"},
                {"init_lora_weights", true},
                {"inference_mode", true},
                {"modules_to_save", nullptr}};
    SafeTensorsFile st;
    st.metadata["format"] = "pt";
    std::vector<float> host;
    for (const LoraAdapter::Module& m : lora->modules())
        for (const std::string& name : lora_tensor_names(m, c.variant)) {
            const ParamInfo& p = model.params().at(name);
            host.resize(std::size_t(p.numel()));
            model.backend().copy_to_host(host.data(), model.param(p));
            st.tensors.push_back(SafeTensor::from_f32(kPeftTensorPrefix + name, p.shape, host.data()));
        }
    write_peft_folder(dir, cfg.dump(2) + "\n", st);
}

void write_peft_folder(const fs::path& dir, const std::string& config_json, const SafeTensorsFile& tensors) {
    replace_folder_atomic(dir, [&](const fs::path& tmp) {
        write_file_atomic(tmp / "adapter_config.json", config_json);
        write_safetensors(tmp / "adapter_model.safetensors", tensors);
    });
}

json read_adapter_config(const fs::path& dir) {
    const fs::path file = dir / "adapter_config.json";
    if (!fs::is_regular_file(file))
        throw Error("[peft] " + dir.string() + " is not a PEFT adapter folder (no adapter_config.json)");
    try {
        return json::parse(read_file_text(file, 1 << 20));
    } catch (const json::exception& e) {
        throw Error("[peft] " + file.string() + " is not valid JSON: " + e.what());
    }
}

void save_adapter_params(const fs::path& dir, const Gpt& model, const std::string& peft_type,
                         const std::string& base_model_name,
                         const std::vector<std::pair<std::string, std::int64_t>>& fields) {
    json cfg = {{"peft_type", peft_type}, {"base_model_name_or_path", base_model_name}};
    for (const auto& [k, v] : fields) cfg[k] = v;
    SafeTensorsFile st;
    st.metadata["format"] = "pt";
    std::vector<float> host;
    for (const ParamInfo& p : model.params().entries()) {
        if (p.offset < model.base_param_count()) continue;
        host.resize(std::size_t(p.numel()));
        model.backend().copy_to_host(host.data(), model.param(p));
        st.tensors.push_back(SafeTensor::from_f32(kPeftTensorPrefix + p.name, p.shape, host.data()));
    }
    if (st.tensors.empty()) throw Error("[peft] the model has no adapter parameters to save");
    write_peft_folder(dir, cfg.dump(2) + "\n", st);
}

LoraConfig read_lora_config(const fs::path& dir) {
    const fs::path file = dir / "adapter_config.json";
    const json j = read_adapter_config(dir);
    if (j.value("peft_type", std::string()) != "LORA")
        throw Error("[peft] " + file.string() + ": peft_type is '" + j.value("peft_type", std::string("?")) +
                    "', only LORA adapters can be loaded here");
    LoraConfig c;
    try {
        c.r = j.at("r").get<int>();
        c.alpha = j.at("lora_alpha").get<float>();
        c.scaling = j.value("use_rslora", false) ? LoraScaling::rslora : LoraScaling::standard;
        c.variant = j.value("use_dora", false) ? LoraVariant::dora : LoraVariant::lora;
        c.dropout = j.value("lora_dropout", 0.0f);
        const json& t = j.at("target_modules");
        c.targets = t.is_string() ? std::vector<std::string>{t.get<std::string>()} : t.get<std::vector<std::string>>();
    } catch (const json::exception& e) {
        throw Error("[peft] " + file.string() + ": missing or malformed field (" + e.what() + ")");
    }
    return c;
}

LoraAdapter& load_lora_adapter(const fs::path& dir, Gpt& model) {
    const LoraConfig c = read_lora_config(dir);
    const fs::path file = dir / "adapter_model.safetensors";
    const SafeTensorsFile st = read_safetensors(file);
    LoraAdapter probe(model, c);  // validates targets and rank before anything is attached
    std::vector<std::pair<std::string, Shape>> wanted;
    for (const LoraAdapter::Module& m : probe.modules()) {
        wanted.push_back({m.a_name(), Shape{c.r, m.in}});
        wanted.push_back({m.b_name(), Shape{m.out, c.r}});
        if (c.variant == LoraVariant::dora) wanted.push_back({m.m_name(), Shape{m.out}});
    }
    for (const auto& [name, shape] : wanted) {
        const SafeTensor* t = st.find(kPeftTensorPrefix + name);
        if (!t) throw Error("[peft] " + file.string() + ": tensor '" + kPeftTensorPrefix + name + "' is missing");
        if (t->shape != shape)
            throw Error("[peft] " + file.string() + ": tensor '" + t->name + "' has shape " + shape_str(t->shape) +
                        ", this base model needs " + shape_str(shape) + " (an adapter trained for another base model?)");
    }
    const std::size_t expected = wanted.size();
    if (st.tensors.size() != expected)
        throw Error("[peft] " + file.string() + " holds " + std::to_string(st.tensors.size()) +
                    " tensors; this model and config imply " + std::to_string(expected) +
                    " (an adapter trained for another base model?)");
    LoraAdapter& lora = lora_attach(model, c, 0);
    for (const LoraAdapter::Module& m : lora.modules())
        for (const std::string& name : lora_tensor_names(m, c.variant)) {
            const std::vector<float> values = st.at(kPeftTensorPrefix + name).to_f32();
            model.backend().copy_from_host(model.param(model.params().at(name)), values.data());
        }
    return lora;
}

}  // namespace tl
