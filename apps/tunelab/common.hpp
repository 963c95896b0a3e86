// Shared pieces of the CLI's commands: options every command takes, backend creation, output-folder checks,
// and the registration functions each cmd_*.cpp provides.
#pragma once
#include <CLI/CLI.hpp>
#include <filesystem>
#include <memory>
#include <string>

#include "core/backend.hpp"

namespace tl::cli {

struct CommonOptions {
    int threads = 0;             // 0: all cores
    std::string device = "cpu";  // cpu | cuda
};

void add_common_options(CLI::App& cmd, CommonOptions& opt);
// gpu_gemm: the GEMMs' arithmetic with --device cuda (pretrain/finetune --precision); the CPU ignores it.
std::unique_ptr<Backend> make_backend(const CommonOptions& opt, GemmPrecision gpu_gemm = GemmPrecision::fp32);

// Refuses (tl::Error) to overwrite anything but an empty folder or a tunelab model folder, and a missing parent,
// so a mistyped --out can never replace a user's folder. Checked before any work starts.
void check_output_folder(const std::filesystem::path& dir);
// The same for an adapter folder: new, empty, or an adapter folder (never a user's folder or a model).
void check_adapter_folder(const std::filesystem::path& dir, const std::string& flag = "--out");

// The commands. Each adds a subcommand whose callback does the work; errors propagate as tl::Error.
void add_pretrain_command(CLI::App& app);
void add_finetune_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_generate_command(CLI::App& app);
void add_inspect_command(CLI::App& app);
void add_tasks_command(CLI::App& app);
void add_presets_command(CLI::App& app);
void add_demo_command(CLI::App& app);
void add_merge_lora_command(CLI::App& app);  // merge-lora: a LoRA PEFT folder into its base (cmd_peft.cpp)
void add_lesson_commands(CLI::App& app);  // lessons, lesson, experiments, run
void add_gui_command(CLI::App& app);      // gui: the viewer (viz/app/gui.hpp)

void add_memory_command(CLI::App& app);  // course formula, detailed model, predicted vs measured
void add_formats_command(CLI::App& app);  // the numeric format table, --encode
void add_merge_command(CLI::App& app);    // merge model folders; mergekit YAML (cmd_merge.cpp)
void add_quantize_command(CLI::App& app);  // PTQ of a model folder into a quantized folder (cmd_quantize.cpp)
}  // namespace tl::cli
