// Payload format 2.0 mapping: the event writer (hand-written JSON with UTF-8-safe escaping),
// the result reader (boost::json parse into a stack buffer), and base64.
#include "gateway/apigw_v2.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>

#include <boost/beast/core/string.hpp>
#include <boost/container/small_vector.hpp>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parser.hpp>
#include <boost/json/value.hpp>

#include "common/json_text.h"
#include "common/percent.h"

namespace nimbus::gateway {
namespace {

// JSON string escaping and UTF-8 checks live in common/json_text.h.

char LowerAscii(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

void AppendKey(std::string& out, std::string_view key) {
  // Keys written here are fixed ASCII names without characters that need escaping.
  out.push_back('"');
  out.append(key);
  out.append("\":");
}

void AppendInt(std::string& out, int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

void AppendTwoDigits(std::string& out, unsigned v) {
  out.push_back(static_cast<char>('0' + v / 10 % 10));
  out.push_back(static_cast<char>('0' + v % 10));
}

// Days since 1970-01-01 -> civil date (proleptic Gregorian), after H. Hinnant's algorithm.
void CivilFromDays(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
}

// "12/Mar/2020:19:03:58 +0000", the Common Log Format time API Gateway writes.
void AppendClfTime(std::string& out, int64_t now_ms) {
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  int64_t secs = now_ms >= 0 ? now_ms / 1000 : -((-now_ms + 999) / 1000);
  int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
  auto sod = static_cast<unsigned>(secs - days * 86400);
  int64_t y;
  unsigned m, d;
  CivilFromDays(days, y, m, d);
  AppendTwoDigits(out, d);
  out.push_back('/');
  out.append(kMonths[m - 1]);
  out.push_back('/');
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, y);
  out.append(4 - std::min<size_t>(4, r.ptr - buf), '0');
  out.append(buf, r.ptr);
  out.push_back(':');
  AppendTwoDigits(out, sod / 3600);
  out.push_back(':');
  AppendTwoDigits(out, sod / 60 % 60);
  out.push_back(':');
  AppendTwoDigits(out, sod % 60);
  out.append(" +0000");
}

// ---- request pieces --------------------------------------------------------------------

// Header names compare with Beast's ASCII-only iequals/iless: HTTP field names are ASCII
// tokens, and boost::algorithm::iequals goes through std::locale for every character, which
// measured about 30 times slower per header name on this per-request path.
using boost::beast::iequals;
using boost::beast::iless;

using NameValue = std::pair<std::string_view, std::string_view>;
// Enough for typical requests without touching the heap.
using NameValues = boost::container::small_vector<NameValue, 32>;

// Stable sort by name, so repeated names become adjacent and keep their order. Requests
// have few headers and parameters: insertion sort then is faster than std::stable_sort and
// needs no buffer.
template <typename Less>
void StableSortByName(NameValues& v, Less less) {
  if (v.size() > 64) {
    std::stable_sort(v.begin(), v.end(),
                     [&](const NameValue& a, const NameValue& b) { return less(a.first, b.first); });
    return;
  }
  for (size_t i = 1; i < v.size(); ++i) {
    NameValue x = v[i];
    size_t j = i;
    while (j > 0 && less(x.first, v[j - 1].first)) {
      v[j] = v[j - 1];
      --j;
    }
    v[j] = x;
  }
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// "api.example.com:8080" -> "api"; "[::1]:80" -> "[::1]".
std::string_view DomainPrefix(std::string_view host) {
  if (!host.empty() && host.front() == '[') {
    size_t close = host.find(']');
    return close == std::string_view::npos ? host : host.substr(0, close + 1);
  }
  return host.substr(0, host.find_first_of(".:"));
}

}  // namespace

bool IsTextualContentType(std::string_view ct) {
  ct = TrimOws(ct.substr(0, ct.find(';')));
  char buf[128];
  if (ct.size() > sizeof buf) return false;
  for (size_t i = 0; i < ct.size(); ++i) buf[i] = LowerAscii(ct[i]);
  std::string_view t(buf, ct.size());
  if (t.size() > 5 && t.substr(0, 5) == "text/") return true;
  constexpr std::string_view kApp = "application/";
  if (t.size() <= kApp.size() || t.substr(0, kApp.size()) != kApp) return false;
  std::string_view sub = t.substr(kApp.size());
  if (sub == "json" || sub == "xml" || sub == "javascript" || sub == "x-www-form-urlencoded") {
    return true;
  }
  auto ends_with = [&](std::string_view suffix) {
    return sub.size() > suffix.size() && sub.substr(sub.size() - suffix.size()) == suffix;
  };
  return ends_with("+json") || ends_with("+xml");
}

std::string Base64Encode(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.resize((in.size() + 2) / 3 * 4);
  auto p = reinterpret_cast<const unsigned char*>(in.data());
  size_t i = 0, o = 0, n = in.size();
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8) | p[i + 2];
    out[o++] = kAlphabet[v >> 18];
    out[o++] = kAlphabet[(v >> 12) & 63];
    out[o++] = kAlphabet[(v >> 6) & 63];
    out[o++] = kAlphabet[v & 63];
  }
  if (n - i == 1) {
    uint32_t v = uint32_t{p[i]} << 16;
    out[o++] = kAlphabet[v >> 18];
    out[o++] = kAlphabet[(v >> 12) & 63];
    out[o++] = '=';
    out[o++] = '=';
  } else if (n - i == 2) {
    uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8);
    out[o++] = kAlphabet[v >> 18];
    out[o++] = kAlphabet[(v >> 12) & 63];
    out[o++] = kAlphabet[(v >> 6) & 63];
    out[o++] = '=';
  }
  return out;
}

