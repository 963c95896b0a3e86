// The on-disk result cache and run_block. The key hashes the experiment name, its sorted arguments and the engine
// version with 64-bit FNV-1a (a cache key, not a security boundary); files are written atomically.
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/error.hpp"
#include "io/atomic_file.hpp"
#include "lesson/runner.hpp"

namespace tl {

namespace fs = std::filesystem;

ResultCache::ResultCache(fs::path dir) : dir_(std::move(dir)) {}

fs::path ResultCache::default_dir() {
    if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return fs::path(x) / "tunelab" / "results";
    if (const char* h = std::getenv("HOME"); h && *h) return fs::path(h) / ".cache" / "tunelab" / "results";
    return fs::temp_directory_path() / "tunelab-cache" / "results";
}

std::string ResultCache::key(const std::string& experiment, const std::map<std::string, std::string>& args,
                             const std::string& engine_version) {
    std::string canonical = experiment + '\0' + engine_version;
    for (const auto& [k, v] : args) canonical += '\0' + k + '=' + v;  // std::map: sorted by name
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned char c : canonical) {
        h ^= c;
        h *= 0x100000001b3ull;
    }
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
    return experiment + "-" + hex;
}

std::optional<Result> ResultCache::get(const std::string& key) const {
    const fs::path file = dir_ / (key + ".json");
    std::ifstream in(file, std::ios::binary);
    if (!in) return std::nullopt;
    std::stringstream text;
    text << in.rdbuf();
    try {
        return result_from_json(text.str());
    } catch (const Error&) {
        return std::nullopt;  // damaged: a miss; the fresh result overwrites it
    }
}

void ResultCache::put(const std::string& key, const Result& r) const {
    if (r.is_cancelled) return;
    fs::create_directories(dir_);
    write_file_atomic(dir_ / (key + ".json"), to_json(r));
}

RunOutcome run_block(const RunBlock& block, const std::map<std::string, std::string>& chosen, RunContext& ctx,
                     const ResultCache& cache, CachePolicy policy) {
    const ExperimentArgs args = experiments().resolve(block.experiment, block.arguments(chosen));
    // A GPU run is cached apart: its numbers differ from the CPU's in the last bits, its timings entirely.
    const std::string device_tag = ctx.device == "cpu" ? "" : "@" + ctx.device;
    const std::string key = ResultCache::key(block.experiment + device_tag, args.values(), engine_version());
    if (policy == CachePolicy::use)
        if (std::optional<Result> hit = cache.get(key)) return {std::move(*hit), true};
    Result r = run_experiment(block.experiment, args.values(), ctx);
    cache.put(key, r);
    return {std::move(r), false};
}

}  // namespace tl
