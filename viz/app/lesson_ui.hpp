// The lesson browser: lessons and steps (left), the step's view (centre), prose and parameter controls with a
// progress bar and cancel button (right). Runs go to a Worker thread; moving a parameter re-runs (the result
// cache answers repeats at once). Keyboard: Left/Right or PageUp/PageDown change step, T toggles the theme.
#pragma once
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "app/style.hpp"
#include "app/worker.hpp"
#include "lesson/lesson.hpp"

namespace tl::viz {

// What the frame loop must do between frames (fonts and themes cannot change inside a frame).
struct StyleRequest {
    bool is_theme_changed = false;
    bool is_script_changed = false;
};

class LessonBrowser {
public:
    LessonBrowser(std::filesystem::path root, const std::string& lesson_id, int step, const std::string& lang,
                  Theme theme, int threads, std::map<std::string, std::string> overrides = {});
    StyleRequest draw();  // one frame of the whole UI
    // True once the current step's run has finished (or it has none): screenshots wait for this.
    bool is_settled() const;
    bool has_failed() const { return work_.state == WorkState::failed; }
    const std::string& error() const { return work_.error; }
    Theme theme() const { return theme_; }
    Script script() const { return lang_ == "ko" ? Script::korean : Script::latin; }

private:
    void open_lesson(const std::string& id, const std::string& lang);
    void go_to_step(int index);
    void start_run();
    void handle_keys();
    void draw_menu(StyleRequest& req);
    void draw_left();
    void draw_centre();
    void draw_right();
    bool draw_param(const LessonParam& p, std::string& value);  // true when a new value was committed
    const RunBlock* current_block() const;
    std::map<std::string, std::string>& chosen();

    std::filesystem::path root_;
    std::vector<LessonEntry> entries_;
    Lesson lesson_;
    std::string lang_ = "en";
    int step_ = 0, block_ = 0;  // 0-based
    Theme theme_ = Theme::dark;
    std::map<std::string, std::map<std::string, std::string>> chosen_;  // per "lesson/step/block"
    std::map<std::string, std::string> overrides_;                      // --set, as in the terminal course
    Worker worker_;
    WorkView work_;
};

}  // namespace tl::viz
