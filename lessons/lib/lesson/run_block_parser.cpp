// The body of a ```run EXPERIMENT block, one directive per line:
//   key: value                                   a fixed argument
//   param NAME: integer|real|log_real MIN .. MAX = DEFAULT "label"
//   param NAME: choice a|b|c = DEFAULT "label"
//   view: NAME          takeaway: one line         # a comment
// Checked against the experiment's declared arguments, so a lesson cannot name an argument that does not exist.
#include "lesson/run_block_parser.hpp"

#include <sstream>

#include "core/error.hpp"

namespace tl {

namespace {

std::string trim(std::string s) {
    const auto a = s.find_first_not_of(" \t\r");
    if (a == std::string::npos) return {};
    const auto b = s.find_last_not_of(" \t\r");
    return s.substr(a, b - a + 1);
}

[[noreturn]] void fail(const std::string& where, int line, const std::string& what) {
    throw Error("[lesson] " + where + ":" + std::to_string(line) + ": " + what);
}

ParamKind parse_kind(const std::string& word, const std::string& where, int line) {
    if (word == "integer") return ParamKind::integer;
    if (word == "real") return ParamKind::real;
    if (word == "log_real") return ParamKind::log_real;
    if (word == "choice") return ParamKind::choice;
    fail(where, line, "unknown parameter kind '" + word + "'; expected integer, real, log_real or choice");
}

double parse_number(const std::string& s, const std::string& where, int line) {
    std::size_t used = 0;
    double v = 0;
    try {
        v = std::stod(s, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used == 0 || used != s.size()) fail(where, line, "expected a number, found '" + s + "'");
    return v;
}

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::stringstream in(s);
    for (std::string part; std::getline(in, part, sep);) out.push_back(trim(part));
    return out;
}

// "NAME: KIND SPEC = DEFAULT "label""
LessonParam parse_param(const std::string& rest, const std::string& where, int line) {
    LessonParam p;
    const auto colon = rest.find(':');
    if (colon == std::string::npos) fail(where, line, "expected 'param NAME: KIND ...'");
    p.name = trim(rest.substr(0, colon));
    std::string spec = trim(rest.substr(colon + 1));
    if (const auto q = spec.find('"'); q != std::string::npos) {
        const auto q2 = spec.rfind('"');
        if (q2 == q) fail(where, line, "unterminated label quote");
        p.label = spec.substr(q + 1, q2 - q - 1);
        spec = trim(spec.substr(0, q));
    }
    if (p.label.empty()) p.label = p.name;
    const auto eq = spec.find('=');
    if (eq == std::string::npos) fail(where, line, "parameter '" + p.name + "' needs '= DEFAULT'");
    p.default_value = trim(spec.substr(eq + 1));
    spec = trim(spec.substr(0, eq));
    const auto space = spec.find(' ');
    p.kind = parse_kind(spec.substr(0, space), where, line);
    const std::string range = space == std::string::npos ? "" : trim(spec.substr(space + 1));
    if (p.kind == ParamKind::choice) {
        p.choices = split(range, '|');
        if (p.choices.size() < 2) fail(where, line, "choice parameter '" + p.name + "' needs at least two options a|b");
        return p;
    }
    const auto dots = range.find("..");
    if (dots == std::string::npos) fail(where, line, "parameter '" + p.name + "' needs a range 'MIN .. MAX'");
    p.min = parse_number(trim(range.substr(0, dots)), where, line);
    p.max = parse_number(trim(range.substr(dots + 2)), where, line);
    if (!(p.min <= p.max)) fail(where, line, "parameter '" + p.name + "' has MIN > MAX");
    if (p.kind == ParamKind::log_real && p.min <= 0) fail(where, line, "log_real parameter needs MIN > 0");
    return p;
}

// The lesson's values must be ones the experiment accepts: defaults, and both ends of every range.
void check_against_experiment(const RunBlock& b, const ExperimentRegistry& reg, const std::string& where) {
    const ExperimentInfo* info = reg.find(b.experiment);
    if (!info) {
        try {
            reg.at(b.experiment);
        } catch (const Error& e) {
            fail(where, b.line, e.what());
        }
    }
    auto checked = [&](const std::map<std::string, std::string>& args) {
        try {
            reg.resolve(b.experiment, args);
        } catch (const Error& e) {
            fail(where, b.line, e.what());
        }
    };
    checked(b.arguments());
    for (const LessonParam& p : b.params) {
        if (p.kind == ParamKind::choice) {
            for (const std::string& c : p.choices) checked(b.arguments({{p.name, c}}));
            continue;
        }
        char lo[64], hi[64];
        std::snprintf(lo, sizeof lo, p.kind == ParamKind::integer ? "%.0f" : "%.17g", p.min);
        std::snprintf(hi, sizeof hi, p.kind == ParamKind::integer ? "%.0f" : "%.17g", p.max);
        checked(b.arguments({{p.name, lo}}));
        checked(b.arguments({{p.name, hi}}));
    }
}

}  // namespace

RunBlock parse_run_block(const std::string& experiment, const std::string& body, int first_line,
                         const std::string& where, const ExperimentRegistry& registry) {
    RunBlock b;
    b.experiment = trim(experiment);
    b.line = first_line;
    if (b.experiment.empty()) fail(where, first_line, "a run block needs an experiment name: ```run EXPERIMENT");
    std::stringstream in(body);
    int line = first_line;
    for (std::string raw; std::getline(in, raw);) {
        ++line;
        const std::string text = trim(raw);
        if (text.empty() || text[0] == '#') continue;
        if (text.rfind("param ", 0) == 0) {
            b.params.push_back(parse_param(text.substr(6), where, line));
            continue;
        }
        const auto colon = text.find(':');
        if (colon == std::string::npos) fail(where, line, "expected 'key: value' or 'param NAME: ...', found '" + text + "'");
        const std::string key = trim(text.substr(0, colon)), value = trim(text.substr(colon + 1));
        if (key == "view") b.view = value;
        else if (key == "takeaway") b.takeaway = value;
        else if (b.args.count(key)) fail(where, line, "argument '" + key + "' given twice");
        else b.args[key] = value;
    }
    for (const LessonParam& p : b.params)
        if (b.args.count(p.name)) fail(where, b.line, "'" + p.name + "' is both a fixed argument and a param");
    check_against_experiment(b, registry, where);
    return b;
}

std::map<std::string, std::string> RunBlock::arguments(const std::map<std::string, std::string>& chosen) const {
    std::map<std::string, std::string> out = args;
    for (const LessonParam& p : params) {
        auto it = chosen.find(p.name);
        out[p.name] = it != chosen.end() ? it->second : p.default_value;
    }
    return out;
}

}  // namespace tl
