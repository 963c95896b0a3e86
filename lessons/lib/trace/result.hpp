// Result: what an experiment returns — plain data (scalars, series, tables, matrices, histograms, text) with no
// engine types, so the terminal printer, the GUI views and the benchmarks all read the same thing and the viewer
// never includes an engine header. JSON form and the on-disk cache: result_json.cpp, result_cache.hpp.
#pragma once
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace tl {

struct Scalar {
    std::string name;   // e.g. "accuracy_after"
    double value = 0;
    std::string unit;   // "", "%", "s", "bytes", "tokens/s" ...
};

// One line of a plot: y against x. The x label names the axis ("step", "rank", "t").
struct Series {
    std::string name;   // e.g. "train_loss"
    std::string x_label, y_label;
    std::vector<double> x, y;
};

using Cell = std::variant<double, std::string>;

struct Table {
    std::string name;
    std::vector<std::string> columns;
    std::vector<std::vector<Cell>> rows;  // each row has columns.size() cells
};

// Row-major rows x cols values (a heatmap, a confusion or sign-conflict map).
struct Matrix {
    std::string name;
    std::int64_t rows = 0, cols = 0;
    std::vector<double> values;
    std::vector<std::string> row_labels, col_labels;  // empty or of matching size
};

// counts[i] falls in [edges[i], edges[i+1]); edges.size() == counts.size() + 1.
struct Histogram {
    std::string name;
    std::vector<double> edges, counts;
};

struct Text {
    std::string name;   // e.g. "sample_before"
    std::string body;
};

// Where and with what a result was measured: results are compared across machines and engine versions.
struct Provenance {
    std::string engine_version;
    std::string machine;       // CPU model, cores, threads used
    std::string created_utc;   // ISO 8601
    double seconds = 0;        // wall time of the run
};

struct Result {
    std::string experiment;    // registry name
    std::vector<std::pair<std::string, std::string>> args;  // the resolved arguments, sorted by name
    Provenance provenance;
    std::vector<Scalar> scalars;
    std::vector<Series> series;
    std::vector<Table> tables;
    std::vector<Matrix> matrices;
    std::vector<Histogram> histograms;
    std::vector<Text> texts;
    bool is_cancelled = false;  // a cancelled run's partial result is shown but never cached

    const Scalar* find_scalar(const std::string& name) const;
    const Series* find_series(const std::string& name) const;
    const Table* find_table(const std::string& name) const;
    const Matrix* find_matrix(const std::string& name) const;
    const Histogram* find_histogram(const std::string& name) const;
    const Text* find_text(const std::string& name) const;
    double scalar_or(const std::string& name, double fallback) const;
    Series& series_named(const std::string& name, const std::string& x_label = "step");  // finds or appends
};

std::string cell_text(const Cell& c, int precision = 4);

std::string to_json(const Result& r);
// Validates the document's shape (types, matching sizes) and throws tl::Error naming what was wrong.
Result result_from_json(const std::string& text);

}  // namespace tl
