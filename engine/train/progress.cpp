#include "train/progress.hpp"

#include <unistd.h>

#include <cstdio>

namespace tl {

ProgressBar::ProgressBar(std::string label) : label_(std::move(label)), is_tty_(::isatty(2) != 0) {}

std::string format_bytes(double bytes) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (bytes >= 1024 && u < 4) bytes /= 1024, ++u;
    char buf[32];
    std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
    return buf;
}

std::string format_count(double n) {
    char buf[32];
    if (n >= 1e6) std::snprintf(buf, sizeof buf, "%.2fM", n / 1e6);
    else if (n >= 1e3) std::snprintf(buf, sizeof buf, "%.1fk", n / 1e3);
    else std::snprintf(buf, sizeof buf, "%.0f", n);
    return buf;
}

void ProgressBar::on_step(const StepEvent& e) {
    std::fflush(stdout);  // keep the command's own lines (stdout) in order with the bar (stderr) when piped
    constexpr int kWidth = 28;
    const double frac = double(e.step) / double(e.total_steps);
    const int filled = int(frac * kWidth);
    std::string bar(std::size_t(filled), '#');
    bar += std::string(std::size_t(kWidth - filled), '.');
    const double eta = frac > 0 ? e.elapsed_s * (1 - frac) / frac : 0;
    char line[256];
    std::snprintf(line, sizeof line, "%s [%s] %lld/%lld  loss %.4f  lr %.2e  |g| %.2f  %s tok/s  %.0fs (eta %.0fs)",
                  label_.c_str(), bar.c_str(), (long long)e.step, (long long)e.total_steps, e.loss, e.lr,
                  e.grad_norm, format_count(e.tokens_per_s).c_str(), e.elapsed_s, eta);
    if (is_tty_) {
        std::fprintf(stderr, "\r%s\033[K", line);
        if (e.step == e.total_steps) std::fprintf(stderr, "\n");
    } else {
        const std::int64_t decile = e.step * 10 / e.total_steps;
        if (decile != last_printed_decile_) {
            std::fprintf(stderr, "%s\n", line);
            last_printed_decile_ = decile;
        }
    }
    std::fflush(stderr);
}

}  // namespace tl
