// Bit packing (see packing.hpp): a 64-bit accumulator collects codes low bits first and spills whole bytes.
#include "formats/packing.hpp"

#include <string>

#include "core/error.hpp"

namespace tl {

std::size_t packed_bytes(std::size_t count, int bits) { return (count * std::size_t(bits) + 7) / 8; }

std::vector<std::uint8_t> pack_codes(std::span<const std::uint32_t> codes, int bits) {
    TL_ASSERT(bits >= 1 && bits <= 32, "[formats] pack_codes: bits must be 1..32");
    const std::uint64_t mask = (std::uint64_t{1} << bits) - 1;
    std::vector<std::uint8_t> out;
    out.reserve(packed_bytes(codes.size(), bits));
    std::uint64_t acc = 0;
    int filled = 0;  // bits held in acc
    for (const std::uint32_t c : codes) {
        TL_ASSERT((c & ~mask) == 0, "[formats] pack_codes: code " + std::to_string(c) + " does not fit in " +
                                        std::to_string(bits) + " bits");
        acc |= std::uint64_t(c) << filled;
        filled += bits;
        for (; filled >= 8; filled -= 8, acc >>= 8) out.push_back(std::uint8_t(acc & 0xFF));
    }
    if (filled > 0) out.push_back(std::uint8_t(acc & 0xFF));
    return out;
}

std::vector<std::uint32_t> unpack_codes(std::span<const std::uint8_t> bytes, int bits, std::size_t count) {
    TL_ASSERT(bits >= 1 && bits <= 32, "[formats] unpack_codes: bits must be 1..32");
    TL_ASSERT(bytes.size() >= packed_bytes(count, bits), "[formats] unpack_codes: too few bytes");
    const std::uint64_t mask = (std::uint64_t{1} << bits) - 1;
    std::vector<std::uint32_t> out;
    out.reserve(count);
    std::uint64_t acc = 0;
    int filled = 0;
    std::size_t next = 0;
    while (out.size() < count) {
        for (; filled < bits; filled += 8) acc |= std::uint64_t(bytes[next++]) << filled;
        out.push_back(std::uint32_t(acc & mask));
        acc >>= bits;
        filled -= bits;
    }
    return out;
}

}  // namespace tl
