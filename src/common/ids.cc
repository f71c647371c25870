#include "common/ids.h"

#include <string>

namespace cocoon {

Status ValidateId(std::string_view id) {
  if (id.empty()) return Error(Code::kInvalidArgument, "invalid id: it is empty");
  if (id.size() > kMaxIdLength) {
    return Error(Code::kInvalidArgument, "invalid id: " + std::to_string(id.size()) +
                                             " characters, the limit is " +
                                             std::to_string(kMaxIdLength));
  }
  if (id[0] == '.' || id[0] == '-') {
    return Error(Code::kInvalidArgument,
                 "invalid id '" + std::string(id) + "': it must not start with '.' or '-'");
  }
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok) {
      return Error(Code::kInvalidArgument, "invalid id '" + std::string(id) +
                                               "': only letters, digits, '_', '.' and '-' are "
                                               "allowed");
    }
  }
  return OkStatus();
}

}  // namespace cocoon
