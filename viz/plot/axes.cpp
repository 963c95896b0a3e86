// The plot frame (see axes.hpp): layout of margins, grid and ticks, axis labels, clip rectangle and hover.
#include "plot/axes.hpp"

#include <algorithm>
#include <cmath>

namespace tl::viz {

namespace {

constexpr float kTickLen = 4.0f;

enum class AxisDir { x, y };

// Categories: one tick per category, every k-th when their labels would overlap.
std::vector<Tick> ticks_for(const AxisSpec& a, float pixels, AxisDir dir) {
    if (!a.categories.empty()) {
        float extent = ImGui::GetTextLineHeight();
        if (dir == AxisDir::x)
            for (const std::string& c : a.categories) extent = std::max(extent, ImGui::CalcTextSize(c.c_str()).x);
        const std::size_t n = a.categories.size();
        const auto stride = std::max<std::size_t>(1, std::size_t(std::ceil(n * (extent + 6) / std::max(pixels, 1.0f))));
        std::vector<Tick> t;
        for (std::size_t i = 0; i < n; i += stride) t.push_back({double(i), a.categories[i], true});
        return t;
    }
    const int max_ticks = std::clamp(int(pixels / (dir == AxisDir::x ? 60.0f : 40.0f)), 2, 10);
    return axis_ticks(a.scale, std::min(a.range.lo, a.range.hi), std::max(a.range.lo, a.range.hi), max_ticks);
}

// A category axis spans -0.5 .. n-0.5 (one unit per category), in the orientation the spec's range asks for.
AxisMap map_for(const AxisSpec& a, float px_lo, float px_hi) {
    if (a.categories.empty()) return {a.scale, a.range.lo, a.range.hi, px_lo, px_hi};
    const double n = double(a.categories.size());
    return a.range.lo > a.range.hi ? AxisMap{ScaleKind::linear, n - 0.5, -0.5, px_lo, px_hi}
                                   : AxisMap{ScaleKind::linear, -0.5, n - 0.5, px_lo, px_hi};
}

}  // namespace

std::string readout(const std::string& label, double v) { return label + " = " + format_value(v); }

Plot::Plot(const PlotSpec& spec, PlotLog* log) : spec_(spec), dl_(ImGui::GetWindowDrawList()) {
    const ImVec2 origin = ImGui::GetCursorScreenPos();
    const ImVec2 avail = ImGui::GetContentRegionAvail();
    const ImVec2 size{spec.size.x > 0 ? spec.size.x : std::max(avail.x, 120.0f),
                      spec.size.y > 0 ? spec.size.y : std::max(avail.y, 100.0f)};
    const float line = ImGui::GetTextLineHeight();
    // Left margin: the widest y tick label. Computed with a provisional height, which is close enough.
    float label_w = 0;
    for (const Tick& t : ticks_for(spec.y, size.y - 3 * line, AxisDir::y))
        label_w = std::max(label_w, ImGui::CalcTextSize(t.label.c_str()).x);
    min_ = {origin.x + label_w + kTickLen + 6, origin.y + line + 4};          // y label sits above the axis
    const float right_pad = ImGui::CalcTextSize("0.000").x / 2 + 4;  // room for the last x tick label
    max_ = {origin.x + size.x - right_pad - spec.reserve_right, origin.y + size.y - 2 * line - 8};
    max_.x = std::max(max_.x, min_.x + 10), max_.y = std::max(max_.y, min_.y + 10);
    x_ = map_for(spec.x, min_.x, max_.x);
    y_ = map_for(spec.y, max_.y, min_.y);

    ImGui::InvisibleButton(spec.id.c_str(), size);
    is_hovered_ = ImGui::IsItemHovered();
    mouse_ = ImGui::GetIO().MousePos;
    is_hovered_ = is_hovered_ && mouse_.x >= min_.x && mouse_.x <= max_.x && mouse_.y >= min_.y && mouse_.y <= max_.y;

    dl_->AddRectFilled(min_, max_, ImGui::GetColorU32(ImGuiCol_FrameBg));
    draw_axes_labels();
    if (log) log->push_back({spec.id, min_.x, min_.y, max_.x, max_.y, x_, y_});
    dl_->PushClipRect(min_, max_, true);
}

void Plot::draw_axes_labels() {
    const ImU32 grid = ImGui::GetColorU32(ImGuiCol_Border, 0.55f), grid_minor = ImGui::GetColorU32(ImGuiCol_Border, 0.25f);
    const ImU32 text = ImGui::GetColorU32(ImGuiCol_Text), dim = ImGui::GetColorU32(ImGuiCol_TextDisabled);
    const float line = ImGui::GetTextLineHeight();
    for (const Tick& t : ticks_for(spec_.x, max_.x - min_.x, AxisDir::x)) {
        const float px = x_.to_px(t.value);
        if (px < min_.x - 0.5f || px > max_.x + 0.5f) continue;
        dl_->AddLine({px, min_.y}, {px, max_.y}, t.is_major ? grid : grid_minor);
        if (!t.is_major) continue;
        dl_->AddLine({px, max_.y}, {px, max_.y + kTickLen}, text);
        const float w = ImGui::CalcTextSize(t.label.c_str()).x;
        dl_->AddText({px - w / 2, max_.y + kTickLen + 1}, text, t.label.c_str());
    }
    for (const Tick& t : ticks_for(spec_.y, max_.y - min_.y, AxisDir::y)) {
        const float py = y_.to_px(t.value);
        if (py < min_.y - 0.5f || py > max_.y + 0.5f) continue;
        dl_->AddLine({min_.x, py}, {max_.x, py}, t.is_major ? grid : grid_minor);
        if (!t.is_major) continue;
        dl_->AddLine({min_.x - kTickLen, py}, {min_.x, py}, text);
        const ImVec2 sz = ImGui::CalcTextSize(t.label.c_str());
        dl_->AddText({min_.x - kTickLen - 3 - sz.x, py - sz.y / 2}, text, t.label.c_str());
    }
    const float xw = ImGui::CalcTextSize(spec_.x.label.c_str()).x;
    dl_->AddText({(min_.x + max_.x - xw) / 2, max_.y + kTickLen + line + 2}, dim, spec_.x.label.c_str());
    dl_->AddText({min_.x - kTickLen - 2, min_.y - line - 3}, dim, spec_.y.label.c_str());
}

void Plot::offer_hover(ImVec2 px, const std::string& text, HoverReach reach) {
    if (!is_hovered_) return;
    const float dx = px.x - mouse_.x, dy = px.y - mouse_.y;
    const float d2 = reach == HoverReach::anywhere ? std::min(dx * dx + dy * dy, 23.0f * 23.0f) : dx * dx + dy * dy;
    if (d2 < best_d2_) best_d2_ = d2, best_px_ = px, best_text_ = text;
}

Plot::~Plot() {
    dl_->PopClipRect();
    dl_->AddRect(min_, max_, ImGui::GetColorU32(ImGuiCol_Text, 0.6f));
    if (!is_hovered_) return;
    const ImU32 cross = ImGui::GetColorU32(ImGuiCol_Text, 0.35f);
    dl_->AddLine({mouse_.x, min_.y}, {mouse_.x, max_.y}, cross);
    if (!best_text_.empty()) dl_->AddCircle(best_px_, 5.0f, ImGui::GetColorU32(ImGuiCol_Text), 12, 2.0f);
    ImGui::BeginTooltip();
    if (!best_text_.empty()) ImGui::TextUnformatted(best_text_.c_str());
    ImGui::TextDisabled("%s   %s", readout(spec_.x.label, x_.from_px(mouse_.x)).c_str(),
                        readout(spec_.y.label, y_.from_px(mouse_.y)).c_str());
    ImGui::EndTooltip();
}

}  // namespace tl::viz
