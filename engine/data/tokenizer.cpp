// The byte tokenizer (see tokenizer.hpp).
#include "data/tokenizer.hpp"

#include "core/error.hpp"

namespace tl {

std::vector<std::int32_t> encode(std::string_view text) {
    std::vector<std::int32_t> ids(text.size());
    // Through unsigned char: a plain char is signed on x86, and byte 0xE2 must become 226, not -30.
    for (std::size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
    return ids;
}

std::string decode(std::span<const std::int32_t> ids) {
    std::string text;
    text.reserve(ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) {
        const std::int32_t id = ids[i];
        if (id == kEndOfText) {
            text += "<|endoftext|>";
        } else if (id >= 0 && id < kByteVocab) {
            text += static_cast<char>(static_cast<unsigned char>(id));
        } else {
            throw Error("[data] decode: token id " + std::to_string(id) + " at position " +
                        std::to_string(i) + " is outside the vocabulary 0.." +
                        std::to_string(kVocabSize - 1) +
                        "; pass ids produced by encode() or by a model with vocab_size " +
                        std::to_string(kVocabSize));
        }
    }
    return text;
}

}  // namespace tl
