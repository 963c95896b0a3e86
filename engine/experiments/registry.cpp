// ExperimentArgs validation, the registry, and run_experiment (timing and provenance around an experiment).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <fstream>
#include <thread>

#include "core/error.hpp"
#include "experiments/engine_version.hpp"
#include "experiments/experiment.hpp"

#ifndef TL_PROJECT_VERSION
#define TL_PROJECT_VERSION "0.0.0"
#endif

namespace tl {

namespace {

bool parse_integer(const std::string& s, std::int64_t& out) {
    std::size_t used = 0;
    try {
        out = std::stoll(s, &used);
    } catch (const std::exception&) {
        return false;
    }
    return used == s.size();
}

bool parse_real(const std::string& s, double& out) {
    std::size_t used = 0;
    try {
        out = std::stod(s, &used);
    } catch (const std::exception&) {
        return false;
    }
    return used == s.size() && std::isfinite(out);
}

std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
    return out;
}

std::string range_text(const ParamSpec& p) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "%g..%g", p.min, p.max);
    return buf;
}

// Checks one value against its spec; returns an empty string when valid, else what is wrong.
std::string check_value(const ParamSpec& p, const std::string& v) {
    switch (p.kind) {
        case ParamKind::integer: {
            std::int64_t x = 0;
            if (!parse_integer(v, x)) return "'" + v + "' is not an integer";
            if (x < p.min || x > p.max) return v + " is outside " + range_text(p);
            return {};
        }
        case ParamKind::real:
        case ParamKind::log_real: {
            double x = 0;
            if (!parse_real(v, x)) return "'" + v + "' is not a number";
            if (x < p.min || x > p.max) return v + " is outside " + range_text(p);
            return {};
        }
        case ParamKind::choice:
            if (std::find(p.choices.begin(), p.choices.end(), v) == p.choices.end())
                return "'" + v + "' is not one of: " + join(p.choices);
            return {};
        case ParamKind::text:
            return {};
    }
    return "unknown kind";
}

}  // namespace

const std::string& ExperimentArgs::raw(const std::string& name) const {
    auto it = values_.find(name);
    TL_ASSERT(it != values_.end(), "[experiment] argument '" + name + "' was not declared by the experiment");
    return it->second;
}

std::int64_t ExperimentArgs::integer(const std::string& name) const {
    std::int64_t x = 0;
    TL_ASSERT(parse_integer(raw(name), x), "[experiment] argument '" + name + "' is not an integer");
    return x;
}

double ExperimentArgs::real(const std::string& name) const {
    double x = 0;
    TL_ASSERT(parse_real(raw(name), x), "[experiment] argument '" + name + "' is not a number");
    return x;
}

void ExperimentRegistry::add(ExperimentInfo info) {
    TL_ASSERT(find(info.name) == nullptr, "[experiment] registered twice: " + info.name);
    for (const ParamSpec& p : info.params)
        TL_ASSERT(check_value(p, p.default_value).empty(),
                  "[experiment] " + info.name + "." + p.name + " default: " + check_value(p, p.default_value));
    infos_.push_back(std::move(info));
}

const ExperimentInfo* ExperimentRegistry::find(const std::string& name) const {
    for (const ExperimentInfo& e : infos_)
        if (e.name == name) return &e;
    return nullptr;
}

const ExperimentInfo& ExperimentRegistry::at(const std::string& name) const {
    if (const ExperimentInfo* e = find(name)) return *e;
    std::vector<std::string> names;
    for (const ExperimentInfo& e : infos_) names.push_back(e.name);
    throw Error("[experiment] unknown experiment '" + name + "'; known: " + join(names));
}

ExperimentArgs ExperimentRegistry::resolve(const std::string& name,
                                           const std::map<std::string, std::string>& given) const {
    const ExperimentInfo& info = at(name);
    std::map<std::string, std::string> values;
    for (const auto& [k, v] : given) {
        auto it = std::find_if(info.params.begin(), info.params.end(), [&](const ParamSpec& p) { return p.name == k; });
        if (it == info.params.end()) {
            std::vector<std::string> names;
            for (const ParamSpec& p : info.params) names.push_back(p.name);
            throw Error("[experiment] " + name + " has no argument '" + k + "'; it takes: " + join(names));
        }
        if (std::string why = check_value(*it, v); !why.empty())
            throw Error("[experiment] " + name + " argument " + k + ": " + why);
        values[k] = v;
    }
    for (const ParamSpec& p : info.params) values.emplace(p.name, p.default_value);
    return ExperimentArgs(std::move(values), info.params);
}

std::string engine_version() { return std::string(TL_PROJECT_VERSION) + "+r" + std::to_string(kEngineRevision); }

std::string machine_description(int threads) {
    std::string cpu = "unknown CPU";
    std::ifstream in("/proc/cpuinfo");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("model name", 0) == 0) {
            cpu = line.substr(line.find(':') + 2);
            break;
        }
    const unsigned cores = std::thread::hardware_concurrency();
    return cpu + ", " + std::to_string(cores) + " logical cores, " +
           (threads > 0 ? std::to_string(threads) : std::to_string(cores)) + " threads";
}

Result run_experiment(const std::string& name, const std::map<std::string, std::string>& given, RunContext& ctx) {
    const ExperimentInfo& info = experiments().at(name);
    const ExperimentArgs args = experiments().resolve(name, given);
    const auto start = std::chrono::steady_clock::now();
    Result r = info.run(args, ctx);
    r.experiment = name;
    r.args.assign(args.values().begin(), args.values().end());
    r.provenance.engine_version = engine_version();
    r.provenance.machine = machine_description(ctx.threads);
    r.provenance.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const std::time_t now = std::time(nullptr);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    r.provenance.created_utc = stamp;
    return r;
}

}  // namespace tl
