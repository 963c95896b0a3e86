#include "terminal/text_layout.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <sys/ioctl.h>
#include <unistd.h>

namespace tl {

namespace {

// Decodes one code point at s[i], advancing i; invalid bytes count as one column.
char32_t next_code_point(const std::string& s, std::size_t& i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    if (i + std::size_t(len) > s.size()) len = 1;
    char32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (int k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + std::size_t(k)]) & 0x3F);
    i += std::size_t(len);
    return cp;
}

bool is_wide(char32_t cp) {
    return (cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0xA4CF) || (cp >= 0xAC00 && cp <= 0xD7A3) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF60) ||
           (cp >= 0xFFE0 && cp <= 0xFFE6);
}

}  // namespace

int display_width(const std::string& s) {
    int w = 0;
    for (std::size_t i = 0; i < s.size();) w += is_wide(next_code_point(s, i)) ? 2 : 1;
    return w;
}

std::vector<std::string> wrap_text(const std::string& text, int width, const std::string& indent) {
    std::vector<std::string> lines;
    std::string line = indent;
    int line_w = display_width(indent);
    std::size_t i = 0;
    while (i < text.size()) {
        if (text[i] == '\n') {
            lines.push_back(line);
            line = indent;
            line_w = display_width(indent);
            ++i;
            continue;
        }
        const std::size_t end = std::min(text.find_first_of(" \n", i), text.size());
        const std::string word = text.substr(i, end - i);
        const int word_w = display_width(word);
        const bool is_line_empty = line_w == display_width(indent);
        if (!is_line_empty && line_w + 1 + word_w > width) {
            lines.push_back(line);
            line = indent;
            line_w = display_width(indent);
        }
        if (line_w > display_width(indent)) {
            line += ' ';
            ++line_w;
        }
        line += word;
        line_w += word_w;
        i = end < text.size() && text[end] == ' ' ? end + 1 : end;
    }
    if (line_w > display_width(indent) || lines.empty()) lines.push_back(line);
    return lines;
}

int terminal_width() {
    int w = 0;
    if (const char* c = std::getenv("COLUMNS"); c && *c) w = std::atoi(c);
    winsize ws{};
    if (w <= 0 && isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0) w = ws.ws_col;
    if (w <= 0) w = 80;
    return std::clamp(w, 40, 120);
}

std::string sparkline(const std::vector<double>& ys, int width) {
    static const char* const kBlocks[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
    std::vector<double> finite;
    for (double y : ys)
        if (std::isfinite(y)) finite.push_back(y);
    if (finite.empty() || width <= 0) return {};
    const double lo = *std::min_element(finite.begin(), finite.end());
    const double hi = *std::max_element(finite.begin(), finite.end());
    const int n = std::min<int>(width, int(ys.size()));
    std::string out;
    for (int c = 0; c < n; ++c) {
        // The mean of the points falling in this cell.
        const std::size_t a = std::size_t(c) * ys.size() / std::size_t(n);
        const std::size_t b = std::max(a + 1, std::size_t(c + 1) * ys.size() / std::size_t(n));
        double sum = 0;
        int k = 0;
        for (std::size_t i = a; i < b; ++i)
            if (std::isfinite(ys[i])) sum += ys[i], ++k;
        if (k == 0) {
            out += ' ';
            continue;
        }
        const double t = hi > lo ? (sum / k - lo) / (hi - lo) : 0.5;
        out += kBlocks[std::clamp(int(std::lround(t * 7)), 0, 7)];
    }
    return out;
}

std::string pad_right(const std::string& s, int width) {
    const int w = display_width(s);
    return w >= width ? s : s + std::string(std::size_t(width - w), ' ');
}

}  // namespace tl
