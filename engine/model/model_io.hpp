// Model folders: config.json (Hugging Face GPT-2 fields) + model.safetensors (HF names, Conv1D (in, out) layouts,
// tied lm_head not stored) + tunelab.json (preset, training history). A folder `transformers` can load.
// Saves are atomic for the whole folder (written beside it, then swapped in); loads validate before trusting.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "model/gpt.hpp"

namespace tl {

struct TrainingRecord {
    std::string kind;    // "pretrain" or "finetune"
    std::string task;    // "corpus" for pretraining
    std::string method;  // "full", ...
    std::int64_t steps = 0;
    std::uint64_t seed = 0;
    double seconds = 0;
    double final_loss = 0;
};

struct ModelMeta {
    std::string preset;  // "custom" when the config matches no preset
    std::vector<TrainingRecord> history;
};

struct LoadedModel {
    std::unique_ptr<Gpt> model;
    ModelMeta meta;
};

void save_model(const std::filesystem::path& dir, const Gpt& model, const ModelMeta& meta);
LoadedModel load_model(const std::filesystem::path& dir, Backend& backend);
GptConfig read_model_config(const std::filesystem::path& dir);

// Writes the files produced by `write_files(tmp_dir)` into a fresh folder beside `dir`, then swaps it in
// atomically (renameat2 RENAME_EXCHANGE), so a crash at any point leaves either the old or the new folder.
void replace_folder_atomic(const std::filesystem::path& dir,
                           const std::function<void(const std::filesystem::path&)>& write_files);

}  // namespace tl
