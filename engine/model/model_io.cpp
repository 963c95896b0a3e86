#include "model/model_io.hpp"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.hpp"
#include "io/atomic_file.hpp"
#include "io/safetensors.hpp"

namespace tl {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr std::uint64_t kMaxJsonBytes = 1 << 20;

json config_json(const GptConfig& c) {
    return json{{"model_type", "gpt2"},
                {"architectures", {"GPT2LMHeadModel"}},
                {"vocab_size", c.vocab_size},
                {"n_positions", c.n_positions},
                {"n_ctx", c.n_positions},
                {"n_embd", c.n_embd},
                {"n_layer", c.n_layer},
                {"n_head", c.n_head},
                {"n_inner", nullptr},
                {"activation_function", "gelu_new"},
                {"layer_norm_epsilon", c.layer_norm_epsilon},
                {"initializer_range", 0.02},
                {"resid_pdrop", 0.0},
                {"embd_pdrop", 0.0},
                {"attn_pdrop", 0.0},
                {"tie_word_embeddings", true},
                {"bos_token_id", 256},
                {"eos_token_id", 256},
                {"torch_dtype", "float32"}};
}

// [MoE] Mixtral's field names; transformers' GPT-2 does not read them (docs/merging.md).
json config_json_with_moe(const GptConfig& c) {
    json j = config_json(c);
    if (c.is_moe()) {
        j["num_local_experts"] = c.num_local_experts;
        j["num_experts_per_tok"] = c.num_experts_per_tok;
        j["router_aux_loss_coef"] = c.router_aux_loss_coef;
    }
    return j;
}

std::int64_t int_field(const json& j, const char* key, const fs::path& file) {
    if (!j.contains(key)) throw Error("[io] " + file.string() + ": missing field '" + key + "'");
    const json& v = j.at(key);
    if (!v.is_number_integer())
        throw Error("[io] " + file.string() + ": field '" + key + "' must be an integer, got " + v.dump());
    return v.get<std::int64_t>();
}

std::string string_field(const json& j, const char* key, const fs::path& file) {
    if (!j.contains(key) || !j.at(key).is_string())
        throw Error("[io] " + file.string() + ": field '" + key + "' must be a string");
    return j.at(key).get<std::string>();
}

json parse_json_file(const fs::path& file) {
    const std::string text = read_file_text(file, kMaxJsonBytes);
    json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) throw Error("[io] " + file.string() + ": not valid JSON");
    if (!j.is_object()) throw Error("[io] " + file.string() + ": expected a JSON object");
    return j;
}

json meta_json(const ModelMeta& m) {
    json hist = json::array();
    for (const auto& r : m.history)
        hist.push_back({{"kind", r.kind}, {"task", r.task}, {"method", r.method}, {"steps", r.steps},
                        {"seed", r.seed}, {"seconds", r.seconds}, {"final_loss", r.final_loss}});
    return json{{"format", "tunelab-model"}, {"format_version", 1}, {"preset", m.preset}, {"dtype", "f32"},
                {"history", hist}};
}

ModelMeta parse_meta(const fs::path& file) {
    ModelMeta m;
    if (!fs::exists(file)) return m;  // a folder written by other tools (e.g. transformers) has none
    const json j = parse_json_file(file);
    if (j.contains("preset") && j["preset"].is_string()) m.preset = j["preset"].get<std::string>();
    if (j.contains("history") && j["history"].is_array())
        for (const auto& r : j["history"]) {
            if (!r.is_object()) throw Error("[io] " + file.string() + ": history entries must be objects");
            TrainingRecord t;
            t.kind = r.value("kind", "");
            t.task = r.value("task", "");
            t.method = r.value("method", "");
            t.steps = r.value("steps", std::int64_t(0));
            t.seed = r.value("seed", std::uint64_t(0));
            t.seconds = r.value("seconds", 0.0);
            t.final_loss = r.value("final_loss", 0.0);
            m.history.push_back(std::move(t));
        }
    return m;
}

void fsync_path(const fs::path& p) {
    const int fd = ::open(p.c_str(), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        ::fsync(fd);
        ::close(fd);
    }
}

}  // namespace

