#include "core/rng.hpp"

#include <cmath>

namespace tl {

std::array<std::uint32_t, 4> Rng::philox(std::uint64_t seed, std::uint64_t stream, std::uint64_t counter) {
    constexpr std::uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;  // Philox-4x32 multipliers
    constexpr std::uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;  // key schedule (golden ratio, sqrt 3)
    std::uint32_t c0 = static_cast<std::uint32_t>(counter), c1 = static_cast<std::uint32_t>(counter >> 32);
    std::uint32_t c2 = static_cast<std::uint32_t>(stream), c3 = static_cast<std::uint32_t>(stream >> 32);
    std::uint32_t k0 = static_cast<std::uint32_t>(seed), k1 = static_cast<std::uint32_t>(seed >> 32);
    for (int round = 0; round < 10; ++round) {
        const std::uint64_t p0 = static_cast<std::uint64_t>(kM0) * c0;
        const std::uint64_t p1 = static_cast<std::uint64_t>(kM1) * c2;
        const std::uint32_t n0 = static_cast<std::uint32_t>(p1 >> 32) ^ c1 ^ k0;
        const std::uint32_t n2 = static_cast<std::uint32_t>(p0 >> 32) ^ c3 ^ k1;
        c0 = n0;
        c1 = static_cast<std::uint32_t>(p1);
        c2 = n2;
        c3 = static_cast<std::uint32_t>(p0);
        k0 += kW0;
        k1 += kW1;
    }
    return {c0, c1, c2, c3};
}

std::uint32_t Rng::next_u32() {
    if (used_ == 4) {
        block_ = philox(seed_, stream_, counter_++);
        used_ = 0;
    }
    return block_[used_++];
}

std::uint64_t Rng::next_u64() {
    const std::uint64_t hi = next_u32();
    return (hi << 32) | next_u32();
}

double Rng::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

float Rng::normal() {
    if (has_spare_normal_) {
        has_spare_normal_ = false;
        return spare_normal_;
    }
    const double u1 = 1.0 - uniform();  // (0, 1]: log stays finite
    const double u2 = uniform();
    const double r = std::sqrt(-2.0 * std::log(u1));
    constexpr double kTwoPi = 6.283185307179586476925286766559;
    spare_normal_ = static_cast<float>(r * std::sin(kTwoPi * u2));
    has_spare_normal_ = true;
    return static_cast<float>(r * std::cos(kTwoPi * u2));
}

std::uint64_t Rng::below(std::uint64_t n) {
    const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    std::uint64_t x;
    do x = next_u64();
    while (x >= limit);
    return x % n;
}

}  // namespace tl
