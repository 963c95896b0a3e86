#include "core/error.hpp"

namespace tl {

void throw_internal(const char* cond, const std::string& msg, const char* file, int line) {
    throw InternalError(msg + " (assertion `" + cond + "` failed at " + file + ":" + std::to_string(line) + ")");
}

}  // namespace tl
