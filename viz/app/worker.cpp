// The background run (see worker.hpp). Everything the experiment thread writes goes through mutex_.
#include "app/worker.hpp"

#include <exception>

namespace tl::viz {

void Worker::stop() {
    cancel_ = true;
    if (thread_.joinable()) thread_.join();
}

void Worker::start(const RunBlock& block, const std::map<std::string, std::string>& chosen) {
    stop();
    cancel_ = false;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        const std::uint64_t v = shared_.version;
        shared_ = WorkView{};
        shared_.state = WorkState::running;
        shared_.result.experiment = block.experiment;
        shared_.version = v + 1;
    }
    thread_ = std::thread([this, block, chosen] { run(block, chosen); });
}

void Worker::run(RunBlock block, std::map<std::string, std::string> chosen) {
    RunContext ctx;
    ctx.cancel = &cancel_;
    ctx.threads = threads_;
    ctx.on_progress = [this](const Progress& p) {
        std::lock_guard<std::mutex> lock(mutex_);
        shared_.progress = p;
        ++shared_.version;
    };
    ctx.on_point = [this](const LivePoint& p) {
        std::lock_guard<std::mutex> lock(mutex_);
        Series& s = shared_.result.series_named(p.series, "step");
        s.x.push_back(p.x);
        s.y.push_back(p.y);
        ++shared_.version;
    };
    WorkView done;
    try {
        RunOutcome out = run_block(block, chosen, ctx, cache_, CachePolicy::use);
        done.state = out.result.is_cancelled ? WorkState::cancelled : WorkState::done;
        done.result = std::move(out.result);
        done.is_from_cache = out.from_cache;
    } catch (const std::exception& e) {
        done.state = WorkState::failed;
        done.error = e.what();
    }
    std::lock_guard<std::mutex> lock(mutex_);
    done.progress = shared_.progress;
    if (done.state == WorkState::failed) done.result = std::move(shared_.result);  // keep what was plotted
    done.version = shared_.version + 1;
    shared_ = std::move(done);
}

bool Worker::refresh(WorkView& view) const {
    std::lock_guard<std::mutex> lock(mutex_);
    if (view.version == shared_.version) return false;
    view = shared_;
    return true;
}

}  // namespace tl::viz
