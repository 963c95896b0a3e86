// PEFT folder writer and reader for soft prompts (see soft_prompt_io.hpp). Field names follow peft's
// PromptLearningConfig, PromptTuningConfig and PromptEncoderConfig.
#include "peft/soft_prompt_io.hpp"

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "io/safetensors.hpp"
#include "peft/lora_io.hpp"

namespace tl {

namespace fs = std::filesystem;
using nlohmann::json;

void save_soft_prompt(const fs::path& dir, const Gpt& model, const std::string& base_model_name) {
    const SoftPrompt* sp = soft_prompt_find(model);
    if (!sp) throw Error("[peft] the model has no soft prompt to save");
    const SoftPromptConfig& c = sp->config();
    const GptConfig& g = model.config();
    json cfg = {{"peft_type", sp->peft_type()},
                {"task_type", "CAUSAL_LM"},
                {"base_model_name_or_path", base_model_name},
                {"num_virtual_tokens", c.virtual_tokens},
                {"token_dim", g.n_embd},
                {"num_transformer_submodules", 1},
                {"num_attention_heads", g.n_head},
                {"num_layers", g.n_layer},
                {"inference_mode", true}};
    if (const auto* pt = dynamic_cast<const PTuning*>(sp)) {
        cfg["encoder_reparameterization_type"] = "MLP";
        cfg["encoder_hidden_size"] = pt->hidden();
        cfg["encoder_num_layers"] = 2;
        cfg["encoder_dropout"] = 0.0;
    } else {
        cfg["prompt_tuning_init"] = prompt_init_peft_name(c.init);
        cfg["prompt_tuning_init_text"] = c.init == PromptInit::text ? json(c.init_text) : json(nullptr);
        // PEFT's PromptTuningConfig refuses TEXT without a tokenizer; tunelab's tokenizer is the model's
        // bytes.
        cfg["tokenizer_name_or_path"] = c.init == PromptInit::text ? json(base_model_name) : json(nullptr);
    }
    const std::vector<float> values = soft_prompt_values(model);
    SafeTensorsFile st;
    st.metadata["format"] = "pt";
    st.tensors.push_back(
        SafeTensor::from_f32(kPromptEmbeddingsTensor, {c.virtual_tokens, g.n_embd}, values.data()));
    write_peft_folder(dir, cfg.dump(2) + "\n", st);
}

// The fields every prompt-learning config has (PEFT's PromptLearningConfig).
static json prompt_learning_config(const std::string& type, const Gpt& model, std::int64_t n,
                                   const std::string& base_model_name) {
    const GptConfig& g = model.config();
    return {{"peft_type", type},
            {"task_type", "CAUSAL_LM"},
            {"base_model_name_or_path", base_model_name},
            {"num_virtual_tokens", n},
            {"token_dim", g.n_embd},
            {"num_transformer_submodules", 1},
            {"num_attention_heads", g.n_head},
            {"num_layers", g.n_layer},
            {"inference_mode", true}};
}

void save_prefix(const fs::path& dir, const Gpt& model, const std::string& base_model_name) {
    PrefixTuning* p = prefix_find(model);
    if (!p) throw Error("[peft] the model has no prefix to save");
    const std::int64_t n = p->virtual_tokens();
    json cfg = prompt_learning_config("PREFIX_TUNING", model, n, base_model_name);
    cfg["prefix_projection"] = p->projection() == PrefixProjection::mlp;
    cfg["encoder_hidden_size"] = p->hidden();
    const std::vector<float> values = prefix_values(model);
    SafeTensorsFile st;
    st.metadata["format"] = "pt";
    st.tensors.push_back(SafeTensor::from_f32(kPromptEmbeddingsTensor, {n, p->width()}, values.data()));
    write_peft_folder(dir, cfg.dump(2) + "\n", st);
}

PrefixTuning& load_prefix(const fs::path& dir, Gpt& model) {
    const fs::path file = dir / "adapter_config.json";
    const json j = read_adapter_config(dir);
    const std::string type = j.value("peft_type", std::string("?"));
    if (type != "PREFIX_TUNING")
        throw Error("[peft] " + file.string() + ": peft_type is '" + type + "', not PREFIX_TUNING");
    SoftPromptConfig c;
    std::int64_t token_dim = 0, layers = 0, heads = 0, submodules = 1;
    try {
        c.virtual_tokens = j.at("num_virtual_tokens").get<std::int64_t>();
        token_dim = j.at("token_dim").get<std::int64_t>();
        layers = j.at("num_layers").get<std::int64_t>();
        heads = j.at("num_attention_heads").get<std::int64_t>();
        submodules = j.value("num_transformer_submodules", std::int64_t(1));
    } catch (const json::exception& e) {
        throw Error("[peft] " + file.string() + ": missing or malformed field (" + e.what() + ")");
    }
    const GptConfig& g = model.config();
    if (token_dim != g.n_embd || layers != g.n_layer || heads != g.n_head || submodules != 1)
        throw Error("[peft] " + file.string() + ": token_dim " + std::to_string(token_dim) + ", " +
                    std::to_string(layers) + " layers, " + std::to_string(heads) + " heads; this base model has " +
                    std::to_string(g.n_embd) + ", " + std::to_string(g.n_layer) + ", " + std::to_string(g.n_head) +
                    " (a prefix trained for another base model?)");
    const fs::path tensors = dir / "adapter_model.safetensors";
    const SafeTensorsFile st = read_safetensors(tensors);
    const SafeTensor* t = st.find(kPromptEmbeddingsTensor);
    if (!t) throw Error("[peft] " + tensors.string() + ": tensor '" + kPromptEmbeddingsTensor + "' is missing");
    const Shape expected{c.virtual_tokens, 2 * g.n_layer * g.n_embd};
    if (t->shape != expected)
        throw Error("[peft] " + tensors.string() + ": tensor '" + t->name + "' has shape " + shape_str(t->shape) +
                    ", the config and this base model need " + shape_str(expected));
    c.init = PromptInit::random;  // no init work: the values below replace it
    PrefixTuning& p = prefix_tuning_attach(model, c, PrefixProjection::none, 0);  // validates n
    const std::vector<float> values = t->to_f32();
    model.backend().copy_from_host(model.param(model.params().at(PrefixTuning::kEmbedding)), values.data());
    return p;
}

PromptTuning& load_soft_prompt(const fs::path& dir, Gpt& model) {
    const fs::path file = dir / "adapter_config.json";
    const json j = read_adapter_config(dir);
    const std::string type = j.value("peft_type", std::string("?"));
    if (type != "PROMPT_TUNING" && type != "P_TUNING")
        throw Error("[peft] " + file.string() + ": peft_type is '" + type +
                    "', not a soft prompt (PROMPT_TUNING or P_TUNING)");
    SoftPromptConfig c;
    std::int64_t token_dim = 0, submodules = 1;
    try {
        c.virtual_tokens = j.at("num_virtual_tokens").get<std::int64_t>();
        token_dim = j.at("token_dim").get<std::int64_t>();
        submodules = j.value("num_transformer_submodules", std::int64_t(1));
        if (j.value("prompt_tuning_init", std::string()) == "TEXT" && j.contains("prompt_tuning_init_text") &&
            j.at("prompt_tuning_init_text").is_string()) {
            c.init = PromptInit::text;  // kept for saving again; the values below replace the init
            c.init_text = j.at("prompt_tuning_init_text").get<std::string>();
        }
    } catch (const json::exception& e) {
        throw Error("[peft] " + file.string() + ": missing or malformed field (" + e.what() + ")");
    }
    if (c.init_text.empty()) c.init = PromptInit::sample_vocab;
    const std::int64_t C = model.config().n_embd;
    if (token_dim != C || submodules != 1)
        throw Error("[peft] " + file.string() + ": token_dim " + std::to_string(token_dim) + " and " +
                    std::to_string(submodules) + " transformer submodules; this base model needs token_dim " +
                    std::to_string(C) + " and 1 (a soft prompt trained for another base model?)");
    const fs::path tensors = dir / "adapter_model.safetensors";
    const SafeTensorsFile st = read_safetensors(tensors);
    const SafeTensor* t = st.find(kPromptEmbeddingsTensor);
    if (!t)
        throw Error("[peft] " + tensors.string() + ": tensor '" + kPromptEmbeddingsTensor + "' is missing");
    const Shape expected{c.virtual_tokens, C};
    if (t->shape != expected)
        throw Error("[peft] " + tensors.string() + ": tensor '" + t->name + "' has shape " +
                    shape_str(t->shape) + ", the config and this base model need " + shape_str(expected));
    PromptTuning& prompt = prompt_tuning_attach(model, c, 0);  // validates n against the context
    const std::vector<float> values = t->to_f32();
    model.backend().copy_from_host(model.param(model.params().at(SoftPrompt::kEmbedding)), values.data());
    return prompt;
}

}  // namespace tl