GptConfig read_model_config(const fs::path& dir) {
    if (!fs::is_directory(dir))
        throw Error("[io] " + dir.string() + " is not a model folder (no such directory); create one with `tunelab pretrain`");
    const fs::path file = dir / "config.json";
    const json j = parse_json_file(file);
    if (string_field(j, "model_type", file) != "gpt2")
        throw Error("[io] " + file.string() + ": model_type must be \"gpt2\", got " + j["model_type"].dump());
    if (j.contains("activation_function") && j["activation_function"] != "gelu_new")
        throw Error("[io] " + file.string() + ": activation_function must be \"gelu_new\" (GELU tanh), got " +
                    j["activation_function"].dump());
    GptConfig c;
    c.vocab_size = int_field(j, "vocab_size", file);
    c.n_positions = int_field(j, "n_positions", file);
    c.n_embd = int_field(j, "n_embd", file);
    c.n_layer = int_field(j, "n_layer", file);
    c.n_head = int_field(j, "n_head", file);
    if (j.contains("layer_norm_epsilon")) {
        if (!j["layer_norm_epsilon"].is_number())
            throw Error("[io] " + file.string() + ": layer_norm_epsilon must be a number");
        c.layer_norm_epsilon = j["layer_norm_epsilon"].get<float>();
    }
    if (j.contains("num_local_experts")) {  // [MoE]
        c.num_local_experts = int_field(j, "num_local_experts", file);
        if (j.contains("num_experts_per_tok")) c.num_experts_per_tok = int_field(j, "num_experts_per_tok", file);
        if (j.contains("router_aux_loss_coef")) {
            if (!j["router_aux_loss_coef"].is_number())
                throw Error("[io] " + file.string() + ": router_aux_loss_coef must be a number");
            c.router_aux_loss_coef = j["router_aux_loss_coef"].get<float>();
        }
    }
    if (j.contains("n_inner") && !j["n_inner"].is_null() && j["n_inner"] != 4 * c.n_embd)
        throw Error("[io] " + file.string() + ": n_inner must be null or 4 * n_embd");
    validate_config(c, file.string());
    return c;
}

void replace_folder_atomic(const fs::path& dir, const std::function<void(const fs::path&)>& write_files) {
    const fs::path target = fs::absolute(dir).lexically_normal();
    const fs::path parent = target.parent_path();
    if (!fs::is_directory(parent))
        throw Error("[io] cannot write " + target.string() + ": the parent folder does not exist");
    if (fs::exists(target) && !fs::is_directory(target))
        throw Error("[io] cannot write " + target.string() + ": it exists and is not a folder");
    const fs::path tmp = parent / ("." + target.filename().string() + ".tmp." + std::to_string(::getpid()));
    fs::remove_all(tmp);
    fs::create_directory(tmp);
    try {
        write_files(tmp);  // each file is written atomically and fsynced
        fsync_path(tmp);
        if (fs::exists(target)) {
            if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) != 0)
                throw Error("[io] cannot replace " + target.string() + ": " + std::strerror(errno));
            fs::remove_all(tmp);  // now holds the previous folder
        } else if (::rename(tmp.c_str(), target.c_str()) != 0) {
            throw Error("[io] cannot create " + target.string() + ": " + std::strerror(errno));
        }
        fsync_path(parent);
    } catch (...) {
        std::error_code ec;
        fs::remove_all(tmp, ec);
        throw;
    }
}

void save_model(const fs::path& dir, const Gpt& model, const ModelMeta& meta) {
    SafeTensorsFile st;
    st.metadata["format"] = "pt";
    std::vector<float> host;
    for (const ParamInfo& p : model.params().entries()) {
        host.resize(std::size_t(p.numel()));
        model.backend().copy_to_host(host.data(), model.param(p));
        st.tensors.push_back(SafeTensor::from_f32(p.name, p.shape, host.data()));
    }
    replace_folder_atomic(dir, [&](const fs::path& tmp) {
        write_file_atomic(tmp / "config.json", config_json_with_moe(model.config()).dump(2) + "\n");
        write_safetensors(tmp / "model.safetensors", st);
        write_file_atomic(tmp / "tunelab.json", meta_json(meta).dump(2) + "\n");
    });
}

LoadedModel load_model(const fs::path& dir, Backend& backend) {
    const GptConfig config = read_model_config(dir);
    const fs::path file = dir / "model.safetensors";
    const SafeTensorsFile st = read_safetensors(file);
    auto model = std::make_unique<Gpt>(backend, config);
    std::set<std::string> expected;
    for (const ParamInfo& p : model->params().entries()) {
        expected.insert(p.name);
        const SafeTensor* t = st.find(p.name);
        if (!t) throw Error("[io] " + file.string() + ": tensor '" + p.name + "' is missing");
        if (t->shape != p.shape)
            throw Error("[io] " + file.string() + ": tensor '" + p.name + "' has shape " + shape_str(t->shape) +
                        ", config.json implies " + shape_str(p.shape));
        const std::vector<float> values = t->to_f32();
        backend.copy_from_host(model->param(p), values.data());
    }
    for (const SafeTensor& t : st.tensors) {
        // transformers may store the tied head or the causal-mask buffers; they carry no information of ours.
        if (t.name == "lm_head.weight" || t.name.ends_with(".attn.bias") || t.name.ends_with(".attn.masked_bias"))
            continue;
        if (!expected.count(t.name))
            throw Error("[io] " + file.string() + ": unexpected tensor '" + t.name + "' for a GPT-2 of this config");
    }
    return {std::move(model), parse_meta(dir / "tunelab.json")};
}

}  // namespace tl
