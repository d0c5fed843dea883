#include "http/api_error.h"

#include "common/json_text.h"
#include "common/percent.h"

namespace nimbus::http {

Response ApiError(const Request& req, bhttp::status status, std::string_view error_type, std::string_view message) {
  std::string body = "{\"Type\":\"User\",\"message\":";
  AppendJsonString(body, message);
  body += ",\"errorType\":";
  AppendJsonString(body, error_type);
  body += "}";
  Response res = MakeResponse(req, status, std::move(body));
  res.set("x-amzn-ErrorType", error_type);
  return res;
}

Response ApiError(const Request& req, const Status& st) {
  std::string_view type = "ServiceException";
  switch (st.code()) {
    case Code::kInvalidArgument: type = "InvalidParameterValueException"; break;
    case Code::kNotFound: type = "ResourceNotFoundException"; break;
    case Code::kAlreadyExists: type = "ResourceConflictException"; break;
    case Code::kTooLarge: type = "RequestTooLargeException"; break;
    case Code::kTooManyRequests: type = "TooManyRequestsException"; break;
    case Code::kFailedPrecondition: type = "ResourceConflictException"; break;
    case Code::kUnavailable: type = "ServiceException"; break;
    default: break;
  }
  return ApiError(req, static_cast<bhttp::status>(HttpStatusFor(st.code())), type, st.message());
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
