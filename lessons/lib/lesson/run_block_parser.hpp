// Parses the body of one ```run block (syntax in run_block_parser.cpp and docs/lessons.md).
#pragma once
#include <string>

#include "lesson/lesson.hpp"

namespace tl {

// first_line: the line of the opening fence; where: the file name for messages.
RunBlock parse_run_block(const std::string& experiment, const std::string& body, int first_line,
                         const std::string& where, const ExperimentRegistry& registry);

}  // namespace tl
