// run_gui(): option checks, the no-display message, and the two frame loops - the lesson browser (interactive
// or screenshot after the step's run finishes) and a saved Result (result_viewer.cpp). See gui.hpp.
#include "app/gui.hpp"

#include <cstdio>
#include <fstream>
#include <sstream>

#include "app/lesson_ui.hpp"
#include "app/result_viewer.hpp"
#include "app/window.hpp"
#include "core/error.hpp"

namespace tl::viz {

namespace {

Theme parse_theme(const std::string& s) {
    if (s == "dark") return Theme::dark;
    if (s == "light") return Theme::light;
    throw Error("[gui] --theme must be dark or light; got '" + s + "'");
}

int no_display_message(const GuiOptions& o) {
    const std::string id = o.lesson_id.empty() ? "00" : o.lesson_id;
    std::fprintf(stderr,
                 "error: no display to open the viewer on (%s).\n"
                 "Follow the lesson in the terminal instead:\n"
                 "    tunelab lesson %s\n"
                 "or render the viewer on a virtual display:\n"
                 "    xvfb-run -a -s \"-screen 0 1280x800x24\" tunelab gui %s --step %d --screenshot step.png\n",
                 last_glfw_error().c_str(), id.c_str(), id.c_str(), o.step);
    return 2;
}

Result load_result(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error("[gui] cannot read --result " + path + "; give a Result JSON (tunelab run ... --json)");
    std::stringstream ss;
    ss << in.rdbuf();
    return result_from_json(ss.str());
}

int run_result(const GuiOptions& o, Theme theme) {
    const Result r = load_result(o.result_file);
    views().at(o.view);  // an unknown view is bad input: report it before looking for a display
    if (!display_available()) return no_display_message(o);
    ResultViewOptions vo{o.view, "", "", theme, o.lang == "ko" ? Script::korean : Script::latin, o.width, o.height};
    if (o.screenshot.empty()) return show_result(r, vo);
    write_png(render_result(r, vo).image, o.screenshot);
    std::printf("wrote %s (%dx%d, view %s)\n", o.screenshot.c_str(), o.width, o.height, o.view.c_str());
    return 0;
}

int run_lessons(const GuiOptions& o, Theme theme) {
    if (!display_available()) return no_display_message(o);  // before the browser starts the step's run
    LessonBrowser browser(lessons_root(), o.lesson_id, o.step, o.lang, theme, o.threads, o.overrides);  // bad id/step: tl::Error
    const bool is_screenshot = !o.screenshot.empty();
    Window w({"tunelab", o.width, o.height, is_screenshot ? MouseInput::ignored : MouseInput::enabled});
    auto restyle = [&] {
        const std::string note = load_fonts(browser.script(), w.content_scale());
        if (!note.empty()) std::fprintf(stderr, "note: %s\n", note.c_str());
        apply_theme(browser.theme(), w.content_scale());
    };
    restyle();
    int settled_frames = 0;  // screenshot: frames drawn since the run finished
    while (!w.should_close()) {
        w.pace(is_screenshot ? 10 : 60);  // a screenshot waits for the run: leave the CPU to it
        w.begin_frame();
        const StyleRequest req = browser.draw();
        settled_frames = is_screenshot && browser.is_settled() ? settled_frames + 1 : 0;
        if (is_screenshot && settled_frames >= kSettleFrames) {
            write_png(w.end_frame_with_capture(), o.screenshot);
            std::printf("wrote %s\n", o.screenshot.c_str());
            if (browser.has_failed()) std::fprintf(stderr, "error: the step's run failed: %s\n", browser.error().c_str());
            return browser.has_failed() ? 1 : 0;
        }
        w.end_frame();
        if (req.is_script_changed) restyle();
        else if (req.is_theme_changed) apply_theme(browser.theme(), w.content_scale());
    }
    return 0;
}

}  // namespace

int run_gui(const GuiOptions& o) {
    const Theme theme = parse_theme(o.theme);
    if (o.width < 320 || o.height < 240 || o.width > 8192 || o.height > 8192)
        throw Error("[gui] --size must be between 320x240 and 8192x8192; got " + std::to_string(o.width) + "x" +
                    std::to_string(o.height));
    if (o.lang != "en" && o.lang != "ko") throw Error("[gui] --lang must be en or ko; got '" + o.lang + "'");
    if (!o.result_file.empty()) return run_result(o, theme);
    return run_lessons(o, theme);
}

}  // namespace tl::viz
