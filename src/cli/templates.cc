#include "cli/templates.h"

namespace nimbus::cli {
namespace {

std::string Replace(std::string text, std::string_view from, std::string_view to) {
  size_t pos = 0;
  while ((pos = text.find(from, pos)) != std::string::npos) {
    text.replace(pos, from.size(), to);
    pos += to.size();
  }
  return text;
}

std::string Manifest(std::string_view runtime, std::string_view handler, std::string_view build) {
  std::string yaml =
      "# The nimbus manifest for this function; docs/manifest.md describes every key.\n"
      "name: {{NAME}}\n"
      "runtime: " + std::string(runtime) + "\n"
      "handler: " + std::string(handler) + "\n";
  if (!build.empty()) yaml += "build: " + std::string(build) + "   # run by `nimbus deploy` before packaging\n";
  yaml +=
      "memory: 128          # MiB\n"
      "timeout: 3           # seconds\n"
      "concurrency: {max: 10, min_warm: 0}\n"
      "keep_alive: 60       # seconds an idle instance lives\n"
      "http:\n"
      "  - {method: GET, path: /{{NAME}}}\n";
  return yaml;
}

constexpr const char* kPythonHandler = R"PY("""{{NAME}}: a nimbus function.

HTTP requests arrive as API Gateway HTTP API (payload v2.0) events; `nimbus invoke` passes its
payload as the event unchanged. Either way the answer is an API Gateway v2 response.
"""
import base64
import json


def handler(event, context):
    event = event if isinstance(event, dict) else {}
    name = event.get("name") or "world"
    if "requestContext" in event:  # an HTTP request
        query = event.get("queryStringParameters") or {}
        body = event.get("body") or ""
        if event.get("isBase64Encoded"):
            body = base64.b64decode(body).decode("utf-8", "replace")
        try:
            posted = json.loads(body) if body else {}
        except ValueError:
            posted = {}
        name = query.get("name") or (posted.get("name") if isinstance(posted, dict) else None) or name
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps({"message": f"Hello, {name}!", "function": context.function_name}),
    }
)PY";

constexpr const char* kNodeHandler = R"JS(// {{NAME}}: a nimbus function.
//
// HTTP requests arrive as API Gateway HTTP API (payload v2.0) events; `nimbus invoke` passes
// its payload as the event unchanged. Either way the answer is an API Gateway v2 response.
exports.handler = async (event, context) => {
  event = event && typeof event === 'object' ? event : {};
  let name = event.name || 'world';
  if (event.requestContext) { // an HTTP request
    const query = event.queryStringParameters || {};
    let posted = {};
    if (event.body) {
      const text = event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString() : event.body;
      try { posted = JSON.parse(text) || {}; } catch (e) { posted = {}; }
    }
    name = query.name || posted.name || name;
  }
  return {
    statusCode: 200,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ message: `Hello, ${name}!`, function: context.functionName }),
  };
};
)JS";

constexpr const char* kCppHandler = R"CPP(// {{NAME}}: a nimbus function in C++ (runtime `provided`).
//
// `make` builds the executable `bootstrap`, which nimbus starts; nimbus::lambda::run talks to
// the Lambda Runtime API and calls the handler once per event. HTTP requests arrive as API
// Gateway HTTP API (payload v2.0) events, and the answer is an API Gateway v2 response.
#include <nimbus/lambda_runtime.hpp>

#include <string>

int main() {
  nimbus::lambda::run([](const std::string& event, const nimbus::lambda::Context& ctx) {
    (void)event;  // the request as JSON text; parse it with the JSON library of your choice
    // The HTTP body is a JSON string inside the JSON response, hence the escaped quotes;
    // function names match [a-zA-Z0-9-_] and need no escaping.
    std::string body = "{\\\"message\\\":\\\"Hello from " + ctx.function_name + "!\\\"}";
    return nimbus::lambda::Response::success(
        R"({"statusCode":200,"headers":{"content-type":"application/json"},"body":")" + body +
        R"("})");
  });
}
)CPP";

// The SDK header sits in ./nimbus/, so -I. finds it and the directory builds on any machine
// with a C++17 compiler.
constexpr const char* kCppMakefile =
    "# Builds `bootstrap`, the executable nimbus runs for this function.\n"
    "CXX ?= g++\n"
    "\n"
    "bootstrap: main.cpp nimbus/lambda_runtime.hpp\n"
    "\t$(CXX) -O2 -std=c++17 -I. -o bootstrap main.cpp\n"
    "\n"
    "clean:\n"
    "\trm -f bootstrap\n"
    "\n"
    ".PHONY: clean\n";

}  // namespace

const std::vector<std::string>& TemplateRuntimes() {
  static const std::vector<std::string> kRuntimes = {"python3", "nodejs", "cpp"};
  return kRuntimes;
}

Result<std::vector<TemplateFile>> RenderTemplate(std::string_view runtime, std::string_view name) {
  std::vector<TemplateFile> files;
  if (runtime == "python3") {
    files = {{"function.yaml", Manifest("python3", "app.handler", "")},
             {"app.py", kPythonHandler}};
  } else if (runtime == "nodejs") {
    files = {{"function.yaml", Manifest("nodejs", "index.handler", "")},
             {"index.js", kNodeHandler}};
  } else if (runtime == "cpp") {
    files = {{"function.yaml", Manifest("provided", "bootstrap", "make")},
             {"main.cpp", kCppHandler},
             {"Makefile", kCppMakefile}};
  } else {
    return Status::InvalidArgument("unknown runtime '" + std::string(runtime) +
                                   "'; choose python3, nodejs or cpp");
  }
  for (auto& f : files) f.content = Replace(std::move(f.content), "{{NAME}}", name);
  return files;
}

}  // namespace nimbus::cli
