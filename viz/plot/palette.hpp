// One fixed colour per named thing (series, method, format, task, memory category), shared by every view so that
// "bf16" or "LoRA" is the same colour everywhere. Unknown names get a stable colour from a hash of the name.
// Also the sequential colour map used by heatmaps. Colours are packed as ImU32 (IM_COL32 layout: 0xAABBGGRR).
#pragma once
#include <cstdint>
#include <string_view>

namespace tl::viz {

struct Rgb {
    std::uint8_t r = 0, g = 0, b = 0;
};

// The colour of a named thing: exact table entry, else the entry for the name without a known prefix
// ("memory_weights" -> "weights", "acc_lora" -> "lora"), else a hashed pick from a 10-colour qualitative set.
Rgb palette_rgb(std::string_view name);
std::uint32_t palette_color(std::string_view name, float alpha = 1.0f);
std::uint32_t pack(Rgb c, float alpha = 1.0f);

// Sequential map for heatmaps (viridis, 9 anchors interpolated): t in [0, 1], clamped.
Rgb colormap_viridis(double t);
// Diverging map for signed data (blue - light grey - red): t in [-1, 1], clamped.
Rgb colormap_diverging(double t);

}  // namespace tl::viz
