// `tunelab lessons`, `tunelab lesson ID`, `tunelab experiments`, `tunelab run EXPERIMENT key=value ...`: the
// terminal course and direct access to the experiment registry (lessons/lib and engine/experiments do the work).
#include <cstdio>
#include <cstdlib>

#include "app/gui.hpp"
#include "common.hpp"
#include "core/error.hpp"
#include "io/atomic_file.hpp"
#include "lesson/lesson.hpp"
#include "lesson/runner.hpp"
#include "terminal/result_printer.hpp"
#include "terminal/terminal_course.hpp"
#include "terminal/text_layout.hpp"

namespace tl::cli {

namespace {

std::map<std::string, std::string> parse_assignments(const std::vector<std::string>& items, const char* what) {
    std::map<std::string, std::string> out;
    for (const std::string& s : items) {
        const auto eq = s.find('=');
        if (eq == std::string::npos || eq == 0)
            throw Error(std::string("[cli] ") + what + " expects key=value, got '" + s + "'");
        out[s.substr(0, eq)] = s.substr(eq + 1);
    }
    return out;
}

struct LessonOptions {
    CommonOptions common;
    std::string id, lang = "en";
    int step = 1;
    bool only = false, yes = false, no_cache = false, quick = false;
    std::vector<std::string> sets;
};

// --quick: the smallest settings that still run every step for real (tests, CI, a first look on a slow machine).
// Applied only to experiments that declare these arguments; --set wins over them.
const std::map<std::string, std::string> kQuickOverrides = {
    {"preset", "nano"}, {"base_steps", "150"}, {"steps", "60"}, {"eval_n", "20"}};

void run_lesson_command(const LessonOptions& o) {
    const Lesson lesson = find_lesson(lessons_root(), o.id, o.lang, experiments());
    CourseOptions co;
    co.first_step = o.only ? 1 : o.step;
    co.only_step = o.only ? o.step : 0;
    co.pacing = o.yes ? Pacing::run_through : Pacing::wait_for_enter;
    co.cache = o.no_cache ? CachePolicy::bypass : CachePolicy::use;
    const auto sets = parse_assignments(o.sets, "--set");
    co.threads = o.common.threads;
    co.device = o.common.device;
    for (const auto& [k, v] : sets) {
        bool is_used = false;
        for (const LessonStep& s : lesson.steps)
            for (const RunBlock& b : s.runs)
                for (const ParamSpec& p : experiments().at(b.experiment).params) is_used = is_used || p.name == k;
        if (!is_used) throw Error("[cli] --set " + k + ": no experiment of lesson " + lesson.id + " takes '" + k + "'");
    }
    if (o.quick) co.overrides = kQuickOverrides;
    for (const auto& [k, v] : sets) co.overrides[k] = v;
    run_terminal_lesson(lesson, co, ResultCache(ResultCache::default_dir()));
}

void list_lessons_command() {
    const auto root = lessons_root();
    const auto entries = list_lessons(root);
    if (entries.empty()) throw Error("[lesson] no lessons found in " + root.string() + "; set TUNELAB_LESSONS");
    std::printf("%-20s %-8s %s\n", "id", "time", "title");
    for (const LessonEntry& e : entries) {
        const Lesson l = load_lesson(e.dir / "lesson.md", experiments());
        const int secs = int(l.estimated_seconds());
        std::printf("%-20s %5d s  %s%s\n", e.id.c_str(), secs, e.title.c_str(), e.has_korean ? "  (한국어)" : "");
    }
    std::printf("\nRun one with `tunelab lesson ID` (add --yes to run every step without pausing).\n");
}

void list_experiments_command() {
    for (const ExperimentInfo& e : experiments().all()) {
        std::printf("%s — %s\n", e.name.c_str(), e.title.c_str());
        for (const std::string& l : wrap_text(e.description, terminal_width() - 4, "    ")) std::printf("%s\n", l.c_str());
        for (const ParamSpec& p : e.params) std::printf("    %-14s default %-8s %s\n", p.name.c_str(), p.default_value.c_str(), p.help.c_str());
    }
}

struct RunOptions {
    CommonOptions common;
    std::string experiment, json_out;
    std::vector<std::string> assignments;
    bool no_cache = false;
};

void run_experiment_command(const RunOptions& o) {
    RunBlock block;
    block.experiment = o.experiment;
    block.args = parse_assignments(o.assignments, "run");
    experiments().resolve(block.experiment, block.args);  // validate before anything runs
    RunContext ctx;
    ctx.threads = o.common.threads;
    ctx.device = o.common.device;
    ctx.on_progress = [](const Progress& p) {
        std::fprintf(stderr, "\r  %s %lld/%lld   ", p.label.c_str(), (long long)p.done, (long long)p.total);
    };
    const RunOutcome r = run_block(block, {}, ctx, ResultCache(ResultCache::default_dir()),
                                   o.no_cache ? CachePolicy::bypass : CachePolicy::use);
    std::fprintf(stderr, "\n");
    if (!o.json_out.empty()) {
        write_file_atomic(o.json_out, to_json(r.result));
        std::printf("wrote %s\n", o.json_out.c_str());
    }
    print_result(r.result, stdout, terminal_width());
}

struct CourseCommandOptions {
    CommonOptions common;
    bool terminal = false;
    std::string lang = "en";
};

// The course, where it can be shown: the window on a desktop, else the lessons in the terminal (the first
// lesson, step by step, then where to go next).
void run_course_command(const CourseCommandOptions& o) {
    if (!o.terminal && viz::display_available()) {
        if (o.common.device != "cpu")
            throw Error("[cli] the course window runs its experiments on the CPU; for --device " + o.common.device +
                        " use the terminal lessons: tunelab course --terminal --device " + o.common.device);
        viz::GuiOptions g;
        g.lang = o.lang;
        g.threads = o.common.threads;
        if (const int rc = viz::run_gui(g); rc != 0) std::exit(rc);
        return;
    }
    if (!o.terminal)
        std::printf("No display here, so the course runs in the terminal (`tunelab gui` opens the window where "
                    "there is one; `xvfb-run tunelab gui --screenshot F.png` renders one headless).\n\n");
    list_lessons_command();
    const auto entries = list_lessons(lessons_root());
    LessonOptions lo;
    lo.id = entries.front().id;
    lo.lang = o.lang;
    lo.common = o.common;
    run_lesson_command(lo);
    if (entries.size() > 1)
        std::printf("\nNext: `tunelab lesson %s` (or any lesson above).\n", entries[1].id.c_str());
}

}  // namespace

void add_lesson_commands(CLI::App& app) {
    auto co = std::make_shared<CourseCommandOptions>();
    CLI::App* course = app.add_subcommand("course", "Start the course: the window when there is a display, else the terminal (the default command)");
    course->add_flag("--terminal", co->terminal, "the terminal lessons even when a display is available");
    course->add_option("--lang", co->lang, "en or ko")->capture_default_str();
    add_common_options(*course, co->common);
    course->callback([co] { run_course_command(*co); });

    app.add_subcommand("lessons", "List the course's lessons")->callback([] { list_lessons_command(); });
    app.add_subcommand("experiments", "List the experiments lessons run, with their arguments")->callback([] {
        list_experiments_command();
    });

    auto lo = std::make_shared<LessonOptions>();
    CLI::App* lesson = app.add_subcommand("lesson", "Step through a lesson in the terminal");
    lesson->add_option("id", lo->id, "lesson id or its number, e.g. 00-tour or 00")->required();
    lesson->add_option("--step", lo->step, "start at this step (1-based)")->check(CLI::Range(1, 1000));
    lesson->add_flag("--only", lo->only, "run only the step given by --step");
    lesson->add_flag("--yes,-y", lo->yes, "run every step without waiting for Enter");
    lesson->add_option("--lang", lo->lang, "en or ko")->capture_default_str();
    lesson->add_flag("--quick", lo->quick, "smallest settings (nano preset, few steps): a fast smoke run");
    lesson->add_flag("--no-cache", lo->no_cache, "measure again instead of using cached results");
    lesson->add_option("--set", lo->sets, "key=value for every experiment that takes key (e.g. preset=nano)");
    add_common_options(*lesson, lo->common);
    lesson->callback([lo] { run_lesson_command(*lo); });

    auto ro = std::make_shared<RunOptions>();
    CLI::App* run = app.add_subcommand("run", "Run one experiment: tunelab run finetune_task task=sort steps=200");
    run->add_option("experiment", ro->experiment, "experiment name (tunelab experiments lists them)")->required();
    run->add_option("args", ro->assignments, "key=value arguments");
    run->add_option("--json", ro->json_out, "also write the result as JSON to this file");
    run->add_flag("--no-cache", ro->no_cache, "measure again instead of using a cached result");
    add_common_options(*run, ro->common);
    run->callback([ro] { run_experiment_command(*ro); });
}

}  // namespace tl::cli
