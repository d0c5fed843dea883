#include "store/store.h"

#include "common/function_name.h"

namespace nimbus::store {
namespace {

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '_';
}

}  // namespace

Status ValidateFunctionName(const std::string& name) { return CheckFunctionName(name); }

Status ValidateAliasName(const std::string& alias) {
  bool ok = !alias.empty() && alias.size() <= 128;
  bool all_digits = true;
  for (char c : alias) {
    ok = ok && IsNameChar(c);
    all_digits = all_digits && c >= '0' && c <= '9';
  }
  if (ok && !all_digits) return Status::Ok();
  if (ok) {
    return Status::InvalidArgument("alias name '" + alias +
                                   "' is all digits, which would read as a version number; "
                                   "start it with a letter");
  }
  return Status::InvalidArgument("alias name '" + alias +
                                 "' is not valid; use 1 to 128 letters, digits, '-' or '_', "
                                 "not all digits ($LATEST is reserved)");
}

bool IsVersionNumber(const std::string& s) {
  if (s.empty() || s.size() > 18 || s[0] == '0') return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

Status FunctionNotFound(const std::string& name) {
  return Status::NotFound("function '" + name + "' does not exist; deploy it with `nimbus deploy DIR`"
                          " (`nimbus ls` lists deployed functions)");
}

Status VersionNotFound(const std::string& name, const std::string& version,
                       const std::string& latest) {
  return Status::NotFound("function '" + name + "' has no version '" + version +
                          "'; its versions are 1 to " + latest +
                          ", or use $LATEST or an alias");
}

Status AliasNotFound(const std::string& name, const std::string& alias) {
  return Status::NotFound("function '" + name + "' has no alias '" + alias +
                          "'; create it with PUT /v1/functions/" + name + "/aliases/" + alias +
                          " or use a version number");
}

}  // namespace nimbus::store
