// Errors: tl::Error for bad input at an API boundary ("[module] what, values, what to do"),
// tl::InternalError for broken invariants (TL_ASSERT, always on). The CLI maps both to a message and exit 2.
#pragma once
#include <stdexcept>
#include <string>

namespace tl {

class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class InternalError : public std::logic_error {
public:
    using std::logic_error::logic_error;
};

[[noreturn]] void throw_internal(const char* cond, const std::string& msg, const char* file, int line);

}  // namespace tl

// Stays on in release builds: a wrong shape must never turn into silent memory corruption.
#define TL_ASSERT(cond, msg)                                             \
    do {                                                                 \
        if (!(cond)) ::tl::throw_internal(#cond, (msg), __FILE__, __LINE__); \
    } while (0)
