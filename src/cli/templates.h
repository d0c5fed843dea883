// The starter functions `nimbus init` writes, one per runtime, compiled into the binary so
// init needs no files at run time (except the C++ SDK header, which it copies beside the
// code so the function builds anywhere).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace nimbus::cli {

struct TemplateFile {
  std::string path;  // relative to the function directory, e.g. "app.py"
  std::string content;
};

// Runtimes init accepts, as the user types them: "python3", "nodejs", "cpp".
const std::vector<std::string>& TemplateRuntimes();

// The files for a new function NAME (already checked with common/function_name.h). For "cpp"
// the SDK header is not included; the caller copies it to kCppSdkHeaderPath. InvalidArgument
// for an unknown runtime.
Result<std::vector<TemplateFile>> RenderTemplate(std::string_view runtime, std::string_view name);

// Where the C++ template expects the SDK header, relative to the function directory.
inline constexpr const char* kCppSdkHeaderPath = "nimbus/lambda_runtime.hpp";

}  // namespace nimbus::cli
