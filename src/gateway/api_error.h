// Error answers in the shape of Lambda's REST API: a JSON body {"Type","message","errorType"}
// and the x-amzn-ErrorType header that the AWS SDKs read. Used by the admin and Invoke APIs (and
// by the daemon for the HTTP core's body-limit answer), so the HTTP core itself knows no Lambda
// shapes.
//
// Threading: free functions without shared state.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "http/server.h"

namespace nimbus::gateway {

namespace bhttp = ::nimbus::http::bhttp;
using ::nimbus::http::Request;
using ::nimbus::http::Response;

Response ApiError(const Request& req, bhttp::status status, std::string_view error_type, std::string_view message);
// HTTP status for a Status code (200 for Ok; 507 for ResourceExhausted, a full disk).
int HttpStatusFor(Code code);
// Maps a Status onto Lambda's error types: NotFound -> 404 ResourceNotFoundException, ...
Response ApiError(const Request& req, const Status& st);
// The same, for an answer given after the request is gone (HTTP version and keep-alive kept).
Response ApiError(unsigned version, bool keep_alive, const Status& st);
Response ApiError(unsigned version, bool keep_alive, bhttp::status status, std::string_view error_type,
                  std::string_view message);

}  // namespace nimbus::gateway
