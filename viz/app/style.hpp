// Fonts and themes for the viewer: DejaVu Sans at a size that suits the window's content scale (Nanum Gothic
// merged in for Hangul, only when a Korean lesson is shown: its atlas takes ~0.7 s to build), and a dark and a
// light theme. Call between frames (after end_frame, before begin_frame): fonts rebuild the GL texture.
#pragma once
#include <string>

namespace tl::viz {

enum class Theme { dark, light };
enum class Script { latin, korean };  // which glyphs the font atlas must hold

inline constexpr const char* kLatinFont = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
inline constexpr const char* kKoreanFont = "/usr/share/fonts/truetype/nanum/NanumGothic.ttf";
inline constexpr float kBaseFontPx = 16.0f;

// Loads the fonts for the script at kBaseFontPx x scale and rebuilds the font texture. A missing TTF falls back
// to ImGui's built-in font and returns a note for the user (empty when all went well).
std::string load_fonts(Script script, float scale);
void apply_theme(Theme theme, float scale);

}  // namespace tl::viz
