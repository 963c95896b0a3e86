// Whole-file reads with a size bound, and atomic whole-file writes (temp file, fsync, rename, fsync dir),
// so an interrupted save leaves either the old file or the new one, never a torn mix. POSIX only.
// Not a streaming API: callers hold the whole file in memory. Formats built on this: io/safetensors.hpp.
#pragma once
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tl {

// Replaces `path` with `bytes`. Writes `.<filename>.tmp.<pid>.<n>` next to the target, fsyncs it, renames it
// over the target and fsyncs the directory. On failure the temp file is removed, the previous file (if any)
// is untouched, and tl::Error names the path and the system error.
void write_file_atomic(const std::filesystem::path& path, std::span<const std::uint8_t> bytes);
void write_file_atomic(const std::filesystem::path& path, std::string_view text);

// Reads a whole regular file. tl::Error when it is missing, not a regular file, unreadable, or larger than
// max_bytes (the bound keeps a wrong path, a device file or a corrupt size from exhausting memory).
std::vector<std::uint8_t> read_file_bytes(const std::filesystem::path& path, std::uint64_t max_bytes);
std::string read_file_text(const std::filesystem::path& path, std::uint64_t max_bytes);

}  // namespace tl
