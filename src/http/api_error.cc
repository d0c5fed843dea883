#include "http/api_error.h"

#include "common/json_text.h"
#include "common/percent.h"

namespace nimbus::http {

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

std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (part.empty()) continue;
    auto eq = part.find('=');
    std::string_view v = eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1);
    out.emplace_back(PercentDecode(part.substr(0, eq), true), PercentDecode(v, true));
  }
  return out;
}

std::string QueryParam(std::string_view target, std::string_view key) {
  auto q = target.find('?');
  if (q == std::string_view::npos) return {};
  for (auto& [k, v] : ParseQuery(target.substr(q + 1))) {
    if (k == key) return v;
  }
  return {};
}

}  // namespace nimbus::http
