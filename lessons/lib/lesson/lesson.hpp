// A lesson as parsed from lessons/NN-slug/lesson.md (md4c): `#` title, `##` steps, prose, and fenced `run` blocks
// that name an experiment, its fixed arguments, the parameters a learner may change, and the view that draws it.
// The format, with an example, is in docs/lessons.md. Parsing: lesson_parser.cpp; running: runner.hpp.
#pragma once
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "experiments/experiment.hpp"

namespace tl {

// A parameter a learner may change in a run block:   param lr: log_real 1e-4 .. 3e-2 = 3e-3 "peak learning rate"
struct LessonParam {
    std::string name;
    ParamKind kind = ParamKind::integer;
    double min = 0, max = 0;
    std::vector<std::string> choices;
    std::string default_value;
    std::string label;
};

// ```run EXPERIMENT
// key: value          fixed arguments
// param ...           learner-adjustable arguments (see LessonParam)
// view: dashboard     the GUI view that draws the result (default: "auto")
// takeaway: ...       one line the view prints under the plot
// ```
struct RunBlock {
    std::string experiment;
    std::map<std::string, std::string> args;
    std::vector<LessonParam> params;
    std::string view = "auto";
    std::string takeaway;
    int line = 0;  // in the lesson file, for error messages
    int paragraphs_before = 0;  // the step's paragraphs that come before this block (the terminal keeps the order)

    // The arguments for a run: fixed args, then each param's value from `chosen` (or its default).
    std::map<std::string, std::string> arguments(const std::map<std::string, std::string>& chosen = {}) const;
};

// Prose is kept as paragraphs of plain text (inline markup removed, code spans kept); lists keep a "- " prefix.
struct LessonStep {
    std::string title;
    std::vector<std::string> paragraphs;
    std::vector<RunBlock> runs;
};

struct Lesson {
    std::string id;          // folder name, e.g. "00-tour"
    std::string title;
    std::string lang = "en";
    std::vector<std::string> intro;   // paragraphs before the first step
    std::vector<LessonStep> steps;
    std::filesystem::path file;
    double estimated_seconds() const;  // sum of the experiments' estimates
};

// tl::Error "<file>:<line>: <what was expected>" for a malformed file or an unknown experiment/argument.
Lesson parse_lesson(const std::string& markdown, const std::filesystem::path& file_for_messages,
                    const ExperimentRegistry& registry);
Lesson load_lesson(const std::filesystem::path& file, const ExperimentRegistry& registry);

// Where lessons live: $TUNELAB_LESSONS, else the source tree's lessons/ (compiled in), else ./lessons.
std::filesystem::path lessons_root();
struct LessonEntry {
    std::string id, title;
    std::filesystem::path dir;
    bool has_korean = false;
};
std::vector<LessonEntry> list_lessons(const std::filesystem::path& root);  // sorted by id; reads titles only
// The lesson by id or unique id prefix ("00" finds "00-tour"), English or Korean (falls back to English).
Lesson find_lesson(const std::filesystem::path& root, const std::string& id, const std::string& lang,
                   const ExperimentRegistry& registry);

}  // namespace tl
