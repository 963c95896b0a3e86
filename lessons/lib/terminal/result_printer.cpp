#include "terminal/result_printer.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "terminal/text_layout.hpp"

namespace tl {

namespace {

std::string number(double v) {
    char buf[48];
    if (std::fabs(v) >= 1e6 || (std::fabs(v) < 1e-3 && v != 0)) std::snprintf(buf, sizeof buf, "%.3g", v);
    else std::snprintf(buf, sizeof buf, "%.4g", v);
    return buf;
}

std::string bytes_text(double b) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (std::fabs(b) >= 1024 && u < 4) b /= 1024, ++u;
    char buf[48];
    std::snprintf(buf, sizeof buf, "%.1f %s", b, units[u]);
    return buf;
}

void print_scalars(const Result& r, std::FILE* out) {
    if (r.scalars.empty()) return;
    int w = 0;
    for (const Scalar& s : r.scalars) w = std::max(w, display_width(s.name));
    for (const Scalar& s : r.scalars) {
        const std::string v = s.unit == "bytes" ? bytes_text(s.value) : number(s.value) + (s.unit.empty() ? "" : " " + s.unit);
        std::fprintf(out, "  %s  %s\n", pad_right(s.name, w).c_str(), v.c_str());
    }
}

void print_table(const Table& t, std::FILE* out, int width) {
    std::vector<int> w(t.columns.size());
    for (std::size_t c = 0; c < t.columns.size(); ++c) w[c] = display_width(t.columns[c]);
    for (const auto& row : t.rows)
        for (std::size_t c = 0; c < row.size() && c < w.size(); ++c)
            w[c] = std::max(w[c], display_width(cell_text(row[c])));
    // Shrink the widest column until the row fits the terminal (long cells are cut, short ones never).
    auto row_width = [&] {
        int sum = 3;
        for (int x : w) sum += x + 2;
        return sum;
    };
    while (row_width() > width && !w.empty()) {
        int& widest = *std::max_element(w.begin(), w.end());
        if (widest <= 12) break;
        --widest;
    }
    auto cell = [&](const std::string& s, std::size_t c) {
        std::string v = s;
        while (display_width(v) > w[c] && !v.empty()) v.pop_back();  // ASCII-safe truncation of long cells
        return pad_right(v, w[c]);
    };
    std::fprintf(out, "  %s\n", t.name.c_str());
    std::string header = "   ";
    for (std::size_t c = 0; c < t.columns.size(); ++c) header += cell(t.columns[c], c) + "  ";
    std::fprintf(out, "%s\n", header.c_str());
    for (const auto& row : t.rows) {
        std::string line = "   ";
        for (std::size_t c = 0; c < row.size() && c < w.size(); ++c) line += cell(cell_text(row[c]), c) + "  ";
        std::fprintf(out, "%s\n", line.c_str());
    }
}

void print_series(const Series& s, std::FILE* out, int width) {
    if (s.y.empty()) return;
    if (s.y.size() <= 12) {  // a sweep: the numbers themselves say more than a sparkline
        std::fprintf(out, "  %s by %s:", s.name.c_str(), s.x_label.c_str());
        for (std::size_t i = 0; i < s.y.size(); ++i)
            std::fprintf(out, "  %s=%s", number(s.x[i]).c_str(), number(s.y[i]).c_str());
        std::fprintf(out, "\n");
        return;
    }
    const auto [lo, hi] = std::minmax_element(s.y.begin(), s.y.end());
    const int chart_w = std::max(10, width - 52);
    std::fprintf(out, "  %s %s  %s -> %s  (min %s, max %s, %zu points over %s %s..%s)\n",
                 pad_right(s.name, 14).c_str(), sparkline(s.y, chart_w).c_str(), number(s.y.front()).c_str(),
                 number(s.y.back()).c_str(), number(*lo).c_str(), number(*hi).c_str(), s.y.size(), s.x_label.c_str(),
                 number(s.x.front()).c_str(), number(s.x.back()).c_str());
}

void print_memory(const Result& r, std::FILE* out) {
    std::string line;
    for (const Series& s : r.series)
        if (s.name.rfind("mem_", 0) == 0 && !s.y.empty() && s.y.back() > 0)
            line += "  " + s.name.substr(4) + " " + bytes_text(s.y.back());
    if (!line.empty()) std::fprintf(out, "  memory at the last step:%s\n", line.c_str());
}

void print_histogram(const Histogram& h, std::FILE* out, int width) {
    if (h.counts.empty()) return;
    const double top = *std::max_element(h.counts.begin(), h.counts.end());
    std::fprintf(out, "  %s\n", h.name.c_str());
    const int bar_w = std::max(10, width - 30);
    for (std::size_t i = 0; i < h.counts.size(); ++i) {
        const int n = top > 0 ? int(std::lround(h.counts[i] / top * bar_w)) : 0;
        std::string bar;
        for (int k = 0; k < n; ++k) bar += "█";
        std::fprintf(out, "   [%9s, %9s) %s %s\n", number(h.edges[i]).c_str(), number(h.edges[i + 1]).c_str(),
                     bar.c_str(), number(h.counts[i]).c_str());
    }
}

}  // namespace

void print_result(const Result& r, std::FILE* out, int width) {
    print_scalars(r, out);
    for (const Series& s : r.series)
        if (s.name.rfind("mem_", 0) != 0) print_series(s, out, width);
    print_memory(r, out);
    for (const Table& t : r.tables) print_table(t, out, width);
    for (const Histogram& h : r.histograms) print_histogram(h, out, width);
    for (const Matrix& m : r.matrices)
        std::fprintf(out, "  %s: %lld x %lld matrix (the window draws it as a heatmap)\n", m.name.c_str(),
                     (long long)m.rows, (long long)m.cols);
    for (const Text& t : r.texts) {
        std::fprintf(out, "  %s:\n", t.name.c_str());
        for (const std::string& line : wrap_text(t.body, width - 4, "    ")) std::fprintf(out, "%s\n", line.c_str());
    }
    if (r.is_cancelled) std::fprintf(out, "  (cancelled: partial result, not cached)\n");
}

}  // namespace tl
