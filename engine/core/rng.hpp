// Rng: a counter-based generator (Philox-4x32-10, Salmon et al. 2011). A value depends only on
// (seed, stream, counter), so any draw can be reproduced or skipped to without replaying earlier ones, and
// parallel code stays deterministic: give each independent consumer its own stream.
#pragma once
#include <array>
#include <cstdint>

namespace tl {

class Rng {
public:
    explicit Rng(std::uint64_t seed, std::uint64_t stream = 0) : seed_(seed), stream_(stream) {}

    // The raw generator: 4 random words for a 64-bit counter.
    static std::array<std::uint32_t, 4> philox(std::uint64_t seed, std::uint64_t stream, std::uint64_t counter);

    std::uint32_t next_u32();
    std::uint64_t next_u64();
    double uniform();                    // [0, 1)
    float normal();                      // standard normal (Box-Muller)
    // Uniform integer in [0, n); n > 0. Uses rejection so every value is equally likely.
    std::uint64_t below(std::uint64_t n);
    std::uint64_t counter() const { return counter_; }

private:
    std::uint64_t seed_, stream_, counter_ = 0;
    std::array<std::uint32_t, 4> block_{};
    int used_ = 4;  // words of block_ already handed out
    bool has_spare_normal_ = false;
    float spare_normal_ = 0.0f;
};

}  // namespace tl
