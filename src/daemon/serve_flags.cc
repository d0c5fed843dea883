#include "daemon/serve_flags.h"

#include <arpa/inet.h>

#include "manifest/suggest.h"

namespace nimbus::daemon {
namespace {

// Each flag's help is in ServeHelp(); serve_flags_test checks that the two name the same flags.
const std::vector<FlagSpec> kServeFlags = {
    {"listen", "ADDR:PORT", ""},
    {"data-dir", "DIR", ""},
    {"threads", "N", ""},
    {"share-dir", "DIR", ""},
    {"init-timeout", "S", ""},
    {"primed-per-runtime", "N", ""},
    {"async-max-payload", "BYTES", ""},
    {"async-retry-base", "DURATION", ""},
    {"idempotency-window", "DURATION", ""},
    {"insecure-no-sandbox", "", ""},
    {"help", "", ""},
};

const std::string kServeHelp =
    "usage: nimbus serve [--listen ADDR:PORT] [--data-dir DIR] [--threads N] [--share-dir DIR]\n"
    "                    [--init-timeout S] [--primed-per-runtime N] [--async-max-payload BYTES]\n"
    "                    [--async-retry-base DURATION] [--idempotency-window DURATION]\n"
    "                    [--insecure-no-sandbox]\n"
    "  --listen ADDR:PORT  where the gateway, admin and Invoke APIs listen (default 127.0.0.1:8080)\n"
    "  --data-dir DIR      state: store, code packages (default ./.nimbus)\n"
    "  --threads N         event loops (default: one per core)\n"
    "  --share-dir DIR     runtimes and SDKs (default: share/nimbus next to the executable)\n"
    "  --init-timeout S    seconds a runtime may take to reach its first /next (default 10)\n"
    "  --primed-per-runtime N\n"
    "                      python3 and nodejs instances kept started and waiting for a function, per\n"
    "                      runtime, so a cold start skips the runtime's own start-up (default 2; 0: none)\n"
    "  --async-max-payload BYTES\n"
    "                      largest asynchronous invocation payload (default 262144, Lambda's 256 KB)\n"
    "  --async-retry-base DURATION\n"
    "                      wait before the first retry of a failed asynchronous invocation; each later\n"
    "                      retry waits twice as long, with +-20% jitter (default 1m, as Lambda)\n"
    "  --idempotency-window DURATION\n"
    "                      how long X-Nimbus-Idempotency-Key values are remembered (default 1h)\n"
    "                      (DURATION: 250ms, 30s, 5m, 1h; a bare number is seconds)\n"
    "  --insecure-no-sandbox\n"
    "                      run functions unconfined: as the daemon's user, on the host's files and\n"
    "                      network, without namespaces or seccomp (cgroups still limit memory when\n"
    "                      available). Only for machines where the sandbox cannot work.\n";

// Digits only, at most 18 of them (no sign, no spaces); nullopt otherwise.
std::optional<uint64_t> WholeNumber(std::string_view text) {
  if (text.empty() || text.size() > 18) return std::nullopt;
  uint64_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  return n;
}

Status Wants(std::string_view flag, std::string_view what, std::string_view got) {
  return Status::InvalidArgument("--" + std::string(flag) + " wants " + std::string(what) + ", got '" +
                                 std::string(got) + "'");
}

std::string DidYouMean(std::string_view name) {
  std::vector<std::string> names;
  for (const FlagSpec& f : kServeFlags) names.push_back(f.name);
  std::string near = manifest::NearestWord(name, names);
  return near.empty() ? "" : " (did you mean --" + near + "?)";
}

}  // namespace

std::optional<ListenAddress> ParseListen(std::string_view text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string host(text.substr(0, colon));
  const std::string_view port = text.substr(colon + 1);
  if (port.empty() || port.size() > 5 || (port.size() > 1 && port[0] == '0')) return std::nullopt;
  uint32_t n = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<uint32_t>(c - '0');
  }
  if (n > 65535) return std::nullopt;
  unsigned char addr[sizeof(in6_addr)];
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    if (inet_pton(AF_INET6, host.c_str(), addr) != 1) return std::nullopt;
  } else if (inet_pton(AF_INET, host.c_str(), addr) != 1) {
    return std::nullopt;
  }
  return ListenAddress{std::move(host), static_cast<uint16_t>(n)};
}

