// `nimbus init NAME --runtime python3|nodejs|cpp [--dir PATH]`: writes a starter function.
#include <fstream>
#include <system_error>

#include "cli/commands.h"
#include "cli/templates.h"
#include "common/function_name.h"

namespace nimbus::cli {
namespace {

// share/nimbus beside the binary (build tree: build/share/nimbus next to build/nimbus) or in
// the install prefix (bin/nimbus -> share/nimbus); $NIMBUS_SHARE_DIR overrides both.
std::vector<std::filesystem::path> SdkHeaderCandidates(const CliEnvironment& env) {
  const std::filesystem::path rel = std::filesystem::path("sdk/cpp") / kCppSdkHeaderPath;
  if (!env.share_dir.empty()) return {std::filesystem::path(env.share_dir) / rel};
  std::vector<std::filesystem::path> out;
  if (!env.exe_path.empty()) {
    std::filesystem::path bin = env.exe_path.parent_path();
    out.push_back(bin / "share/nimbus" / rel);
    out.push_back(bin.parent_path() / "share/nimbus" / rel);
  }
  return out;
}

Status WriteFile(const std::filesystem::path& path, const std::string& content) {
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  if (ec) return Status::Io("cannot create " + path.parent_path().string() + ": " + ec.message());
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << content;
  f.close();
  if (!f) return Status::Io("cannot write " + path.string() + "; check the directory's permissions");
  return Status::Ok();
}

}  // namespace

const CommandSpec kInitSpec = {
    "init",
    "create a new function directory from a starter template",
    {{"NAME", "the function's name: letters, digits, '-' and '_', at most 64"}},
    {{"runtime", "python3|nodejs|cpp", "the language of the starter handler", true},
     {"dir", "PATH", "where to create the function (default: ./NAME)"}},
    "Writes function.yaml and a handler that answers HTTP requests with JSON. The directory\n"
    "must not exist or be empty. For cpp, the C++ SDK header is copied in (nimbus/), and\n"
    "`build: make` in function.yaml compiles `bootstrap` on `nimbus deploy`.",
};

int RunInit(Context& ctx, const ParsedArgs& args) {
  const std::string& name = args.positionals[0];
  if (Status st = CheckFunctionName(name); !st.ok()) return UsageError(ctx, kInitSpec, st.message());
  const std::string runtime = args.Get("runtime");
  Result<std::vector<TemplateFile>> files = RenderTemplate(runtime, name);
  if (!files.ok()) return UsageError(ctx, kInitSpec, files.status().message());

  std::filesystem::path dir = args.Has("dir") ? std::filesystem::path(args.Get("dir"))
                                              : std::filesystem::path(name);
  std::error_code ec;
  if (std::filesystem::exists(dir, ec)) {
    if (!std::filesystem::is_directory(dir, ec)) {
      return ReportLocalError(ctx, "'" + dir.string() +
                                       "' exists and is not a directory; choose another NAME or "
                                       "pass --dir PATH");
    }
    if (!std::filesystem::is_empty(dir, ec)) {
      return ReportLocalError(ctx, "directory '" + dir.string() +
                                       "' already exists and is not empty; choose another NAME "
                                       "or pass --dir PATH to an empty or new directory");
    }
  }

  std::string sdk_header;
  if (runtime == "cpp") {
    std::vector<std::filesystem::path> candidates = SdkHeaderCandidates(ctx.env);
    std::filesystem::path found;
    for (const auto& c : candidates) {
      if (std::filesystem::is_regular_file(c, ec)) {
        found = c;
        break;
      }
    }
    if (found.empty()) {
      std::string looked;
      for (const auto& c : candidates) looked += "\n  " + c.string();
      return ReportLocalError(ctx, "cannot find the C++ SDK header (lambda_runtime.hpp); looked in:" +
                                       looked +
                                       "\nset NIMBUS_SHARE_DIR to the share/nimbus directory of "
                                       "your nimbus build or install");
    }
    std::ifstream in(found, std::ios::binary);
    sdk_header.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) return ReportLocalError(ctx, "cannot read " + found.string());
    files->push_back({kCppSdkHeaderPath, sdk_header});
  }

  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return ReportLocalError(ctx, "cannot create directory '" + dir.string() + "': " + ec.message());
  }
  std::string listing;
  for (const auto& f : *files) {
    Status st = WriteFile(dir / f.path, f.content);
    if (!st.ok()) return ReportLocalError(ctx, st.message());
    listing += (listing.empty() ? "" : ", ") + f.path;
  }
  ctx.out << "created function " << name << " (" << runtime << ") in " << dir.string() << "/: "
          << listing << "\n"
          << "next:\n"
          << "  nimbus deploy " << dir.string() << "\n"
          << "  nimbus invoke " << name << " --payload '{\"name\": \"nimbus\"}'\n"
          << "  curl " << ctx.endpoint.url << "/" << name << "\n";
  return kExitOk;
}

}  // namespace nimbus::cli
