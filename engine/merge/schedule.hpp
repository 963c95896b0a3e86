// Per-layer parameter schedules, as mergekit writes them: a value is a number or a "gradient" (a list of anchors
// spread evenly over depth and interpolated linearly), optionally chosen per tensor by a name filter
// ([{filter: attn, value: [0, 1]}, {value: 0.5}]). Positions come from state_dict.hpp's depth_position.
#pragma once
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tl {

// Anchors a_0..a_n at positions 0, 1/n, ..., 1; one anchor is a constant.
struct DepthGradient {
    std::vector<double> anchors{0.0};
    double at(double position) const;
};

struct ParamSchedule {
    std::vector<std::pair<std::string, DepthGradient>> by_filter;  // first filter contained in the name wins
    DepthGradient fallback;

    static ParamSchedule constant(double v) { return {{}, DepthGradient{{v}}}; }
    double value(std::string_view tensor_name, double position) const;
    // tl::Error("[merge] <what> ...") when any anchor is outside [lo, hi] (or equals lo when lo_open).
    enum class Bound { closed, open_below };
    void check_range(std::string_view what, double lo, double hi, Bound bound) const;
};

}  // namespace tl
