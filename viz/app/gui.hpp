// The entry point of the viewer for the CLI: `tunelab gui [ID]` and `tunelab` with no arguments on a desktop.
// run_gui() opens the lesson browser (lessons and steps on the left, the step's view in the centre, prose and
// parameters on the right), or shows a saved Result; see docs/viewer.md. Built as a stub when TL_BUILD_VIZ=OFF.
#pragma once
#include <map>
#include <string>

namespace tl::viz {

struct GuiOptions {
    std::string lesson_id;         // "" : the first lesson; a unique prefix ("03") is enough
    int step = 1;                  // 1-based step to open
    std::string lang = "en";       // "ko" loads the Korean lesson and the Hangul font
    std::string result_file;       // non-empty: show this saved Result (JSON) instead of a lesson
    std::string view = "auto";     // with result_file: which view draws it
    std::string screenshot;        // non-empty: render (after the step's runs finish), write this PNG, exit
    std::string theme = "dark";    // dark | light
    int width = 1280, height = 800;
    int threads = 0;               // experiment threads; 0: all cores
    std::map<std::string, std::string> overrides;  // --set key=value for every run block whose experiment takes key
};

// Returns the process exit code: 0 done, 2 bad input or no display (with a message on stderr that offers the
// terminal course and xvfb-run). tl::Error from bad options propagates to the CLI, which maps it to 2.
int run_gui(const GuiOptions& options);

// True when a window can be opened (a display is set and reachable). False in a build without the viewer.
bool display_available();

}  // namespace tl::viz
