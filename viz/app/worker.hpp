// Runs one lesson run block on a background thread so the UI never waits: progress and live points (RunContext
// callbacks) are appended under a mutex and read by the UI each frame; the final Result replaces the live one.
// Starting a new run cancels and joins the previous one. The lesson browser (gui.cpp) owns one per session.
#pragma once
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "lesson/runner.hpp"

namespace tl::viz {

enum class WorkState { idle, running, done, failed, cancelled };

// What the UI shows this frame: a copy, taken under the lock only when something changed (version).
struct WorkView {
    WorkState state = WorkState::idle;
    Progress progress;
    Result result;            // live points so far while running; the final (or partial) Result after
    bool is_from_cache = false;
    std::string error;        // failed: the exception's message
    std::uint64_t version = 0;
};

class Worker {
public:
    explicit Worker(ResultCache cache, int threads) : cache_(std::move(cache)), threads_(threads) {}
    ~Worker() { stop(); }
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    // Cancels and joins any run in progress, then starts block with the learner's chosen parameter values.
    void start(const RunBlock& block, const std::map<std::string, std::string>& chosen);
    void cancel() { cancel_ = true; }
    void stop();  // cancel and join

    // Copies the shared state into view when it changed since view.version; returns whether it did.
    bool refresh(WorkView& view) const;

private:
    void run(RunBlock block, std::map<std::string, std::string> chosen);

    ResultCache cache_;
    int threads_ = 0;
    std::thread thread_;
    std::atomic<bool> cancel_{false};
    mutable std::mutex mutex_;
    WorkView shared_;  // guarded by mutex_
};

}  // namespace tl::viz
