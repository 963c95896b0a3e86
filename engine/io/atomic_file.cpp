// Atomic writes and bounded reads over POSIX file descriptors (std::ofstream cannot fsync).
// The durability recipe: write temp -> fsync(temp) -> rename(temp, target) -> fsync(dir). rename() is atomic
// on POSIX filesystems, so readers see the old file or the new one; the fsyncs make that survive a power cut.
#include "io/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "core/error.hpp"

namespace tl {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void fail(const fs::path& path, const std::string& what) {
    throw Error("[io] " + path.string() + ": " + what);
}

[[noreturn]] void fail_errno(const fs::path& path, const std::string& what, int err) {
    fail(path, what + ": " + std::strerror(err));
}

// Owns a file descriptor so every exception path closes it.
class Fd {
public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }
    // close() can report a deferred write error (NFS, quota), so a writer must check it.
    int close_checked() { return ::close(std::exchange(fd_, -1)); }

private:
    int fd_;
};

// Removes the temp file on every path except the one where rename() consumed it.
class TempFileGuard {
public:
    explicit TempFileGuard(fs::path p) : path_(std::move(p)) {}
    ~TempFileGuard() {
        if (is_armed_) ::unlink(path_.c_str());
    }
    TempFileGuard(const TempFileGuard&) = delete;
    TempFileGuard& operator=(const TempFileGuard&) = delete;
    void disarm() { is_armed_ = false; }

private:
    fs::path path_;
    bool is_armed_ = true;
};

// Creates `.<filename>.tmp.<pid>.<n>` exclusively. The counter keeps two threads saving the same target
// apart; O_EXCL plus a retry steps over a stale temp file left by a crashed process that had the same pid.
int create_temp_file(const fs::path& target, fs::path& tmp_out) {
    static std::atomic<unsigned> counter{0};
    const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
    for (int attempt = 0; attempt < 64; ++attempt) {
        // append(), not operator+: GCC 12 gives a false -Wrestrict on `"literal" + std::string&&`.
        std::string name = ".";
        name.append(target.filename().string()).append(".tmp.").append(std::to_string(::getpid()));
        name.append(".").append(std::to_string(counter.fetch_add(1)));
        tmp_out = dir / name;
        const int fd = ::open(tmp_out.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd >= 0) return fd;
        if (errno != EEXIST)
            fail_errno(target,
                       "cannot create temporary file '" + tmp_out.string() +
                           "' (does the directory exist and is it writable?)",
                       errno);
    }
    fail(target,
         "cannot create a temporary file: 64 candidate names next to it already exist; remove stale '." +
             target.filename().string() + ".tmp.*' files");
}

void write_all(int fd, const std::uint8_t* p, std::size_t n, const fs::path& target) {
    while (n > 0) {
        // Linux writes at most ~2 GiB per call; chunking keeps every call well inside that.
        const ssize_t w = ::write(fd, p, std::min<std::size_t>(n, std::size_t{1} << 30));
        if (w < 0) {
            if (errno == EINTR) continue;
            fail_errno(target, "write to temporary file failed (disk full? file size limit?)", errno);
        }
        p += w;
        n -= static_cast<std::size_t>(w);
    }
}

// Makes the rename itself durable. Some filesystems cannot fsync a directory (EINVAL); the rename has already
// happened by then, so that case is not an error.
void fsync_directory(const fs::path& target) {
    const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
    Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.get() < 0)
        fail_errno(target, "file replaced, but its directory could not be opened to fsync it", errno);
    if (::fsync(fd.get()) != 0 && errno != EINVAL)
        fail_errno(target, "file replaced, but fsync of its directory failed; it may not survive a crash",
                   errno);
}

const char* file_kind(const fs::file_status& st) {
    switch (st.type()) {
        case fs::file_type::directory:
            return "a directory";
        case fs::file_type::fifo:
            return "a FIFO";
        case fs::file_type::socket:
            return "a socket";
        case fs::file_type::block:
            return "a block device";
        case fs::file_type::character:
            return "a character device";
        default:
            return "not a regular file";
    }
}

}  // namespace

void write_file_atomic(const fs::path& path, std::span<const std::uint8_t> bytes) {
    if (!path.has_filename())
        fail(path, "cannot write: the path names no file (empty, or ends in '/'); give a file path");
    fs::path tmp;
    Fd fd(create_temp_file(path, tmp));
    TempFileGuard guard(tmp);
    write_all(fd.get(), bytes.data(), bytes.size(), path);
    if (::fsync(fd.get()) != 0)
        fail_errno(path, "fsync of temporary file '" + tmp.string() + "' failed", errno);
    if (fd.close_checked() != 0)
        fail_errno(path, "close of temporary file '" + tmp.string() + "' failed", errno);
    if (::rename(tmp.c_str(), path.c_str()) != 0)
        fail_errno(
            path, "cannot replace it with temporary file '" + tmp.string() + "' (is the target a directory?)",
            errno);
    guard.disarm();  // the temp name no longer exists: it is the target now
    fsync_directory(path);
}

void write_file_atomic(const fs::path& path, std::string_view text) {
    write_file_atomic(path, std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
}

std::vector<std::uint8_t> read_file_bytes(const fs::path& path, std::uint64_t max_bytes) {
    std::error_code ec;
    const fs::file_status st = fs::status(path, ec);
    if (st.type() == fs::file_type::not_found) fail(path, "file does not exist; check the path");
    if (ec) fail(path, "cannot inspect file: " + ec.message());
    // Checked before open(): opening a FIFO for reading would block.
    if (!fs::is_regular_file(st)) fail(path, std::string("cannot read: it is ") + file_kind(st));

    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) fail_errno(path, "cannot open for reading", errno);
    struct stat sb {};
    if (::fstat(fd.get(), &sb) != 0) fail_errno(path, "cannot stat open file", errno);
    if (!S_ISREG(sb.st_mode)) fail(path, "cannot read: it stopped being a regular file while being opened");
    const auto size = static_cast<std::uint64_t>(sb.st_size);
    if (size > max_bytes)
        fail(path, "file is " + std::to_string(size) + " bytes, more than the " + std::to_string(max_bytes) +
                       "-byte limit for this kind of file; is it the right file?");

    std::vector<std::uint8_t> out(static_cast<std::size_t>(size));
    std::size_t done = 0;
    while (done < out.size()) {
        const std::size_t want = std::min<std::size_t>(out.size() - done, std::size_t{1} << 30);
        const ssize_t r = ::read(fd.get(), out.data() + done, want);
        if (r < 0) {
            if (errno == EINTR) continue;
            fail_errno(path, "read failed after " + std::to_string(done) + " bytes", errno);
        }
        if (r == 0)
            fail(path, "file shrank while being read (" + std::to_string(done) + " of " +
                           std::to_string(size) + " bytes); is another process writing it?");
        done += static_cast<std::size_t>(r);
    }
    return out;
}

std::string read_file_text(const fs::path& path, std::uint64_t max_bytes) {
    const std::vector<std::uint8_t> bytes = read_file_bytes(path, max_bytes);
    return std::string(bytes.begin(), bytes.end());
}

}  // namespace tl
