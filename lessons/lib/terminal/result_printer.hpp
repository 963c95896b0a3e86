// Prints a Result in a terminal: scalars as a list, tables with aligned columns, each series as a sparkline with
// its range (short series as x/y rows), histograms as horizontal bars, texts verbatim, memory by category.
#pragma once
#include <cstdio>

#include "trace/result.hpp"

namespace tl {

void print_result(const Result& r, std::FILE* out, int width);

}  // namespace tl
