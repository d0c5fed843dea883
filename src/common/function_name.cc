#include "common/function_name.h"

#include <string>

namespace nimbus {

bool IsValidFunctionName(std::string_view name) {
  if (name.empty() || name.size() > kMaxFunctionNameLength) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

Status CheckFunctionName(std::string_view name) {
  if (IsValidFunctionName(name)) return Status::Ok();
  std::string m = "function name '";
  m.append(name).append("' is not valid; ").append(kFunctionNameRule);
  return Status::InvalidArgument(std::move(m));
}

}  // namespace nimbus
