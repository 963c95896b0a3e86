// Axis maps, nice ticks and number labels for the plotting module (see scale.hpp). No ImGui here.
#include "plot/scale.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace tl::viz {

namespace {

std::string printf_string(const char* fmt, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, fmt, v);
    return buf;
}

// Position of v on [lo, hi] as a fraction, in the axis's own space.
double fraction(ScaleKind kind, double lo, double hi, double v) {
    if (kind == ScaleKind::log10) {
        if (v <= 0 || lo <= 0 || hi <= 0) return 0;
        const double a = std::log10(lo), b = std::log10(hi);
        return b == a ? 0.5 : (std::log10(v) - a) / (b - a);
    }
    return hi == lo ? 0.5 : (v - lo) / (hi - lo);
}

}  // namespace

float AxisMap::to_px(double v) const {
    return px_lo + static_cast<float>(fraction(kind, lo, hi, v)) * (px_hi - px_lo);
}

double AxisMap::from_px(float px) const {
    const double f = px_hi == px_lo ? 0.0 : double(px - px_lo) / double(px_hi - px_lo);
    if (kind == ScaleKind::log10 && lo > 0 && hi > 0)
        return std::pow(10.0, std::log10(lo) + f * (std::log10(hi) - std::log10(lo)));
    return lo + f * (hi - lo);
}

double nice_step(double span, int max_ticks) {
    if (!(span > 0) || !std::isfinite(span)) return 1;
    const double raw = span / std::max(1, max_ticks);
    const double mag = std::pow(10.0, std::floor(std::log10(raw)));
    for (double m : {1.0, 2.0, 5.0, 10.0})
        if (m * mag >= raw * (1 - 1e-9)) return m * mag;
    return 10 * mag;
}

std::string format_tick(double v, double step) {
    if (std::abs(v) < step * 1e-6) v = 0;  // -0.0000001 on a grid through zero is zero
    const double a = std::max(std::abs(v), step);
    const char* suffix = "";
    double div = 1;
    if (a >= 1e9) suffix = "G", div = 1e9;
    else if (a >= 1e6) suffix = "M", div = 1e6;
    else if (a >= 1e4) suffix = "k", div = 1e3;
    if (step / div < 1e-4 && v != 0) return printf_string("%.3g", v);
    const int decimals = std::clamp(int(-std::floor(std::log10(step / div) + 1e-9)), 0, 9);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f%s", decimals, v / div, suffix);
    return buf;
}

std::string format_value(double v) {
    if (!std::isfinite(v)) return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
    const double a = std::abs(v);
    if (a == 0) return "0";
    if (a >= 1e9) return printf_string("%.3gG", v / 1e9);
    if (a >= 1e6) return printf_string("%.3gM", v / 1e6);
    if (a >= 1e4) return printf_string("%.3gk", v / 1e3);
    if (a >= 1e3) return printf_string("%.0f", v);
    if (a < 1e-3) return printf_string("%.2e", v);
    return printf_string("%.3g", v);
}

std::vector<Tick> linear_ticks(double lo, double hi, int max_ticks) {
    std::vector<Tick> out;
    if (!(hi > lo) || !std::isfinite(lo) || !std::isfinite(hi)) return out;
    const double step = nice_step(hi - lo, max_ticks);
    const double first = std::ceil(lo / step - 1e-9);
    for (int i = 0;; ++i) {
        const double v = (first + i) * step;
        if (v > hi + step * 1e-9) break;
        out.push_back({v, format_tick(v, step), true});
    }
    return out;
}

std::vector<Tick> log_ticks(double lo, double hi, int max_ticks) {
    std::vector<Tick> out;
    if (!(lo > 0) || !(hi > lo)) return out;
    const int k_lo = int(std::ceil(std::log10(lo) - 1e-9)), k_hi = int(std::floor(std::log10(hi) + 1e-9));
    if (k_hi < k_lo) return linear_ticks(lo, hi, max_ticks);  // no power of ten inside: label the range linearly
    const int decades = k_hi - k_lo + 1;
    const int stride = (decades + std::max(1, max_ticks) - 1) / std::max(1, max_ticks);
    const bool has_minor = std::log10(hi) - std::log10(lo) <= 3.5;
    for (int k = int(std::floor(std::log10(lo))); k <= k_hi; ++k) {
        const double p = std::pow(10.0, k);
        if (k >= k_lo && k % stride == 0) {
            const std::string label = (k < -3 || k > 5) ? "1e" + std::to_string(k) : format_value(p);
            out.push_back({p, label, true});
        }
        for (int m = 2; has_minor && m <= 9; ++m)
            if (m * p >= lo && m * p <= hi) out.push_back({m * p, "", false});
    }
    // Under two labelled powers of ten the axis reads as "1" alone: label the 2x and 5x ticks too.
    const auto majors = std::count_if(out.begin(), out.end(), [](const Tick& t) { return t.is_major; });
    if (majors < 2)
        for (Tick& t : out) {
            const double m = t.value / std::pow(10.0, std::floor(std::log10(t.value) + 1e-9));
            if (!t.is_major && (std::abs(m - 2) < 1e-6 || std::abs(m - 5) < 1e-6)) {
                t.is_major = true;
                t.label = format_value(t.value);
            }
        }
    std::sort(out.begin(), out.end(), [](const Tick& a, const Tick& b) { return a.value < b.value; });
    return out;
}

std::vector<Tick> axis_ticks(ScaleKind kind, double lo, double hi, int max_ticks) {
    return kind == ScaleKind::log10 ? log_ticks(lo, hi, max_ticks) : linear_ticks(lo, hi, max_ticks);
}

Range padded_range(const std::vector<double>& values, ScaleKind kind, double margin_fraction) {
    const bool is_log = kind == ScaleKind::log10;
    double lo = INFINITY, hi = -INFINITY;
    for (double v : values) {
        if (!std::isfinite(v) || (is_log && v <= 0)) continue;
        lo = std::min(lo, v), hi = std::max(hi, v);
    }
    if (lo > hi) return is_log ? Range{1, 10} : Range{0, 1};
    if (is_log) {
        double a = std::log10(lo), b = std::log10(hi);
        if (b - a < 1e-12) a -= 0.5, b += 0.5;
        const double m = (b - a) * margin_fraction;
        return {std::pow(10.0, a - m), std::pow(10.0, b + m)};
    }
    if (hi - lo < 1e-300 + 1e-12 * std::abs(lo)) {
        const double d = lo == 0 ? 1.0 : std::abs(lo) * 0.1;
        return {lo - d, hi + d};
    }
    const double m = (hi - lo) * margin_fraction;
    return {lo - m, hi + m};
}

Range merge_ranges(const Range& a, const Range& b) { return {std::min(a.lo, b.lo), std::max(a.hi, b.hi)}; }

}  // namespace tl::viz
