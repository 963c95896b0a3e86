// Generation with a KV cache: each new token runs the model on one row, attending to the keys and values cached
// for earlier positions, so a token costs O(params + t*C) instead of a whole forward over the prefix.
// Sampling: greedy (temperature 0), temperature, top-k. Deterministic for a seed.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "model/gpt.hpp"

namespace tl {

struct SampleOptions {
    int max_new_tokens = 64;
    float temperature = 0.0f;      // 0: greedy (argmax)
    int top_k = 0;                 // 0: all tokens
    std::uint64_t seed = 0;
    std::vector<std::int32_t> stop_tokens;  // generation ends after emitting one of these (not included)
};

class KvDecoder {
public:
    // A prefix (prefix tuning) fills the caches' first n positions as they are. A soft prompt attached to the
    // model (prompt tuning, P-tuning) is fed first: its n virtual tokens take
    // positions 0..n-1, and length() counts them. Other PEFT modules are refused (merge them first).
    explicit KvDecoder(const Gpt& model);
    ~KvDecoder();
    void reset();                                  // forget the cached prefix (the virtual tokens are fed again)
    std::int64_t length() const { return len_; }   // positions cached so far
    // Feeds one token at position length(); returns the logits (V) for the next token.
    const std::vector<float>& step(std::int32_t token);

private:
    struct Buffers;
    const std::vector<float>& run_position();
    const Gpt& model_;
    std::unique_ptr<Buffers> buf_;
    std::int64_t len_ = 0;
    std::vector<float> logits_host_;
};

// Runs the prompt through the cache (after the soft prompt's virtual tokens, if one is attached), then samples up
// to max_new_tokens. Returns only the new tokens. Stops early at a stop token or when the context is full.
std::vector<std::int32_t> generate(const Gpt& model, const std::vector<std::int32_t>& prompt, const SampleOptions& opt);

// Picks the next token from logits (V) per the options; rng_counter selects the random draw.
std::int32_t sample_token(const std::vector<float>& logits, const SampleOptions& opt, std::uint64_t draw_index);

}  // namespace tl
