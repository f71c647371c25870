// Validation of container and sandbox ids, which become path components and QEMU names.
#pragma once

#include <string_view>

#include "common/result.h"

namespace cocoon {

inline constexpr size_t kMaxIdLength = 64;

// An id is 1 to 64 characters of [A-Za-z0-9_.-], must not start with '.' or '-', so it can never
// name a parent directory, a hidden file or an option.
Status ValidateId(std::string_view id);

}  // namespace cocoon