Result<std::string> Base64Decode(std::string_view in) {
  static constexpr auto kValues = [] {
    std::array<int8_t, 256> t{};
    for (auto& v : t) v = -1;
    const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(a[i])] = static_cast<int8_t>(i);
    return t;
  }();
  std::string out;
  out.reserve(in.size() / 4 * 3 + 3);
  uint32_t acc = 0;
  int bits = 0;
  size_t data_chars = 0, padding = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(in[i]);
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    if (c == '=') {
      ++padding;
      continue;
    }
    int8_t v = kValues[c];
    if (v < 0 || padding > 0) {
      std::string m = "not valid base64: ";
      if (v < 0) {
        m += "unexpected character ";
        if (c >= 0x20 && c < 0x7F) {
          m += "'" + std::string(1, static_cast<char>(c)) + "'";
        } else {
          m += "byte " + std::to_string(c);
        }
      } else {
        m += "data after '=' padding";
      }
      m += " at offset " + std::to_string(i);
      return Status::InvalidArgument(std::move(m));
    }
    ++data_chars;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  size_t rem = data_chars % 4;
  if (rem == 1) {
    return Status::InvalidArgument("not valid base64: its length leaves a single dangling character");
  }
  bool padding_ok = padding == 0 || (rem == 2 && padding == 2) || (rem == 3 && padding == 1);
  if (!padding_ok) {
    return Status::InvalidArgument("not valid base64: wrong number of '=' padding characters");
  }
  return out;
}

