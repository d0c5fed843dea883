#include "gateway/api_error.h"

#include "common/json_text.h"

namespace nimbus::gateway {

namespace bhttp = ::nimbus::http::bhttp;
using ::nimbus::http::Request;
using ::nimbus::http::Response;

namespace {

Response ErrorResponse(unsigned version, bool keep_alive, bhttp::status status, std::string_view error_type,
                       std::string_view message) {
  std::string body = "{\"Type\":\"User\",\"message\":";
  AppendJsonString(body, message);
  body += ",\"errorType\":";
  AppendJsonString(body, error_type);
  body += "}";
  Response res{status, version};
  res.keep_alive(keep_alive);
  res.set(bhttp::field::content_type, "application/json");
  res.body() = std::move(body);
  res.set("x-amzn-ErrorType", error_type);
  return res;
}

std::string_view ErrorTypeFor(Code code) {
  std::string_view type = "ServiceException";
  switch (code) {
    case Code::kInvalidArgument: type = "InvalidParameterValueException"; break;
    case Code::kNotFound: type = "ResourceNotFoundException"; break;
    case Code::kAlreadyExists: type = "ResourceConflictException"; break;
    case Code::kTooLarge: type = "RequestTooLargeException"; break;
    case Code::kTooManyRequests: type = "TooManyRequestsException"; break;
    case Code::kFailedPrecondition: type = "ResourceConflictException"; break;
    case Code::kUnavailable: type = "ServiceException"; break;
    default: break;
  }
  return type;
}

}  // namespace

int HttpStatusFor(Code code) {
  switch (code) {
    case Code::kOk: return 200;
    case Code::kInvalidArgument: return 400;
    case Code::kNotFound: return 404;
    case Code::kAlreadyExists: return 409;
    case Code::kTooLarge: return 413;
    case Code::kTooManyRequests: return 429;
    case Code::kUnavailable: return 503;
    case Code::kDeadlineExceeded: return 504;
    case Code::kFailedPrecondition: return 409;
    case Code::kResourceExhausted: return 507;  // Insufficient Storage
    case Code::kIo: return 500;
    case Code::kInternal: return 500;
  }
  return 500;
}

Response ApiError(const Request& req, bhttp::status status, std::string_view error_type, std::string_view message) {
  return ErrorResponse(req.version(), req.keep_alive(), status, error_type, message);
}

Response ApiError(const Request& req, const Status& st) { return ApiError(req.version(), req.keep_alive(), st); }

Response ApiError(unsigned version, bool keep_alive, bhttp::status status, std::string_view error_type,
                  std::string_view message) {
  return ErrorResponse(version, keep_alive, status, error_type, message);
}

Response ApiError(unsigned version, bool keep_alive, const Status& st) {
  return ErrorResponse(version, keep_alive, static_cast<bhttp::status>(HttpStatusFor(st.code())),
                       ErrorTypeFor(st.code()), st.message());
}

}  // namespace nimbus::gateway
