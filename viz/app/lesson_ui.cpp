// The lesson browser's panes and controls (see lesson_ui.hpp). Layout: one fullscreen window with a menu bar and
// three child regions; the centre one hosts the view chosen by the run block's `view:` name.
#include "app/lesson_ui.hpp"

#include <imgui.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.hpp"
#include "terminal/terminal_course.hpp"
#include "views/view.hpp"

namespace tl::viz {

namespace {

std::string format_real(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    return buf;
}

double to_number(const std::string& s, double fallback) {
    try {
        return std::stod(s);
    } catch (const std::exception&) {
        return fallback;
    }
}

RunState run_state(WorkState s) {
    if (s == WorkState::running) return RunState::running;
    return s == WorkState::cancelled ? RunState::cancelled : RunState::done;
}

}  // namespace

LessonBrowser::LessonBrowser(std::filesystem::path root, const std::string& lesson_id, int step,
                             const std::string& lang, Theme theme, int threads,
                             std::map<std::string, std::string> overrides)
    : root_(std::move(root)),
      theme_(theme),
      overrides_(std::move(overrides)),
      worker_(ResultCache(ResultCache::default_dir()), threads) {
    entries_ = list_lessons(root_);
    if (entries_.empty()) throw Error("[viz] no lessons found in " + root_.string() + "; set TUNELAB_LESSONS");
    open_lesson(lesson_id.empty() ? entries_.front().id : lesson_id, lang);
    if (step < 1 || step > int(std::max<std::size_t>(lesson_.steps.size(), 1)))
        throw Error("[viz] --step " + std::to_string(step) + " is out of range: lesson " + lesson_.id + " has " +
                    std::to_string(lesson_.steps.size()) + " steps (1-based)");
    go_to_step(step - 1);
}

void LessonBrowser::open_lesson(const std::string& id, const std::string& lang) {
    lesson_ = find_lesson(root_, id, lang, experiments());
    lang_ = lesson_.lang;
    step_ = block_ = 0;
}

const RunBlock* LessonBrowser::current_block() const {
    if (step_ < 0 || std::size_t(step_) >= lesson_.steps.size()) return nullptr;
    const auto& runs = lesson_.steps[std::size_t(step_)].runs;
    return std::size_t(block_) < runs.size() ? &runs[std::size_t(block_)] : nullptr;
}

std::map<std::string, std::string>& LessonBrowser::chosen() {
    const std::string key = lesson_.id + "/" + std::to_string(step_) + "/" + std::to_string(block_);
    const bool is_new = !chosen_.count(key);
    auto& values = chosen_[key];
    if (const RunBlock* b = current_block(); is_new && b)  // a --set of a learner parameter is its start value
        for (const LessonParam& p : b->params)
            if (overrides_.count(p.name)) values[p.name] = overrides_.at(p.name);
    return values;
}

void LessonBrowser::go_to_step(int index) {
    if (lesson_.steps.empty()) return;
    step_ = std::clamp(index, 0, int(lesson_.steps.size()) - 1);
    block_ = 0;
    start_run();
}

void LessonBrowser::start_run() {
    if (const RunBlock* b = current_block()) {
        RunBlock resolved = *b;
        resolved.args = block_arguments(*b, overrides_);  // fixed arguments under --set, as the terminal course
        worker_.start(resolved, chosen());
    } else {
        worker_.stop();
        work_ = WorkView{};
        work_.version = 0;
    }
}

bool LessonBrowser::is_settled() const {
    WorkView probe = work_;
    worker_.refresh(probe);
    return !current_block() || (probe.state != WorkState::running && probe.state != WorkState::idle);
}

void LessonBrowser::handle_keys() {
    if (ImGui::GetIO().WantTextInput || ImGui::IsAnyItemActive()) return;
    auto pressed = [](ImGuiKey k) { return ImGui::IsKeyPressed(ImGui::GetKeyIndex(k)); };
    if (pressed(ImGuiKey_RightArrow) || pressed(ImGuiKey_PageDown)) go_to_step(step_ + 1);
    if (pressed(ImGuiKey_LeftArrow) || pressed(ImGuiKey_PageUp)) go_to_step(step_ - 1);
}

StyleRequest LessonBrowser::draw() {
    worker_.refresh(work_);
    StyleRequest req;
    handle_keys();
    if (!ImGui::GetIO().WantTextInput && ImGui::IsKeyPressed('T', false)) {
        theme_ = theme_ == Theme::dark ? Theme::light : Theme::dark;
        req.is_theme_changed = true;
    }
    const ImGuiViewport* vp = ImGui::GetMainViewport();
    ImGui::SetNextWindowPos(vp->WorkPos);
    ImGui::SetNextWindowSize(vp->WorkSize);
    ImGui::Begin("##tunelab", nullptr,
                 ImGuiWindowFlags_NoDecoration | ImGuiWindowFlags_NoMove | ImGuiWindowFlags_MenuBar |
                     ImGuiWindowFlags_NoBringToFrontOnFocus | ImGuiWindowFlags_NoSavedSettings);
    draw_menu(req);
    const float w = ImGui::GetContentRegionAvail().x;
    const float left = std::max(180.0f, w * 0.17f), right = std::max(260.0f, w * 0.25f);
    ImGui::BeginChild("left", {left, 0}, true);
    draw_left();
    ImGui::EndChild();
    ImGui::SameLine();
    ImGui::BeginChild("centre", {w - left - right - 2 * ImGui::GetStyle().ItemSpacing.x, 0}, true);
    draw_centre();
    ImGui::EndChild();
    ImGui::SameLine();
    ImGui::BeginChild("right", {0, 0}, true);
    draw_right();
    ImGui::EndChild();
    ImGui::End();
    return req;
}

void LessonBrowser::draw_menu(StyleRequest& req) {
    if (!ImGui::BeginMenuBar()) return;
    ImGui::TextUnformatted("tunelab");
    ImGui::TextDisabled("|  %s", lesson_.title.c_str());
    const float x = ImGui::GetWindowContentRegionMax().x - 260;
    if (x > ImGui::GetCursorPosX()) ImGui::SetCursorPosX(x);
    const bool has_korean = std::any_of(entries_.begin(), entries_.end(),
                                        [&](const LessonEntry& e) { return e.id == lesson_.id && e.has_korean; });
    if (has_korean && ImGui::SmallButton(lang_ == "ko" ? "English" : "Korean / 한국어")) {
        const int step = step_;
        open_lesson(lesson_.id, lang_ == "ko" ? "en" : "ko");
        req.is_script_changed = true;
        go_to_step(step);
    }
    if (ImGui::SmallButton(theme_ == Theme::dark ? "Light theme (T)" : "Dark theme (T)")) {
        theme_ = theme_ == Theme::dark ? Theme::light : Theme::dark;
        req.is_theme_changed = true;
    }
    ImGui::EndMenuBar();
}

void LessonBrowser::draw_left() {
    ImGui::TextDisabled("Lessons");
    for (const LessonEntry& e : entries_) {
        if (ImGui::Selectable((e.id + "##lesson").c_str(), e.id == lesson_.id) && e.id != lesson_.id) {
            open_lesson(e.id, lang_);
            go_to_step(0);
        }
        if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s", e.title.c_str());
    }
    ImGui::Separator();
    ImGui::TextDisabled("Steps  (Left/Right, PgUp/PgDn)");
    for (std::size_t i = 0; i < lesson_.steps.size(); ++i) {
        const std::string label = std::to_string(i + 1) + ". " + lesson_.steps[i].title + "##step";
        ImGui::PushTextWrapPos(0.0f);
        if (ImGui::Selectable(label.c_str(), int(i) == step_) && int(i) != step_) go_to_step(int(i));
        if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s", lesson_.steps[i].title.c_str());
        ImGui::PopTextWrapPos();
    }
}

void LessonBrowser::draw_centre() {
    const RunBlock* b = current_block();
    if (!b) {
        ImGui::TextWrapped("This step has no experiment: read the text on the right, then go on with the Right arrow.");
        return;
    }
    const auto& runs = lesson_.steps[std::size_t(step_)].runs;
    if (runs.size() > 1 && ImGui::BeginTabBar("runs")) {
        for (std::size_t i = 0; i < runs.size(); ++i)
            if (ImGui::BeginTabItem((runs[i].experiment + "##" + std::to_string(i)).c_str())) {
                if (int(i) != block_) block_ = int(i), start_run();
                ImGui::EndTabItem();
            }
        ImGui::EndTabBar();
    }
    const ViewInfo* view = views().find(b->view);
    if (!view) {
        ImGui::TextColored({0.9f, 0.5f, 0.2f, 1}, "view '%s' is not in this viewer yet; showing 'auto'", b->view.c_str());
        view = &views().at("auto");
    }
    if (work_.state == WorkState::failed) ImGui::TextColored({0.9f, 0.3f, 0.3f, 1}, "run failed: %s", work_.error.c_str());
    const ViewContext ctx{work_.result, lesson_.steps[std::size_t(step_)].title, b->takeaway, run_state(work_.state),
                          nullptr};
    // The step's view first; every scalar, table and text of the result (the lesson's prose refers to them) beside.
    if (view->name == "auto" || !ImGui::BeginTabBar("view_tabs")) {
        view->draw(ctx);
        return;
    }
    if (ImGui::BeginTabItem(view->name.c_str())) {
        view->draw(ctx);
        ImGui::EndTabItem();
    }
    if (ImGui::BeginTabItem("all results")) {
        views().at("auto").draw(ctx);
        ImGui::EndTabItem();
    }
    ImGui::EndTabBar();
}

bool LessonBrowser::draw_param(const LessonParam& p, std::string& value) {
    ImGui::TextUnformatted((p.label.empty() ? p.name : p.label).c_str());  // above: the pane is narrow
    ImGui::SetNextItemWidth(-1.0f);
    const std::string label = "##" + p.name;
    if (value.empty()) value = p.default_value;
    switch (p.kind) {
        case ParamKind::integer: {
            int v = int(std::lround(to_number(value, p.min)));
            ImGui::SliderInt(label.c_str(), &v, int(p.min), int(p.max));
            value = std::to_string(v);
            return ImGui::IsItemDeactivatedAfterEdit();
        }
        case ParamKind::real:
        case ParamKind::log_real: {
            float v = float(to_number(value, p.min));
            ImGui::SliderFloat(label.c_str(), &v, float(p.min), float(p.max), "%.4g",
                               p.kind == ParamKind::log_real ? ImGuiSliderFlags_Logarithmic : 0);
            value = format_real(v);
            return ImGui::IsItemDeactivatedAfterEdit();
        }
        case ParamKind::choice: {
            bool is_changed = false;
            if (ImGui::BeginCombo(label.c_str(), value.c_str())) {
                for (const std::string& c : p.choices)
                    if (ImGui::Selectable(c.c_str(), c == value) && c != value) value = c, is_changed = true;
                ImGui::EndCombo();
            }
            return is_changed;
        }
        case ParamKind::text: {
            char buf[256];
            std::snprintf(buf, sizeof buf, "%s", value.c_str());
            ImGui::InputText(label.c_str(), buf, sizeof buf);
            value = buf;
            return ImGui::IsItemDeactivatedAfterEdit();
        }
    }
    return false;
}

void LessonBrowser::draw_right() {
    if (lesson_.steps.empty()) return;
    const LessonStep& s = lesson_.steps[std::size_t(step_)];
    ImGui::TextWrapped("%s", s.title.c_str());
    ImGui::Separator();
    const RunBlock* b = current_block();
    if (b) {
        bool is_rerun = false;
        for (const LessonParam& p : b->params) is_rerun = draw_param(p, chosen()[p.name]) || is_rerun;
        const bool is_running = work_.state == WorkState::running;
        if (ImGui::Button(is_running ? "Restart" : "Run again")) is_rerun = true;
        ImGui::SameLine();
        if (is_running && ImGui::Button("Cancel")) worker_.cancel();
        const Progress& pr = work_.progress;
        const float frac = pr.total > 0 ? float(pr.done) / float(pr.total) : (is_running ? 0.0f : 1.0f);
        std::string status = is_running ? pr.label : work_.is_from_cache ? "from the cache" : "done";
        if (work_.state == WorkState::cancelled) status = "cancelled";
        if (work_.state == WorkState::failed) status = "failed";
        ImGui::ProgressBar(frac, {-1, 0}, status.c_str());
        if (is_rerun) start_run();
        ImGui::Separator();
    }
    ImGui::BeginChild("prose");
    ImGui::PushTextWrapPos(0.0f);
    for (const std::string& para : s.paragraphs) {
        ImGui::TextUnformatted(para.c_str());
        ImGui::Spacing();
    }
    ImGui::PopTextWrapPos();
    ImGui::EndChild();
}

}  // namespace tl::viz
