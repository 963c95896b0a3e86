// GLFW window, ImGui contexts, frame loop and back-buffer capture (see window.hpp).
#include "app/window.hpp"

#include <GLFW/glfw3.h>
#include <backends/imgui_impl_glfw.h>
#include <backends/imgui_impl_opengl3.h>
#include <imgui.h>
#include <stb_image_write.h>

#include <algorithm>
#include <cstring>
#include <chrono>
#include <mutex>
#include <thread>

#include "core/error.hpp"

namespace tl::viz {

namespace {

// GLFW reports errors through a C callback: keep the last one for the message we print.
std::mutex g_error_mutex;
std::string g_last_error;

void on_glfw_error(int code, const char* text) {
    std::lock_guard<std::mutex> lock(g_error_mutex);
    g_last_error = "GLFW error " + std::to_string(code) + ": " + (text ? text : "");
}

// GLFW stays initialised from the first success to the end of the process. Re-initialising it after a GL context
// existed leaks X connections under Mesa (Xvfb refuses new ones after ~10 windows), which broke test suites.
struct GlfwSession {
    bool is_ready = false;
    ~GlfwSession() {
        if (is_ready) glfwTerminate();
    }
};

bool init_glfw() {
    static std::mutex m;
    static GlfwSession session;
    std::lock_guard<std::mutex> lock(m);
    if (session.is_ready) return true;
    glfwSetErrorCallback(on_glfw_error);  // before glfwInit, so a missing display is reported, not printed
    session.is_ready = glfwInit() == GLFW_TRUE;
    return session.is_ready;
}

}  // namespace

std::string last_glfw_error() {
    std::lock_guard<std::mutex> lock(g_error_mutex);
    return g_last_error.empty() ? "unknown GLFW error" : g_last_error;
}

bool display_available() { return init_glfw(); }

Window::Window(const WindowOptions& opt) {
    if (!init_glfw()) throw Error("[viz] cannot open a window: " + last_glfw_error());
    glfwWindowHint(GLFW_CONTEXT_VERSION_MAJOR, 3);
    glfwWindowHint(GLFW_CONTEXT_VERSION_MINOR, 3);
    glfwWindowHint(GLFW_OPENGL_PROFILE, GLFW_OPENGL_CORE_PROFILE);
    glfwWindowHint(GLFW_SCALE_TO_MONITOR, GLFW_TRUE);
    window_ = glfwCreateWindow(opt.width, opt.height, opt.title.c_str(), nullptr, nullptr);
    if (!window_) throw Error("[viz] cannot create an OpenGL 3.3 window: " + last_glfw_error());
    glfwMakeContextCurrent(window_);
    glfwSwapInterval(1);
    IMGUI_CHECKVERSION();
    ImGui::CreateContext();
    ImGuiIO& io = ImGui::GetIO();
    io.IniFilename = nullptr;  // layout is computed each frame; nothing to remember between runs
    if (opt.mouse == MouseInput::ignored) io.ConfigFlags |= ImGuiConfigFlags_NoMouse;
    ImGui_ImplGlfw_InitForOpenGL(window_, true);
    ImGui_ImplOpenGL3_Init("#version 330 core");
}

Window::~Window() {
    ImGui_ImplOpenGL3_Shutdown();
    ImGui_ImplGlfw_Shutdown();
    ImGui::DestroyContext();
    glfwDestroyWindow(window_);
}

bool Window::should_close() const { return glfwWindowShouldClose(window_) == GLFW_TRUE; }

float Window::content_scale() const {
    float sx = 1, sy = 1;
    glfwGetWindowContentScale(window_, &sx, &sy);
    return std::clamp(std::max(sx, sy), 1.0f, 4.0f);
}

void Window::pace(double fps) {
    const double now = glfwGetTime(), wait = last_frame_s_ + 1.0 / fps - now;
    if (wait > 0) std::this_thread::sleep_for(std::chrono::duration<double>(wait));
    last_frame_s_ = glfwGetTime();
}

void Window::begin_frame() {
    glfwPollEvents();
    ImGui_ImplOpenGL3_NewFrame();
    ImGui_ImplGlfw_NewFrame();
    ImGui::NewFrame();
}

void Window::render() {
    ImGui::Render();
    int w = 0, h = 0;
    glfwGetFramebufferSize(window_, &w, &h);
    glViewport(0, 0, w, h);
    const ImVec4 bg = ImGui::GetStyle().Colors[ImGuiCol_WindowBg];
    glClearColor(bg.x, bg.y, bg.z, 1.0f);
    glClear(GL_COLOR_BUFFER_BIT);
    ImGui_ImplOpenGL3_RenderDrawData(ImGui::GetDrawData());
}

void Window::end_frame() {
    render();
    glfwSwapBuffers(window_);
}

Image Window::end_frame_with_capture() {
    render();
    Image img;
    glfwGetFramebufferSize(window_, &img.width, &img.height);
    img.rgba.resize(std::size_t(img.width) * std::size_t(img.height) * 4);
    glFinish();
    glReadBuffer(GL_BACK);
    glPixelStorei(GL_PACK_ALIGNMENT, 1);
    glReadPixels(0, 0, img.width, img.height, GL_RGBA, GL_UNSIGNED_BYTE, img.rgba.data());
    const std::size_t row = std::size_t(img.width) * 4;  // OpenGL's row 0 is the bottom: flip
    std::vector<std::uint8_t> tmp(row);
    for (int y = 0; y < img.height / 2; ++y) {
        std::uint8_t* a = &img.rgba[std::size_t(y) * row];
        std::uint8_t* b = &img.rgba[std::size_t(img.height - 1 - y) * row];
        std::memcpy(tmp.data(), a, row), std::memcpy(a, b, row), std::memcpy(b, tmp.data(), row);
    }
    for (std::size_t i = 3; i < img.rgba.size(); i += 4) img.rgba[i] = 255;  // opaque PNG
    glfwSwapBuffers(window_);
    return img;
}

void write_png(const Image& img, const std::string& path) {
    if (img.width <= 0 || img.height <= 0) throw Error("[viz] nothing to write to " + path + ": empty image");
    if (!stbi_write_png(path.c_str(), img.width, img.height, 4, img.rgba.data(), img.width * 4))
        throw Error("[viz] cannot write the screenshot " + path + "; check the folder exists and is writable");
}

}  // namespace tl::viz
