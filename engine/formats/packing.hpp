// Packed storage: codes of `bits` bits (1..32) laid end to end, little-endian at the bit level: element i
// occupies bits [i*bits, (i+1)*bits) of the byte stream, low bits first. For int4 that is two codes per byte,
// element 0 in the low nibble (ggml's and most kernels' order); 3-bit codes straddle bytes.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

namespace tl {

std::size_t packed_bytes(std::size_t count, int bits);  // ceil(count * bits / 8)

// Codes must fit in `bits` (InternalError otherwise: a quantizer bug).
std::vector<std::uint8_t> pack_codes(std::span<const std::uint32_t> codes, int bits);
std::vector<std::uint32_t> unpack_codes(std::span<const std::uint8_t> bytes, int bits, std::size_t count);

}  // namespace tl
