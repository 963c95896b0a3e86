// Terminal text layout: display width of UTF-8 (Hangul and other wide characters take two columns), word
// wrapping to a width, the terminal's width, and Unicode sparklines.
#pragma once
#include <string>
#include <vector>

namespace tl {

int display_width(const std::string& utf8);
// Wraps at spaces (and between wide characters, which Korean text needs less than CJK but may use) to `width`.
std::vector<std::string> wrap_text(const std::string& text, int width, const std::string& indent = "");
int terminal_width();  // $COLUMNS, the tty's width, else 80; clamped to 40..120
// Resamples ys to `width` cells of the eight block heights ▁▂▃▄▅▆▇█ between their min and max.
std::string sparkline(const std::vector<double>& ys, int width);
std::string pad_right(const std::string& s, int width);  // by display width

}  // namespace tl
