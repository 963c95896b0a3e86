// The shared colour table (see palette.hpp). Add a row when a new method, format or series appears in a view.
#include "plot/palette.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <string>

namespace tl::viz {

namespace {

struct Entry {
    std::string_view name;
    Rgb rgb;
};

// Tableau 10 hues; the named rows below reuse them so that a view with few things looks consistent.
constexpr std::array<Rgb, 10> kQualitative = {{{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40},
                                               {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127},
                                               {188, 189, 34}, {23, 190, 207}}};

constexpr Entry kNamed[] = {
    // training series
    {"train_loss", {31, 119, 180}},  {"loss", {31, 119, 180}},         {"val_loss", {255, 127, 14}},
    {"validation_loss", {255, 127, 14}}, {"lr", {44, 160, 44}},        {"learning_rate", {44, 160, 44}},
    {"grad_norm", {214, 39, 40}},    {"tokens_per_s", {148, 103, 189}}, {"accuracy", {23, 190, 207}},
    // memory categories (MemCategory names)
    {"weights", {31, 119, 180}},     {"grads", {214, 39, 40}},         {"optimizer", {255, 127, 14}},
    {"activations", {44, 160, 44}},  {"kv_cache", {148, 103, 189}},    {"quant_storage", {140, 86, 75}},
    {"workspace", {127, 127, 127}},
    // fine-tuning methods
    {"full", {150, 150, 150}},          {"lora", {31, 119, 180}},         {"rslora", {23, 190, 207}},
    {"qlora", {148, 103, 189}},      {"adapter", {44, 160, 44}},       {"ia3", {227, 119, 194}},
    {"prompt", {188, 189, 34}},      {"prefix", {140, 86, 75}},        {"ptq", {255, 127, 14}},
    {"qat", {31, 119, 180}},         {"slerp", {31, 119, 180}},        {"linear", {255, 127, 14}},
    {"ties", {44, 160, 44}},         {"dare", {214, 39, 40}},          {"task_arithmetic", {148, 103, 189}},
    // numeric formats
    {"fp32", {150, 150, 150}},          {"tf32", {127, 127, 127}},        {"bf16", {31, 119, 180}},
    {"fp16", {255, 127, 14}},        {"fp8_e4m3", {214, 39, 40}},      {"fp8_e5m2", {227, 119, 194}},
    {"fp4", {140, 86, 75}},          {"int8", {44, 160, 44}},          {"int4", {188, 189, 34}},
    {"nf4", {148, 103, 189}},        {"ternary", {23, 190, 207}},
    // tasks (engine/data/tasks.cpp): away from slerp/linear's blue/orange, which share the merge views
    {"reverse", {44, 160, 44}},      {"add", {148, 103, 189}},         {"sort", {140, 86, 75}},
    {"json", {227, 119, 194}},       {"facts", {188, 189, 34}},
};

constexpr std::string_view kPrefixes[] = {"memory_", "mem_", "acc_", "accuracy_", "loss_", "train_", "val_"};

const Rgb* lookup(std::string_view name) {
    for (const Entry& e : kNamed)
        if (e.name == name) return &e.rgb;
    return nullptr;
}

Rgb lerp(Rgb a, Rgb b, double t) {
    auto mix = [t](std::uint8_t x, std::uint8_t y) { return std::uint8_t(std::lround(x + (y - x) * t)); };
    return {mix(a.r, b.r), mix(a.g, b.g), mix(a.b, b.b)};
}

}  // namespace

Rgb palette_rgb(std::string_view name) {
    if (const Rgb* c = lookup(name)) return *c;
    for (std::string_view p : kPrefixes)
        if (name.size() > p.size() && name.substr(0, p.size()) == p)
            if (const Rgb* c = lookup(name.substr(p.size()))) return *c;
    std::uint32_t h = 2166136261u;  // FNV-1a: stable across runs and machines
    for (char ch : name) h = (h ^ std::uint8_t(ch)) * 16777619u;
    return kQualitative[h % kQualitative.size()];
}

std::uint32_t pack(Rgb c, float alpha) {
    const auto a = std::uint32_t(std::lround(std::clamp(alpha, 0.0f, 1.0f) * 255));
    return (a << 24) | (std::uint32_t(c.b) << 16) | (std::uint32_t(c.g) << 8) | std::uint32_t(c.r);
}

std::uint32_t palette_color(std::string_view name, float alpha) { return pack(palette_rgb(name), alpha); }

Rgb colormap_viridis(double t) {
    constexpr std::array<Rgb, 9> kAnchors = {{{68, 1, 84}, {71, 44, 122}, {59, 81, 139}, {44, 113, 142},
                                             {33, 144, 141}, {39, 173, 129}, {92, 200, 99}, {170, 220, 50},
                                             {253, 231, 37}}};
    if (!std::isfinite(t)) t = 0;
    const double s = std::clamp(t, 0.0, 1.0) * (kAnchors.size() - 1);
    const auto i = std::min(std::size_t(s), kAnchors.size() - 2);
    return lerp(kAnchors[i], kAnchors[i + 1], s - double(i));
}

Rgb colormap_diverging(double t) {
    if (!std::isfinite(t)) t = 0;
    t = std::clamp(t, -1.0, 1.0);
    const Rgb mid{230, 230, 230}, neg{33, 102, 172}, pos{178, 24, 43};
    return t < 0 ? lerp(mid, neg, -t) : lerp(mid, pos, t);
}

}  // namespace tl::viz
