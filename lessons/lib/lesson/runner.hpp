// Running a lesson's run block: arguments resolved, the result fetched from the on-disk cache or computed by the
// experiment (and then cached). The terminal course, the GUI worker thread and the tests all go through here.
#pragma once
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "experiments/experiment.hpp"
#include "lesson/lesson.hpp"

namespace tl {

enum class CachePolicy { use, bypass };

// Results on disk: <dir>/<hash>.json, hash of (experiment, sorted arguments, engine version). Writes are atomic;
// a damaged file is a miss (and is replaced), never a crash.
class ResultCache {
public:
    explicit ResultCache(std::filesystem::path dir);
    static std::filesystem::path default_dir();  // $XDG_CACHE_HOME/tunelab/results or ~/.cache/tunelab/results
    static std::string key(const std::string& experiment, const std::map<std::string, std::string>& args,
                           const std::string& engine_version);
    std::optional<Result> get(const std::string& key) const;
    void put(const std::string& key, const Result& r) const;  // cancelled results are not stored
    const std::filesystem::path& dir() const { return dir_; }

private:
    std::filesystem::path dir_;
};

struct RunOutcome {
    Result result;
    bool from_cache = false;
};

// Resolves, looks up the cache (unless bypassed), runs, stores. Thread-safe for distinct blocks.
RunOutcome run_block(const RunBlock& block, const std::map<std::string, std::string>& chosen, RunContext& ctx,
                     const ResultCache& cache, CachePolicy policy);

}  // namespace tl