std::string BuildEventV2(const Request& req, const EventContext& ctx) {
  std::string_view route_key = ctx.route_key.empty() ? "$default" : ctx.route_key;
  std::string_view target = req.target();
  size_t qmark = target.find('?');
  std::string_view raw_path = target.substr(0, qmark);
  std::string_view raw_query =
      qmark == std::string_view::npos ? std::string_view() : target.substr(qmark + 1);
  if (size_t hash = raw_query.find('#'); hash != std::string_view::npos) {
    raw_query = raw_query.substr(0, hash);
  }

  // Gather headers once: Cookie headers feed "cookies", the rest "headers".
  NameValues headers;
  NameValues cookies;
  size_t header_bytes = 0;
  std::string_view user_agent, host, content_type;
  for (const auto& f : req) {
    std::string_view name = f.name_string(), value = f.value();
    header_bytes += name.size() + value.size() + 8;
    switch (f.name()) {
      case http::field::cookie: {
        std::string_view rest = value;
        while (!rest.empty()) {
          size_t semi = rest.find(';');
          std::string_view c = TrimOws(rest.substr(0, semi));
          if (!c.empty()) cookies.emplace_back(c, std::string_view());
          if (semi == std::string_view::npos) break;
          rest.remove_prefix(semi + 1);
        }
        continue;  // API Gateway leaves Cookie out of "headers"
      }
      case http::field::user_agent: user_agent = value; break;
      case http::field::host: host = value; break;
      case http::field::content_type: content_type = value; break;
      default: break;
    }
    headers.emplace_back(name, value);
  }
  StableSortByName(headers, iless());

  std::string_view body = req.body();
  bool body_is_text = !body.empty() &&
                      (content_type.empty() || IsTextualContentType(content_type)) &&
                      IsValidUtf8(body);

  std::string out;
  out.reserve(640 + 2 * target.size() + header_bytes + user_agent.size() + host.size() +
              (body_is_text ? body.size() + body.size() / 8 : (body.size() + 2) / 3 * 4));

  out.append("{\"version\":\"2.0\",");
  AppendKey(out, "routeKey");
  AppendJsonString(out, route_key);
  out.push_back(',');
  AppendKey(out, "rawPath");
  AppendJsonString(out, raw_path);
  out.push_back(',');
  AppendKey(out, "rawQueryString");
  AppendJsonString(out, raw_query);

  if (!cookies.empty()) {
    out.push_back(',');
    AppendKey(out, "cookies");
    out.push_back('[');
    for (size_t i = 0; i < cookies.size(); ++i) {
      if (i) out.push_back(',');
      AppendJsonString(out, cookies[i].first);
    }
    out.push_back(']');
  }

  out.push_back(',');
  AppendKey(out, "headers");
  out.push_back('{');
  for (size_t i = 0; i < headers.size();) {
    if (i) out.push_back(',');
    AppendJsonStringLower(out, headers[i].first);
    out.push_back(':');
    // Repeated headers are joined with ',' into one value, in the order they came.
    size_t j = i + 1;
    while (j < headers.size() && iequals(headers[j].first, headers[i].first)) ++j;
    if (j == i + 1) {
      AppendJsonString(out, headers[i].second);
    } else {
      std::string joined;
      for (size_t k = i; k < j; ++k) {
        if (k > i) joined.push_back(',');
        joined.append(headers[k].second);
      }
      AppendJsonString(out, joined);
    }
    i = j;
  }
  out.push_back('}');

  if (!raw_query.empty()) {
    // Decode every key and value into one buffer: decoding never makes text longer, so a
    // buffer the size of the query holds them all without reallocating.
    std::string decoded;
    decoded.reserve(raw_query.size());
    NameValues params;
    std::string_view rest = raw_query;
    while (true) {
      size_t amp = rest.find('&');
      std::string_view piece = rest.substr(0, amp);
      size_t eq = piece.find('=');
      std::string_view key = piece.substr(0, eq);
      if (!key.empty()) {
        size_t k0 = decoded.size();
        AppendPercentDecoded(decoded, key, /*plus_is_space=*/true);
        size_t v0 = decoded.size();
        if (eq != std::string_view::npos) {
          AppendPercentDecoded(decoded, piece.substr(eq + 1), /*plus_is_space=*/true);
        }
        params.emplace_back(std::string_view(decoded.data() + k0, v0 - k0),
                            std::string_view(decoded.data() + v0, decoded.size() - v0));
      }
      if (amp == std::string_view::npos) break;
      rest.remove_prefix(amp + 1);
    }
    if (!params.empty()) {
      StableSortByName(params, [](std::string_view a, std::string_view b) { return a < b; });
      out.push_back(',');
      AppendKey(out, "queryStringParameters");
      out.push_back('{');
      for (size_t i = 0; i < params.size();) {
        if (i) out.push_back(',');
        AppendJsonString(out, params[i].first);
        out.push_back(':');
        size_t j = i + 1;
        while (j < params.size() && params[j].first == params[i].first) ++j;
        if (j == i + 1) {
          AppendJsonString(out, params[i].second);
        } else {
          std::string joined;
          for (size_t k = i; k < j; ++k) {
            if (k > i) joined.push_back(',');
            joined.append(params[k].second);
          }
          AppendJsonString(out, joined);
        }
        i = j;
      }
      out.push_back('}');
    }
  }

  if (ctx.path_params != nullptr && !ctx.path_params->empty()) {
    out.push_back(',');
    AppendKey(out, "pathParameters");
    out.push_back('{');
    bool first = true;
    for (const auto& [name, value] : *ctx.path_params) {
      if (!first) out.push_back(',');
      first = false;
      AppendJsonString(out, name);
      out.push_back(':');
      AppendJsonString(out, value);
    }
    out.push_back('}');
  }

  std::string_view domain = ctx.domain_name.empty() ? host : ctx.domain_name;
  out.append(",\"requestContext\":{\"accountId\":\"000000000000\",");
  AppendKey(out, "apiId");
  AppendJsonString(out, ctx.api_id);
  out.push_back(',');
  AppendKey(out, "domainName");
  AppendJsonString(out, domain);
  out.push_back(',');
  AppendKey(out, "domainPrefix");
  AppendJsonString(out, DomainPrefix(domain));
  out.append(",\"http\":{");
  AppendKey(out, "method");
  AppendJsonString(out, req.method_string());
  out.push_back(',');
  AppendKey(out, "path");
  AppendJsonString(out, raw_path);
  out.push_back(',');
  AppendKey(out, "protocol");
  unsigned v = req.version();
  char proto[] = {'"', 'H', 'T', 'T', 'P', '/', static_cast<char>('0' + v / 10 % 10), '.',
                  static_cast<char>('0' + v % 10), '"'};
  out.append(proto, sizeof proto);
  out.push_back(',');
  AppendKey(out, "sourceIp");
  AppendJsonString(out, ctx.source_ip);
  out.push_back(',');
  AppendKey(out, "userAgent");
  AppendJsonString(out, user_agent);
  out.append("},");
  AppendKey(out, "requestId");
  AppendJsonString(out, ctx.request_id);
  out.push_back(',');
  AppendKey(out, "routeKey");
  AppendJsonString(out, route_key);
  out.push_back(',');
  AppendKey(out, "stage");
  AppendJsonString(out, ctx.stage);
  out.push_back(',');
  AppendKey(out, "time");
  out.push_back('"');
  AppendClfTime(out, ctx.now_ms);
  out.push_back('"');
  out.push_back(',');
  AppendKey(out, "timeEpoch");
  AppendInt(out, ctx.now_ms);
  out.push_back('}');

  if (!body.empty()) {
    out.push_back(',');
    AppendKey(out, "body");
    if (body_is_text) {
      AppendJsonString(out, body);
    } else {
      out.push_back('"');
      out.append(Base64Encode(body));  // the base64 alphabet needs no JSON escaping
      out.push_back('"');
    }
  }
  out.append(",\"isBase64Encoded\":");
  out.append(!body.empty() && !body_is_text ? "true" : "false");
  out.push_back('}');
  return out;
}

