// Fonts and themes (see style.hpp).
#include "app/style.hpp"

#include <backends/imgui_impl_opengl3.h>
#include <imgui.h>

#include <filesystem>

namespace tl::viz {

namespace {

// Latin-1, Greek (alpha, sigma), punctuation (dashes, quotes), super/subscripts, arrows, maths (approx, <=, sqrt),
// box drawing and geometric shapes: what the lessons' prose uses. The atlas keeps a pointer: static storage.
constexpr ImWchar kLatinRanges[] = {0x0020, 0x00FF, 0x0370, 0x03FF, 0x2000, 0x206F, 0x2070, 0x209F, 0x2190,
                                    0x21FF, 0x2200, 0x22FF, 0x2500, 0x257F, 0x25A0, 0x25FF, 0};

}  // namespace

std::string load_fonts(Script script, float scale) {
    ImGuiIO& io = ImGui::GetIO();
    io.Fonts->Clear();
    std::string note;
    const float px = kBaseFontPx * scale;
    if (std::filesystem::exists(kLatinFont)) {
        io.Fonts->AddFontFromFileTTF(kLatinFont, px, nullptr, kLatinRanges);
    } else {
        note = std::string("font ") + kLatinFont + " not found (apt install fonts-dejavu-core); using ImGui's font";
        ImFontConfig cfg;
        cfg.SizePixels = 13.0f * scale;
        io.Fonts->AddFontDefault(&cfg);
    }
    if (script == Script::korean) {
        if (std::filesystem::exists(kKoreanFont)) {
            ImFontConfig cfg;
            cfg.MergeMode = true;  // Hangul glyphs join the Latin font: one font, both scripts
            io.Fonts->AddFontFromFileTTF(kKoreanFont, px, &cfg, io.Fonts->GetGlyphRangesKorean());
        } else {
            note = std::string("font ") + kKoreanFont + " not found (apt install fonts-nanum); Hangul shows as '?'";
        }
    }
    io.Fonts->Build();
    ImGui_ImplOpenGL3_DestroyFontsTexture();
    ImGui_ImplOpenGL3_CreateFontsTexture();
    return note;
}

void apply_theme(Theme theme, float scale) {
    ImGuiStyle style;  // fresh, so that repeated calls do not compound ScaleAllSizes
    if (theme == Theme::dark) {
        ImGui::StyleColorsDark(&style);
        style.Colors[ImGuiCol_WindowBg] = {0.11f, 0.11f, 0.12f, 1.0f};
        style.Colors[ImGuiCol_FrameBg] = {0.16f, 0.16f, 0.18f, 1.0f};
    } else {
        ImGui::StyleColorsLight(&style);
        style.Colors[ImGuiCol_WindowBg] = {0.97f, 0.97f, 0.96f, 1.0f};
        style.Colors[ImGuiCol_FrameBg] = {1.0f, 1.0f, 1.0f, 1.0f};
    }
    style.WindowRounding = 0;
    style.FrameRounding = 3;
    style.ScaleAllSizes(scale);
    ImGui::GetStyle() = style;
}

}  // namespace tl::viz
