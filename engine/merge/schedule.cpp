// DepthGradient interpolation and range checks for parameter schedules.
#include "merge/schedule.hpp"

#include <cmath>
#include <sstream>

#include "core/error.hpp"

namespace tl {

double DepthGradient::at(double position) const {
    TL_ASSERT(!anchors.empty(), "[merge] a gradient needs at least one anchor");
    const std::size_t n = anchors.size() - 1;
    if (n == 0 || position <= 0) return anchors.front();
    if (position >= 1) return anchors.back();
    const double scaled = position * double(n);
    const auto i = std::size_t(std::floor(scaled));
    if (i >= n) return anchors.back();
    const double frac = scaled - double(i);
    return anchors[i] * (1 - frac) + anchors[i + 1] * frac;
}

double ParamSchedule::value(std::string_view tensor_name, double position) const {
    for (const auto& [filter, g] : by_filter)
        if (tensor_name.find(filter) != std::string_view::npos) return g.at(position);
    return fallback.at(position);
}

void ParamSchedule::check_range(std::string_view what, double lo, double hi, Bound bound) const {
    auto check = [&](const DepthGradient& g) {
        for (double v : g.anchors) {
            const bool low_ok = bound == Bound::open_below ? v > lo : v >= lo;
            if (!std::isfinite(v) || !low_ok || v > hi) {
                std::ostringstream msg;
                msg << "[merge] " << what << " must be in " << (bound == Bound::open_below ? "(" : "[") << lo
                    << ", " << hi << "]; got " << v;
                throw Error(msg.str());
            }
        }
    };
    check(fallback);
    for (const auto& [filter, g] : by_filter) check(g);
}

}  // namespace tl
