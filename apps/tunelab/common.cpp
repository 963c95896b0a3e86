#include "common.hpp"

#include "core/error.hpp"

namespace tl::cli {

namespace fs = std::filesystem;

void add_common_options(CLI::App& cmd, CommonOptions& opt) {
    cmd.add_option("--threads", opt.threads, "CPU threads (default: all cores)")->check(CLI::Range(0, 1024));
    cmd.add_option("--device", opt.device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
}

std::unique_ptr<Backend> make_backend(const CommonOptions& opt, GemmPrecision gpu_gemm) {
    if (opt.device == "cuda") return make_cuda_backend({0, gpu_gemm});
    return make_cpu_backend({opt.threads});
}

void check_output_folder(const fs::path& dir) {
    const fs::path abs = fs::absolute(dir).lexically_normal();
    if (!fs::is_directory(abs.parent_path()))
        throw Error("[cli] --out " + dir.string() + ": the parent folder " + abs.parent_path().string() +
                    " does not exist; create it first");
    if (!fs::exists(abs)) return;
    if (!fs::is_directory(abs)) throw Error("[cli] --out " + dir.string() + " exists and is not a folder");
    const bool is_model = fs::exists(abs / "tunelab.json") || fs::exists(abs / "model.safetensors");
    if (!is_model && !fs::is_empty(abs))
        throw Error("[cli] --out " + dir.string() +
                    " is a non-empty folder that is not a tunelab model; choose a new or empty folder");
}

void check_adapter_folder(const fs::path& dir, const std::string& flag) {
    const fs::path abs = fs::absolute(dir).lexically_normal();
    if (!fs::is_directory(abs.parent_path()))
        throw Error("[cli] " + flag + " " + dir.string() + ": the parent folder " + abs.parent_path().string() +
                    " does not exist; create it first");
    if (fs::exists(abs) && !(fs::is_directory(abs) && (fs::is_empty(abs) || fs::exists(abs / "adapter_config.json"))))
        throw Error("[cli] " + flag + " " + dir.string() +
                    " exists and is not an adapter folder; choose a new or empty folder");
}

}  // namespace tl::cli
