// The viewer's stand-in for builds configured with TL_BUILD_VIZ=OFF (no ImGui/GLFW): the CLI links it instead of
// gui.cpp, so `tunelab gui` explains itself and nothing above needs an #ifdef.
#include <cstdio>

#include "app/gui.hpp"

namespace tl::viz {

int run_gui(const GuiOptions&) {
    std::fprintf(stderr,
                 "error: this tunelab was built without the viewer (TL_BUILD_VIZ=OFF).\n"
                 "Follow a lesson in the terminal instead: tunelab lesson 00\n"
                 "or rebuild with -DTL_BUILD_VIZ=ON (needs libimgui-dev, libglfw3-dev, libgl-dev).\n");
    return 2;
}

bool display_available() { return false; }

}  // namespace tl::viz
