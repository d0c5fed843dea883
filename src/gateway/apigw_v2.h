// API Gateway HTTP API payload format 2.0, both directions: BuildEventV2 turns an HTTP request
// into the event JSON a handler written for API Gateway expects, and MapResultV2 turns the
// function's result back into an HTTP response the way API Gateway reads 2.0 results.
// docs/http-events.md is the user-facing description of both mappings; keep them in step.
//
// These run on every HTTP request, so they write JSON by hand into one reserved string
// instead of building a boost::json tree, and avoid per-header allocations.
//
// Threading: pure functions over their arguments; safe on any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "common/status.h"

namespace nimbus::gateway {

namespace http = boost::beast::http;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

struct EventContext {
  std::string_view route_key = "$default";  // "GET /hello/{name}"; empty means "$default"
  // Decoded path parameters of the matched route; pathParameters is omitted when null/empty.
  const std::vector<std::pair<std::string, std::string>>* path_params = nullptr;
  std::string_view request_id;
  std::string_view source_ip;
  int64_t now_ms = 0;  // request time, Unix epoch milliseconds
  std::string_view stage = "$default";
  std::string_view domain_name;  // the Host header; read from the request when left empty
  std::string_view api_id = "nimbus";
};

// The event JSON a handler receives. See docs/http-events.md for every field.
std::string BuildEventV2(const Request& req, const EventContext& ctx);

// Reads a function result as API Gateway reads format 2.0 responses. A JSON object with a
// "statusCode" key is a structured response; any other valid JSON becomes a 200
// application/json response with the JSON text as body. Errors: InvalidArgument saying what
// is wrong with the result (the gateway answers 502 and logs the message).
Result<Response> MapResultV2(std::string_view function_result,
                             unsigned http_version_of_request = 11);

// True when a body with this Content-Type value travels as text in the event (text/*,
// application/json, application/*+json, application/xml, application/*+xml,
// application/javascript, application/x-www-form-urlencoded); parameters after ';' and
// letter case are ignored. An empty content type is not textual by itself.
bool IsTextualContentType(std::string_view content_type);

// Standard alphabet, with '=' padding.
std::string Base64Encode(std::string_view in);
// Accepts padded and unpadded input and skips ASCII whitespace (line-wrapped base64);
// anything else outside the alphabet is an InvalidArgument error.
Result<std::string> Base64Decode(std::string_view in);

}  // namespace nimbus::gateway