// ---- results ---------------------------------------------------------------------------

namespace {

namespace json = boost::json;

const char* KindName(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null: return "null";
    case json::kind::bool_: return "a boolean";
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_: return "a number";
    case json::kind::string: return "a string";
    case json::kind::array: return "an array";
    case json::kind::object: return "an object";
  }
  return "a value";
}

Status BadResult(std::string what) {
  return Status::InvalidArgument(
      "the function's HTTP response is not valid: " + what +
      "; return {\"statusCode\": 200, \"headers\": {...}, \"body\": \"...\"} as API Gateway "
      "payload format 2.0 expects");
}

bool IsTokenChar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != 0;
}

// Header values may not carry CR, LF or other control characters (except tab): they would
// split or corrupt the response head.
bool IsSafeHeaderValue(std::string_view v) {
  for (unsigned char c : v) {
    if ((c < 0x20 && c != '\t') || c == 0x7F) return false;
  }
  return true;
}

// Headers the gateway computes itself; a function's value for them would break framing.
bool IsFramingHeader(std::string_view name) {
  return iequals(name, "content-length") || iequals(name, "transfer-encoding") ||
         iequals(name, "connection");
}

Result<std::string> HeaderValueText(std::string_view name, const json::value& v) {
  char buf[64];
  switch (v.kind()) {
    case json::kind::string: return std::string(v.get_string());
    case json::kind::bool_: return std::string(v.get_bool() ? "true" : "false");
    case json::kind::int64: {
      auto r = std::to_chars(buf, buf + sizeof buf, v.get_int64());
      return std::string(buf, r.ptr);
    }
    case json::kind::uint64: {
      auto r = std::to_chars(buf, buf + sizeof buf, v.get_uint64());
      return std::string(buf, r.ptr);
    }
    case json::kind::double_: {
      auto r = std::to_chars(buf, buf + sizeof buf, v.get_double());
      return std::string(buf, r.ptr);
    }
    default:
      return BadResult("header '" + std::string(name) + "' is " + KindName(v) +
                       "; header values must be strings, numbers or booleans");
  }
}

