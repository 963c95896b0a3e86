// `tunelab gui [ID]`: the ImGui viewer (viz/app/gui.hpp) - the lesson browser, a saved Result, or a headless
// screenshot of either. In a build without the viewer (TL_BUILD_VIZ=OFF) the linked stub says so and exits 2.
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "app/gui.hpp"
#include "common.hpp"
#include "core/error.hpp"

namespace tl::cli {

void add_gui_command(CLI::App& app) {
    auto o = std::make_shared<viz::GuiOptions>();
    auto positional_id = std::make_shared<std::string>();
    CLI::App* cmd = app.add_subcommand("gui", "Open the course in a window (Dear ImGui): lessons, live plots, sliders");
    cmd->add_option("id", *positional_id, "lesson id or its number, e.g. 00-tour or 00 (default: the first)");
    cmd->add_option("--lesson", o->lesson_id, "lesson id (same as the positional ID)");
    cmd->add_option("--step", o->step, "open this step (1-based)")->capture_default_str()->check(CLI::Range(1, 1000));
    cmd->add_option("--lang", o->lang, "en or ko (Korean loads the Nanum font)")->capture_default_str();
    cmd->add_option("--result", o->result_file, "show a saved Result JSON instead of a lesson (no experiment runs)");
    cmd->add_option("--view", o->view, "with --result: the view that draws it (auto, dashboard, ...)")
        ->capture_default_str();
    cmd->add_option("--screenshot", o->screenshot,
                    "render (after the step's experiment finishes), write this PNG and exit");
    cmd->add_option("--theme", o->theme, "dark or light (T toggles in the window)")->capture_default_str();
    cmd->add_option("--width", o->width, "window width in pixels")->capture_default_str();
    cmd->add_option("--height", o->height, "window height in pixels")->capture_default_str();
    auto sets = std::make_shared<std::vector<std::string>>();
    cmd->add_option("--set", *sets, "key=value for every experiment that takes key (e.g. preset=nano)");
    cmd->add_option("--threads", o->threads, "threads for experiments (0 = all cores)")->check(CLI::Range(0, 1024));
    cmd->callback([o, positional_id, sets] {
        for (const std::string& s : *sets) {
            const auto eq = s.find('=');
            if (eq == std::string::npos || eq == 0) throw Error("[cli] --set expects key=value, got '" + s + "'");
            o->overrides[s.substr(0, eq)] = s.substr(eq + 1);
        }
        if (!positional_id->empty() && !o->lesson_id.empty() && *positional_id != o->lesson_id)
            throw Error("[cli] give the lesson either as ID or as --lesson, not two different ones ('" +
                        *positional_id + "' and '" + o->lesson_id + "')");
        if (!positional_id->empty()) o->lesson_id = *positional_id;
        const int rc = viz::run_gui(*o);
        std::fflush(stdout);
        std::fflush(stderr);
        if (rc != 0) std::exit(rc);  // run_gui has printed why (e.g. no display); nothing is left to clean up
    });
}

}  // namespace tl::cli