std::optional<int64_t> ParseDurationMs(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 9) return std::nullopt;
  int64_t n = static_cast<int64_t>(*WholeNumber(text.substr(0, digits)));
  std::string_view unit = text.substr(digits);
  if (unit == "ms") return n;
  if (unit.empty() || unit == "s") return n * 1000;
  if (unit == "m") return n * 60'000;
  if (unit == "h") return n * 3'600'000;
  return std::nullopt;
}

const std::vector<FlagSpec>& ServeFlags() { return kServeFlags; }

const std::string& ServeHelp() { return kServeHelp; }

Result<ServeArgs> ParseServeArgs(const std::vector<std::string>& args) {
  ArgsSpec spec{"nimbus serve", {}, {&kServeFlags}, DidYouMean};
  Result<ParsedArgs> parsed = ParseFlags(spec, args);
  if (!parsed.ok()) return parsed.status();
  ServeArgs result;
  if (parsed->Has("help")) {
    result.help = true;
    return result;
  }
  ServeOptions& o = result.options;
  for (const auto& [name, v] : parsed->flags) {
    if (name == "listen") {
      if (!ParseListen(v)) {
        return Wants(name, "ADDR:PORT, an IPv4 address or an IPv6 one in brackets and a port from 0 to 65535, e.g. 127.0.0.1:8080 or [::1]:8080", v);
      }
      o.listen = v;
    } else if (name == "data-dir") {
      if (v.empty()) return Wants(name, "a directory", v);
      o.data_dir = v;
    } else if (name == "share-dir") {
      o.share_dir = v;
    } else if (name == "threads") {
      auto n = WholeNumber(v);
      if (!n || *n > 1024) return Wants(name, "a whole number of event loops up to 1024 (0: one per core)", v);
      o.threads = static_cast<size_t>(*n);
    } else if (name == "init-timeout") {
      auto s = WholeNumber(v);
      if (!s || *s < 1 || *s > 900) return Wants(name, "whole seconds from 1 to 900", v);
      o.init_timeout_s = static_cast<int>(*s);
    } else if (name == "primed-per-runtime") {
      auto n = WholeNumber(v);
      if (!n || *n > 16) return Wants(name, "a whole number of instances from 0 to 16", v);
      o.primed_per_runtime = static_cast<size_t>(*n);
    } else if (name == "async-max-payload") {
      auto n = WholeNumber(v);
      if (!n || *n < 1024 || *n > 6ull * 1024 * 1024) return Wants(name, "bytes from 1024 to 6291456", v);
      o.async_max_payload = static_cast<size_t>(*n);
    } else if (name == "async-retry-base") {
      auto ms = ParseDurationMs(v);
      if (!ms || *ms < 10 || *ms > 3'600'000) return Wants(name, "a duration from 10ms to 1h (e.g. 30s)", v);
      o.async_retry_base_ms = *ms;
    } else if (name == "idempotency-window") {
      auto ms = ParseDurationMs(v);
      if (!ms || *ms < 1000 || *ms > 7 * 24 * 3'600'000LL) {
        return Wants(name, "a duration from 1s to 168h (e.g. 1h)", v);
      }
      o.idempotency_window_ms = *ms;
    } else if (name == "insecure-no-sandbox") {
      o.sandbox = false;
    } else {
      return Status::Internal("--" + name + " is declared but not read");
    }
  }
  return result;
}

std::optional<int> ParseServeFlags(const std::vector<std::string>& args, ServeOptions& options, std::ostream& out,
                                   std::ostream& err) {
  Result<ServeArgs> parsed = ParseServeArgs(args);
  if (!parsed.ok()) {
    err << "nimbus serve: " << parsed.status().message() << "\n"
        << "run `nimbus serve --help` for the flags and the values they take\n";
    return 2;
  }
  if (parsed->help) {
    out << kServeHelp;
    return 0;
  }
  options = std::move(parsed->options);
  return std::nullopt;
}

}  // namespace nimbus::daemon