Result<Response> MapStructured(const json::object& obj, unsigned http_version) {
  const json::value& sc = obj.at("statusCode");
  int64_t status = 0;
  if (sc.is_int64()) {
    status = sc.get_int64();
  } else if (sc.is_uint64()) {
    status = static_cast<int64_t>(std::min<uint64_t>(sc.get_uint64(), 1000));
  } else {
    return BadResult(std::string("statusCode is ") + KindName(sc) +
                     "; it must be an integer such as 200");
  }
  if (status < 100 || status > 599) {
    return BadResult("statusCode " + std::to_string(status) + " is outside 100-599");
  }

  Response res;
  res.version(http_version);
  res.result(static_cast<unsigned>(status));

  if (const json::value* h = obj.if_contains("headers"); h != nullptr && !h->is_null()) {
    if (!h->is_object()) {
      return BadResult(std::string("headers is ") + KindName(*h) +
                       "; it must be an object of name: value");
    }
    for (const auto& kv : h->get_object()) {
      std::string_view name = kv.key();
      bool token = !name.empty();
      for (unsigned char c : name) token = token && IsTokenChar(c);
      if (!token) {
        return BadResult("header name '" + std::string(name) + "' is not a valid HTTP header name");
      }
      Result<std::string> value = HeaderValueText(name, kv.value());
      if (!value.ok()) return value.status();
      if (!IsSafeHeaderValue(*value)) {
        return BadResult("header '" + std::string(name) +
                         "' contains a line break or control character");
      }
      if (IsFramingHeader(name)) continue;
      res.insert(name, *value);
    }
  }

  if (const json::value* c = obj.if_contains("cookies"); c != nullptr && !c->is_null()) {
    if (!c->is_array()) {
      return BadResult(std::string("cookies is ") + KindName(*c) +
                       "; it must be an array of Set-Cookie strings");
    }
    for (const json::value& cookie : c->get_array()) {
      if (!cookie.is_string()) {
        return BadResult(std::string("a cookie is ") + KindName(cookie) +
                         "; cookies must be strings like \"id=1; Path=/\"");
      }
      if (!IsSafeHeaderValue(cookie.get_string())) {
        return BadResult("a cookie contains a line break or control character");
      }
      res.insert(http::field::set_cookie, std::string_view(cookie.get_string()));
    }
  }

  bool base64 = false;
  if (const json::value* b = obj.if_contains("isBase64Encoded"); b != nullptr && !b->is_null()) {
    if (!b->is_bool()) {
      return BadResult(std::string("isBase64Encoded is ") + KindName(*b) +
                       "; it must be true or false");
    }
    base64 = b->get_bool();
  }

  if (const json::value* b = obj.if_contains("body"); b != nullptr && !b->is_null()) {
    if (!b->is_string()) {
      return BadResult(std::string("body is ") + KindName(*b) +
                       "; it must be a string (serialize objects to JSON text first)");
    }
    std::string_view text = b->get_string();
    if (base64) {
      Result<std::string> bytes = Base64Decode(text);
      if (!bytes.ok()) {
        return BadResult("isBase64Encoded is true but the body is " + bytes.status().message());
      }
      res.body() = std::move(bytes).value();
    } else {
      res.body().assign(text.data(), text.size());
    }
  }

  if (res.find(http::field::content_type) == res.end()) {
    res.set(http::field::content_type, "application/json");
  }
  // 1xx, 204 and 304 responses carry no body and no Content-Length (RFC 9110 8.6).
  bool bodiless = status < 200 || status == 204 || status == 304;
  if (bodiless) {
    res.body().clear();
  } else {
    res.prepare_payload();
  }
  return res;
}

}  // namespace

Result<Response> MapResultV2(std::string_view function_result, unsigned http_version_of_request) {
  // Small results (the common case) parse entirely inside this stack buffer.
  unsigned char value_buffer[4096];
  unsigned char parser_buffer[256];
  json::monotonic_resource resource(value_buffer, sizeof value_buffer);
  json::parse_options options;
  options.max_depth = 1000;  // bare results of any sensible nesting are valid JSON too
  json::parser parser(&resource, options, parser_buffer, sizeof parser_buffer);
  boost::system::error_code ec;
  size_t consumed = parser.write(function_result.data(), function_result.size(), ec);
  if (ec) {
    if (function_result.find_first_not_of(" \t\r\n") == std::string_view::npos) {
      return BadResult("the function returned nothing");
    }
    return BadResult("it is not valid JSON (" + ec.message() + " at byte " +
                     std::to_string(consumed) + ")");
  }
  json::value v = parser.release();
  if (v.is_object() && v.get_object().contains("statusCode")) {
    return MapStructured(v.get_object(), http_version_of_request);
  }
  Response res;
  res.version(http_version_of_request);
  res.result(http::status::ok);
  res.set(http::field::content_type, "application/json");
  res.body().assign(function_result.data(), function_result.size());
  res.prepare_payload();
  return res;
}

}  // namespace nimbus::gateway
