// One Result, one view, one window (see result_viewer.hpp).
#include "app/result_viewer.hpp"

#include <imgui.h>

#include <cstdio>

namespace tl::viz {

void draw_view_fullscreen(const ViewInfo& view, const ViewContext& ctx) {
    const ImGuiViewport* vp = ImGui::GetMainViewport();
    ImGui::SetNextWindowPos(vp->WorkPos);
    ImGui::SetNextWindowSize(vp->WorkSize);
    constexpr ImGuiWindowFlags kFlags = ImGuiWindowFlags_NoDecoration | ImGuiWindowFlags_NoMove |
                                        ImGuiWindowFlags_NoSavedSettings | ImGuiWindowFlags_NoBringToFrontOnFocus;
    ImGui::Begin("##view", nullptr, kFlags);
    view.draw(ctx);
    ImGui::End();
}

namespace {

void setup_style(const Window& w, const ResultViewOptions& o) {
    const std::string note = load_fonts(o.script, w.content_scale());
    if (!note.empty()) std::fprintf(stderr, "note: %s\n", note.c_str());
    apply_theme(o.theme, w.content_scale());
}

}  // namespace

Snapshot render_result(const Result& r, const ResultViewOptions& o) {
    const ViewInfo& view = views().at(o.view);  // unknown view: tl::Error before any window opens
    Window w({"tunelab - " + o.view, o.width, o.height, MouseInput::ignored});
    setup_style(w, o);
    Snapshot s;
    for (int frame = 0; frame < kSettleFrames; ++frame) {
        s.plots.clear();
        w.begin_frame();
        draw_view_fullscreen(view, {r, o.title, o.takeaway, RunState::done, &s.plots});
        if (frame + 1 < kSettleFrames) w.end_frame();
        else s.image = w.end_frame_with_capture();
    }
    return s;
}

int show_result(const Result& r, const ResultViewOptions& o) {
    const ViewInfo& view = views().at(o.view);
    Window w({"tunelab - " + o.view, o.width, o.height, MouseInput::enabled});
    setup_style(w, o);
    Theme theme = o.theme;
    while (!w.should_close()) {
        w.pace(60);
        w.begin_frame();
        draw_view_fullscreen(view, {r, o.title, o.takeaway, RunState::done, nullptr});
        if (ImGui::IsKeyPressed(ImGui::GetKeyIndex(ImGuiKey_Escape))) break;
        const bool wants_toggle = !ImGui::GetIO().WantTextInput && ImGui::IsKeyPressed('T', false);
        w.end_frame();
        if (wants_toggle) {
            theme = theme == Theme::dark ? Theme::light : Theme::dark;
            apply_theme(theme, w.content_scale());
        }
    }
    return 0;
}

}  // namespace tl::viz
