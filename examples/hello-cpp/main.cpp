// hello-cpp: answers {"message": "hello NAME"} from a native `provided` function.
//
// Called through the gateway (GET /hello-cpp/{name}) it receives an API Gateway HTTP API v2.0
// event and answers a v2.0 result; invoked directly with {"name": "..."} it answers the bare
// message. The work per request is a string search and two small appends, so it also serves
// as a near no-op for benchmarks.
//
// The SDK has no JSON parser (it has no dependencies); this example pulls the one string it
// needs out of the event by hand. Real functions would use a JSON library.
#include <nimbus/lambda_runtime.hpp>

#include <string>
#include <string_view>

namespace lambda = nimbus::lambda;

namespace {

// The JSON string value following `"key"` at or after `from`, unescaped (\uXXXX kept as is,
// fine for an example). Empty when absent.
std::string StringAfterKey(std::string_view json, std::string_view key, size_t from = 0) {
  std::string quoted = "\"" + std::string(key) + "\"";
  size_t at = json.find(quoted, from);
  if (at == std::string_view::npos) return {};
  size_t pos = at + quoted.size();
  while (pos < json.size() && (json[pos] == ' ' || json[pos] == ':' || json[pos] == '\t')) ++pos;
  if (pos >= json.size() || json[pos] != '"') return {};
  std::string out;
  for (++pos; pos < json.size() && json[pos] != '"'; ++pos) {
    if (json[pos] == '\\' && pos + 1 < json.size()) ++pos;
    out += json[pos];
  }
  return out;
}

lambda::Response Hello(const std::string& event, const lambda::Context&) {
  std::string_view ev(event);
  size_t http = ev.find("\"requestContext\"");
  if (http == std::string_view::npos) {
    std::string name = StringAfterKey(ev, "name");
    std::string body = "{\"message\":\"hello ";
    lambda::append_json_escaped(body, name.empty() ? "world" : name);
    body += "\"}";
    return lambda::Response::success(std::move(body));
  }
  size_t params = ev.find("\"pathParameters\"");
  std::string name = params == std::string_view::npos ? std::string() : StringAfterKey(ev, "name", params);
  // The v2.0 result's body is itself a JSON document inside a JSON string: escape twice.
  std::string inner = "{\"message\":\"hello ";
  lambda::append_json_escaped(inner, name.empty() ? "world" : name);
  inner += "\"}";
  std::string body = R"({"statusCode":200,"headers":{"content-type":"application/json"},"body":")";
  lambda::append_json_escaped(body, inner);
  body += "\"}";
  return lambda::Response::success(std::move(body));
}

}  // namespace

int main() { lambda::run(Hello); }
