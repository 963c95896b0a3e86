#include "terminal/terminal_course.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <unistd.h>

#include "core/error.hpp"
#include "terminal/result_printer.hpp"
#include "terminal/text_layout.hpp"

namespace tl {

namespace {

// "\r[#####.....]  45/300  finetune reverse  12 s" on a terminal; a line per tenth of the run otherwise.
class ProgressLine {
public:
    explicit ProgressLine(std::FILE* out) : out_(out), is_tty_(isatty(fileno(out))) {}
    void update(const Progress& p) {
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
        const int tenth = p.total > 0 ? int(10 * p.done / p.total) : 0;
        if (!is_tty_) {
            if (p.label != label_ || tenth != last_tenth_)
                std::fprintf(out_, "    %s: %lld/%lld (%.0f s)\n", p.label.c_str(), (long long)p.done,
                             (long long)p.total, secs);
            std::fflush(out_);
            last_tenth_ = tenth;
            label_ = p.label;
            return;
        }
        const int w = 24, filled = p.total > 0 ? int(w * p.done / p.total) : 0;
        std::string bar(std::size_t(filled), '#');
        bar += std::string(std::size_t(w - filled), '.');
        std::fprintf(out_, "\r    [%s] %lld/%lld  %-28s %4.0f s ", bar.c_str(), (long long)p.done, (long long)p.total,
                     p.label.c_str(), secs);
        std::fflush(out_);
        shown_ = true;
    }
    void finish() {
        if (shown_) std::fprintf(out_, "\n");
    }

private:
    std::FILE* out_;
    bool is_tty_, shown_ = false;
    int last_tenth_ = -1;
    std::string label_;
    std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

void print_paragraphs(const std::vector<std::string>& paragraphs, std::FILE* out, int width, std::size_t from = 0,
                      std::size_t to = SIZE_MAX) {
    for (std::size_t i = from; i < std::min(to, paragraphs.size()); ++i) {
        const std::string& p = paragraphs[i];
        const bool is_item = p.rfind("- ", 0) == 0;
        auto lines = wrap_text(is_item ? p.substr(2) : p, width - 4, is_item ? "    " : "  ");
        if (is_item && !lines.empty()) lines[0].replace(0, 4, "  • ");
        for (const std::string& l : lines) std::fprintf(out, "%s\n", l.c_str());
        if (!is_item) std::fprintf(out, "\n");
    }
}

void describe_args(const RunBlock& b, const std::map<std::string, std::string>& args, std::FILE* out) {
    std::string text;
    for (const auto& [k, v] : args) text += " " + k + "=" + v;
    std::fprintf(out, "  ▶ %s%s\n", b.experiment.c_str(), text.c_str());
    for (const LessonParam& p : b.params)
        std::fprintf(out, "    (you can change %s: %s — tunelab lesson ... --set %s=VALUE)\n", p.name.c_str(),
                     p.label.c_str(), p.name.c_str());
}

// Returns false when the learner asked to quit.
bool wait_for_enter(std::FILE* out) {
    std::fprintf(out, "  — Enter for the next step, q then Enter to stop — ");
    std::fflush(out);
    std::string line;
    if (!std::getline(std::cin, line)) return false;
    return line != "q" && line != "Q";
}

}  // namespace

std::map<std::string, std::string> block_arguments(const RunBlock& block,
                                                   const std::map<std::string, std::string>& overrides) {
    const ExperimentInfo& info = experiments().at(block.experiment);
    std::map<std::string, std::string> args = block.arguments();
    for (const auto& [k, v] : overrides) {
        const bool is_declared =
            std::any_of(info.params.begin(), info.params.end(), [&](const ParamSpec& p) { return p.name == k; });
        if (is_declared) args[k] = v;
    }
    return args;
}

int run_terminal_lesson(const Lesson& lesson, const CourseOptions& o, const ResultCache& cache) {
    const int n = int(lesson.steps.size());
    const int first = o.only_step > 0 ? o.only_step : o.first_step;
    if (first < 1 || first > n)
        throw Error("[lesson] " + lesson.id + " has steps 1.." + std::to_string(n) + "; got step " + std::to_string(first));
    const bool waits = o.pacing == Pacing::wait_for_enter && isatty(STDIN_FILENO);
    const int width = terminal_width();
    std::FILE* out = o.out;
    std::fprintf(out, "\n%s\n%s\n\n", lesson.title.c_str(), std::string(std::size_t(display_width(lesson.title)), '=').c_str());
    if (first == 1) print_paragraphs(lesson.intro, out, width);
    int runs = 0;
    for (int k = first; k <= (o.only_step > 0 ? o.only_step : n); ++k) {
        const LessonStep& step = lesson.steps[std::size_t(k - 1)];
        std::fprintf(out, "── Step %d/%d: %s ──\n\n", k, n, step.title.c_str());
        std::size_t printed = 0;
        for (const RunBlock& block : step.runs) {
            print_paragraphs(step.paragraphs, out, width, printed, std::size_t(block.paragraphs_before));
            printed = std::max(printed, std::size_t(block.paragraphs_before));
            const auto args = block_arguments(block, o.overrides);
            describe_args(block, args, out);
            ProgressLine line(out);
            RunContext ctx;
            ctx.threads = o.threads;
            ctx.device = o.device;
            ctx.on_progress = [&](const Progress& p) { line.update(p); };
            RunBlock resolved = block;
            resolved.args = args;
            resolved.params.clear();
            const RunOutcome outcome = run_block(resolved, {}, ctx, cache, o.cache);
            line.finish();
            std::fprintf(out, "    %s\n", outcome.from_cache ? "(from the result cache: --no-cache to measure again)"
                                                          : ("measured in " + std::to_string(int(outcome.result.provenance.seconds)) + " s on " + outcome.result.provenance.machine).c_str());
            print_result(outcome.result, out, width);
            if (!block.takeaway.empty())
                for (const std::string& l : wrap_text("→ " + block.takeaway, width - 4, "  ")) std::fprintf(out, "%s\n", l.c_str());
            std::fprintf(out, "\n");
            std::fflush(out);
            ++runs;
        }
        print_paragraphs(step.paragraphs, out, width, printed);
        if (waits && k < n && o.only_step == 0 && !wait_for_enter(out)) break;
    }
    return runs;
}

}  // namespace tl
