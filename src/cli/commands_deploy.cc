// `nimbus deploy DIR`: validate function.yaml locally, run its `build` command, zip the
// directory and PUT it to the admin API. The manifest is parsed here first so mistakes show
// as FILE:LINE before anything is built or sent.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <algorithm>
#include <cerrno>
#include <cstring>

#include "cli/commands.h"
#include "cli/format.h"
#include "manifest/manifest.h"
#include "package/package.h"

namespace nimbus::cli {
namespace {

// Runs `sh -c command` in dir, copying its stdout and stderr to out as they arrive (stdout of
// nimbus stays reserved for the deploy result). Returns the exit status (128+N for signal N),
// or -1 with errno set when the shell could not be started.
int RunBuild(const std::string& command, const std::filesystem::path& dir, std::ostream& out) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return -1;
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return -1;
  }
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    dup2(fds[1], STDOUT_FILENO);
    dup2(fds[1], STDERR_FILENO);
    if (chdir(dir.c_str()) != 0) _exit(126);
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  char buf[4096];
  for (;;) {
    ssize_t n = read(fds[0], buf, sizeof(buf));
    if (n > 0) {
      out.write(buf, n);
      out.flush();
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;
    }
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

}  // namespace

const CommandSpec kDeploySpec = {
    "deploy",
    "build, package and upload a function directory",
    {{"DIR", "the function directory (holds function.yaml)"}},
    {},
    "Checks DIR/function.yaml, runs its `build` command in DIR (output shown as it runs),\n"
    "zips DIR and uploads it. Each deploy that changes code or manifest publishes a new\n"
    "version and points $LATEST at it; deploying identical content changes nothing.",
};

int RunDeploy(Context& ctx, const ParsedArgs& args) {
  const std::filesystem::path dir = args.positionals[0];
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return ReportLocalError(ctx, "'" + dir.string() +
                                     "' is not a directory; pass the directory that holds "
                                     "function.yaml (create one with `nimbus init NAME --runtime "
                                     "python3`)");
  }
  const std::filesystem::path manifest_path = dir / "function.yaml";
  Result<manifest::Manifest> manifest = manifest::ParseFile(manifest_path);
  if (!manifest.ok()) {
    if (manifest.status().code() == Code::kNotFound) {
      return ReportLocalError(ctx, "no function.yaml in '" + dir.string() +
                                       "'; every function directory needs one (see `nimbus init`)");
    }
    return ReportLocalError(ctx, manifest.status().message());
  }
  const std::string& name = manifest->name;

  if (!manifest->build.empty()) {
    ctx.err << "building " << name << ": " << manifest->build << "\n";
    ctx.err.flush();
    int status = RunBuild(manifest->build, dir, ctx.err);
    if (status < 0) {
      return ReportLocalError(ctx, std::string("cannot start /bin/sh for the build: ") +
                                       std::strerror(errno));
    }
    if (status != 0) {
      ctx.err << "error: build failed: `" << manifest->build << "` exited with status " << status
              << " in " << dir.string()
              << "; fix the build, or the `build:` command in function.yaml\n";
      return status;
    }
  }

  Result<std::string> zip = package::ZipDirectory(dir);
  if (!zip.ok()) return ReportLocalError(ctx, zip.status().message());

  HttpRequest request{"PUT", FunctionPath(name), {{"Content-Type", "application/zip"}}, std::move(*zip)};
  Result<HttpResponse> response = ctx.AdminClient().Send(request);
  if (!response.ok()) return ReportTransportError(ctx, response.status());
  if (response->status < 200 || response->status >= 300) return ReportHttpError(ctx, *response);
  if (ctx.json) {
    PrintBody(ctx.out, response->body);
    return kExitOk;
  }

  boost::system::error_code jec;
  boost::json::value doc = boost::json::parse(response->body, jec);
  if (jec || !doc.is_object()) {
    ctx.out << "deployed " << name << " (the daemon's answer was not a function document)\n";
    return kExitOk;
  }
  const auto& fn = doc.as_object();
  std::string sha = JsonText(fn, "code_sha256").substr(0, 8);
  uint64_t size = static_cast<uint64_t>(std::max<int64_t>(0, JsonInt(fn, "code_size")));
  // The daemon says "created": false when code and manifest equal $LATEST's.
  const auto* created = fn.if_contains("created");
  const bool unchanged = created && created->is_bool() && !created->as_bool();
  ctx.out << (unchanged ? "unchanged " : "deployed ") << name << " version " << JsonText(fn, "version") << " ("
          << JsonText(fn, "runtime") << ", " << FormatSize(size) << ", sha256 " << sha << ")"
          << (unchanged ? ": identical to what is deployed" : "") << "\n";
  ctx.out << "  " << ctx.endpoint.url << "/fn/" << name << "\n";
  for (const Route& r : Routes(fn)) ctx.out << "  " << r.method << " " << ctx.endpoint.url << r.path << r.Marker() << "\n";
  return kExitOk;
}

}  // namespace nimbus::cli
