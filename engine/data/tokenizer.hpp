// The byte tokenizer: token id = byte value (0..255), plus one special token, end-of-text (256). No BOS.
// It is not a BPE: every text round-trips exactly and the vocabulary is tiny, which keeps the model small.
// Next: tasks.hpp (the synthetic tasks whose text this encodes).
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tl {

inline constexpr std::int32_t kByteVocab = 256;  // ids 0..255 are the bytes themselves
inline constexpr std::int32_t kEndOfText = 256;  // pads packed rows; generation may also stop on it
inline constexpr std::int32_t kVocabSize = 257;

std::vector<std::int32_t> encode(std::string_view text);

// End-of-text is shown as "<|endoftext|>". An id outside 0..kVocabSize-1 throws tl::Error.
std::string decode(std::span<const std::int32_t> ids);

}  // namespace tl
