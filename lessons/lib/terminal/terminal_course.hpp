// The terminal course: prints a lesson step by step — prose wrapped to the terminal, each run block's experiment
// with a progress line, its result as tables and sparklines — waiting for Enter between steps when a person is at
// the keyboard (stdin a terminal and not --yes).
#pragma once
#include <cstdio>
#include <map>
#include <string>

#include "lesson/lesson.hpp"
#include "lesson/runner.hpp"

namespace tl {

enum class Pacing { wait_for_enter, run_through };

struct CourseOptions {
    int first_step = 1;                              // 1-based
    int only_step = 0;                               // when > 0, run just this step
    Pacing pacing = Pacing::wait_for_enter;          // forced to run_through when stdin is not a terminal
    CachePolicy cache = CachePolicy::use;
    std::map<std::string, std::string> overrides;    // --set key=value, applied to every block that takes `key`
    int threads = 0;
    std::string device = "cpu";                      // where the experiments run (RunContext::device)
    std::FILE* out = stdout;
};

// The arguments a block runs with under the overrides (only keys its experiment declares are applied).
std::map<std::string, std::string> block_arguments(const RunBlock& block,
                                                   const std::map<std::string, std::string>& overrides);

// Returns the number of run blocks executed.
int run_terminal_lesson(const Lesson& lesson, const CourseOptions& options, const ResultCache& cache);

}  // namespace tl
