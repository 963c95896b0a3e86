// The app shell's window: GLFW + OpenGL 3 + Dear ImGui contexts, owned by one RAII object, a frame loop pair
// (begin_frame / end_frame) and the back-buffer read for screenshots. No view or lesson logic here: gui.cpp
// drives it, snapshot.cpp renders a Result with it. Fonts and themes: style.hpp.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

struct GLFWwindow;

namespace tl::viz {

// RGBA pixels, row 0 at the top.
struct Image {
    int width = 0, height = 0;
    std::vector<std::uint8_t> rgba;
    const std::uint8_t* at(int x, int y) const { return &rgba[(std::size_t(y) * std::size_t(width) + std::size_t(x)) * 4]; }
};

enum class MouseInput { enabled, ignored };  // ignored: screenshots must not show a tooltip under Xvfb's pointer

struct WindowOptions {
    std::string title = "tunelab";
    int width = 1280, height = 800;
    MouseInput mouse = MouseInput::enabled;
};

class Window {
public:
    // tl::Error with the GLFW error text when there is no display or no OpenGL 3.3 context: run_gui turns that
    // into the "no display" message. Only one Window may exist at a time (Dear ImGui's context is global).
    explicit Window(const WindowOptions& opt);
    ~Window();
    Window(const Window&) = delete;
    Window& operator=(const Window&) = delete;

    bool should_close() const;
    void begin_frame();                            // polls events, starts an ImGui frame
    void end_frame();                              // renders and swaps
    Image end_frame_with_capture();                // renders, reads the back buffer (before the swap), swaps
    float content_scale() const;                   // 1 on a standard display, 2 on HiDPI
    // Sleeps so that frames come at most fps per second: vsync does not block under Xvfb or some drivers, and
    // a spinning render loop would take CPU from the experiment running beside it.
    void pace(double fps);
    GLFWwindow* handle() const { return window_; }

private:
    void render();
    GLFWwindow* window_ = nullptr;
    double last_frame_s_ = 0;
};

// True when a GLFW window can be opened (X11 or Wayland display present and reachable).
bool display_available();
// The last GLFW error text ("X11: The DISPLAY environment variable is missing"), for messages.
std::string last_glfw_error();

void write_png(const Image& img, const std::string& path);  // tl::Error when the file cannot be written

}  // namespace tl::viz
