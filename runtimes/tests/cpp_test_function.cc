// The C++ SDK's conformance fixture: a `provided` bootstrap built on nimbus/lambda_runtime.hpp
// that cpp_sdk_test.py runs against a fake Runtime API. What it does depends on the event, so
// one binary covers every case:
// (matched on the quoted value, e.g. "context", whatever the JSON spacing)
//   {"op":"context"} answers the context fields as JSON;  {"op":"throw"} throws
//   std::runtime_error;  {"op":"fail"} answers Response::failure;  {"op":"print"} prints a line
//   without a newline, then answers;  anything else is echoed back.
// With NIMBUS_TEST_INIT_ERROR set it reports an init error instead of serving.
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "nimbus/lambda_runtime.hpp"

namespace lambda = nimbus::lambda;

namespace {

std::string Quote(const std::string& s) {
  std::string out = "\"";
  lambda::append_json_escaped(out, s);
  out += '"';
  return out;
}

lambda::Response Handle(const std::string& event, const lambda::Context& ctx) {
  if (event.find("\"context\"") != std::string::npos) {
    const char* trace = std::getenv("_X_AMZN_TRACE_ID");
    std::string body = "{\"request_id\":" + Quote(ctx.request_id) +
                       ",\"function_arn\":" + Quote(ctx.function_arn) +
                       ",\"trace_id\":" + Quote(ctx.trace_id) +
                       ",\"trace_env\":" + Quote(trace != nullptr ? trace : "") +
                       ",\"client_context\":" + Quote(ctx.client_context) +
                       ",\"cognito_identity\":" + Quote(ctx.cognito_identity) +
                       ",\"deadline_ms\":" + std::to_string(ctx.deadline_ms) +
                       ",\"remaining_ms\":" + std::to_string(ctx.remaining_ms()) +
                       ",\"function_name\":" + Quote(ctx.function_name) +
                       ",\"function_version\":" + Quote(ctx.function_version) +
                       ",\"memory_mb\":" + std::to_string(ctx.memory_mb) +
                       ",\"log_group_name\":" + Quote(ctx.log_group_name) +
                       ",\"log_stream_name\":" + Quote(ctx.log_stream_name) + "}";
    return lambda::Response::success(body);
  }
  // A handler that changes _X_AMZN_TRACE_ID itself; the next invocation must see its own.
  if (event.find("\"unset_trace\"") != std::string::npos) {
    ::unsetenv("_X_AMZN_TRACE_ID");
    return lambda::Response::success("1");
  }
  if (event.find("\"set_trace\"") != std::string::npos) {
    ::setenv("_X_AMZN_TRACE_ID", "MINE", 1);
    return lambda::Response::success("1");
  }
  if (event.find("\"clear_env\"") != std::string::npos) {
    ::clearenv();
    return lambda::Response::success("1");
  }
  if (event.find("\"throw\"") != std::string::npos) {
    throw std::runtime_error("thrown on purpose");
  }
  if (event.find("\"fail\"") != std::string::npos) {
    return lambda::Response::failure("failed \"on\" purpose\n", "MyError");
  }
  if (event.find("\"print\"") != std::string::npos) {
    std::printf("no newline");
    return lambda::Response::success("1");
  }
  return lambda::Response::success(event);
}

}  // namespace

int main() {
  if (std::getenv("NIMBUS_TEST_INIT_ERROR") != nullptr) {
    lambda::Runtime runtime;
    runtime.init_error("config file missing; add config.json to the package", "Runtime.ConfigError");
    return 1;
  }
  lambda::run(Handle);
}
