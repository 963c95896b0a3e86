// `tunelab merge-lora --base DIR --adapter DIR --out DIR`: loads a model folder and a LoRA PEFT folder, folds
// s (B A)^T into each targeted weight and writes a plain GPT-2 model folder (engine/peft/lora.hpp).
#include <cstdio>

#include "common.hpp"
#include "model/model_io.hpp"
#include "peft/lora_io.hpp"

namespace tl::cli {

namespace {

struct MergeLoraOptions {
    CommonOptions common;
    std::string base, adapter, out;
};

void run_merge_lora(const MergeLoraOptions& o) {
    check_output_folder(o.out);
    auto backend = make_backend(o.common);
    LoadedModel base = load_model(o.base, *backend);
    const LoraAdapter& lora = load_lora_adapter(o.adapter, *base.model);
    std::printf("merging %s (r %d, alpha %g, scale %g, %zu modules) into %s\n", o.adapter.c_str(), lora.config().r,
                double(lora.config().alpha), double(lora.config().scale()), lora.modules().size(), o.base.c_str());
    lora_merge_and_detach(*base.model);
    base.meta.history.push_back({"merge-lora", o.adapter, "lora", 0, 0, 0.0, 0.0});
    save_model(o.out, *base.model, base.meta);
    std::printf("saved %s\n", o.out.c_str());
}

}  // namespace

void add_merge_lora_command(CLI::App& app) {
    auto o = std::make_shared<MergeLoraOptions>();
    CLI::App* cmd = app.add_subcommand("merge-lora", "Merge a LoRA adapter (PEFT folder) into its base model");
    cmd->add_option("--base", o->base, "model folder the adapter was trained on")->required();
    cmd->add_option("--adapter", o->adapter, "PEFT adapter folder (adapter_config.json + safetensors)")->required();
    cmd->add_option("--out", o->out, "model folder to write")->required();
    add_common_options(*cmd, o->common);
    cmd->callback([o] { run_merge_lora(*o); });
}

}  // namespace tl::cli
