#include "daemon/daemon.h"

#include <signal.h>
#include <unistd.h>

#include <boost/asio/thread_pool.hpp>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <thread>

#include "admin/admin_api.h"
#include "catalog/catalog.h"
#include "gateway/front_door.h"
#include "http/server.h"
#include "observability/log_store.h"
#include "observability/metrics.h"
#include "package/package.h"
#include "sandbox/cgroup.h"
#include "sandbox/launcher.h"
#include "scheduler/scheduler.h"
#include "store/sqlite_store.h"

namespace nimbus::daemon {

namespace fs = std::filesystem;

std::string DefaultShareDir() {
  if (const char* env = getenv("NIMBUS_SHARE_DIR"); env && *env) return env;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return "share/nimbus";
  return (exe.parent_path() / "share" / "nimbus").string();
}

static const char* kUsage =
    "usage: nimbus serve [--listen ADDR:PORT] [--data-dir DIR] [--threads N] [--no-cgroups]\n"
    "  --listen ADDR:PORT  where the gateway, admin and Invoke APIs listen (default 127.0.0.1:8080)\n"
    "  --data-dir DIR      state: store, code packages (default ./.nimbus)\n"
    "  --threads N         event loops (default: one per core)\n"
    "  --share-dir DIR     runtimes and SDKs (default: share/nimbus next to the executable)\n"
    "  --no-cgroups        do not enforce memory limits with cgroups\n";

std::optional<int> ParseServeFlags(int argc, char** argv, ServeOptions& out) {
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* flag) -> const char* {
      std::string prefix = std::string(flag) + "=";
      if (a.rfind(prefix, 0) == 0) return argv[i] + prefix.size();
      if (a == flag && i + 1 < argc) return argv[++i];
      return nullptr;
    };
    if (a == "-h" || a == "--help") {
      std::cout << kUsage;
      return 0;
    }
    if (const char* v = value("--listen")) {
      out.listen = v;
    } else if (const char* v = value("--data-dir")) {
      out.data_dir = v;
    } else if (const char* v = value("--share-dir")) {
      out.share_dir = v;
    } else if (const char* v = value("--threads")) {
      out.threads = static_cast<size_t>(atoi(v));
    } else if (a == "--no-cgroups") {
      out.cgroups = false;
    } else {
      std::cerr << "nimbus serve: unknown flag '" << a << "'\n" << kUsage;
      return 2;
    }
  }
  return std::nullopt;
}

int Serve(const ServeOptions& opt) {
  auto fail = [](const std::string& what) {
    std::cerr << "nimbus: " << what << "\n";
    return 1;
  };
  auto colon = opt.listen.rfind(':');
  if (colon == std::string::npos) return fail("--listen wants ADDR:PORT, e.g. 127.0.0.1:8080");
  boost::system::error_code ec;
  auto addr = boost::asio::ip::make_address(opt.listen.substr(0, colon), ec);
  if (ec) return fail("--listen: '" + opt.listen.substr(0, colon) + "' is not an IP address");
  int port = atoi(opt.listen.c_str() + colon + 1);

  std::error_code fec;
  fs::create_directories(opt.data_dir, fec);
  if (fec) return fail("cannot create data dir " + opt.data_dir + ": " + fec.message());
  fs::path data = fs::absolute(opt.data_dir);
  std::string share = opt.share_dir.empty() ? DefaultShareDir() : opt.share_dir;
  if (!fs::exists(fs::path(share) / "runtimes")) {
    return fail("runtimes not found under " + share + "; build with `make build` or pass --share-dir");
  }

  // Signals are handled by the main thread only; block them before any thread starts.
  signal(SIGPIPE, SIG_IGN);
  sigset_t stop_set;
  sigemptyset(&stop_set);
  sigaddset(&stop_set, SIGTERM);
  sigaddset(&stop_set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_set, nullptr);

  auto store = store::OpenSqliteStore(data / "nimbus.db");
  if (!store.ok()) return fail(store.status().message());
  package::CodeStore code(data);

  std::unique_ptr<sandbox::CgroupManager> cgroups;
  std::string cgroup_note = "cgroups off (--no-cgroups): memory limits are not enforced";
  if (opt.cgroups) {
    auto cg = sandbox::CgroupManager::Create("nimbus/" + std::to_string(getpid()));
    if (cg.ok()) {
      cgroups = std::move(cg).value();
      cgroup_note = cgroups->Describe();
    } else {
      cgroup_note = "no cgroups (" + cg.status().message() + "): memory limits are not enforced";
    }
  }
  auto launcher = sandbox::NewProcessLauncher(cgroups.get());

  size_t threads = opt.threads ? opt.threads : std::max(1u, std::thread::hardware_concurrency());
  http::LoopGroup loops(threads);
  boost::asio::thread_pool blocking(2);
  observability::LogStore logs;
  catalog::Catalog catalog;
  scheduler::Options sopt;
  sopt.runtimes_dir = (fs::path(share) / "runtimes").string();
  scheduler::Scheduler scheduler(loops, *launcher, logs, sopt);
  admin::AdminApi admin(**store, code, catalog, scheduler, logs, blocking);
  Status st = admin.Load();
  if (!st.ok()) return fail("cannot load the store: " + st.message());

  gateway::FrontDoor front(
      catalog, scheduler,
      [&admin](const http::ConnectionPtr& c, http::Request&& r) { admin.Handle(c, std::move(r)); },
      [&] { return observability::RenderMetrics(*catalog.Get(), scheduler); });
  // Deploys carry packages up to 50 MB; larger bodies get 413 from the connection itself.
  http::Listener listener(
      [&front](const http::ConnectionPtr& c, http::Request&& r) { front.Handle(c, std::move(r)); },
      http::ServerOptions{64ull << 20, std::chrono::seconds(120)});
  st = listener.Listen(loops, {addr, static_cast<uint16_t>(port)});
  if (!st.ok()) return fail(st.message());
  loops.Start();

  std::cerr << "nimbus: listening on http://" << opt.listen.substr(0, colon) << ":" << listener.port() << " ("
            << threads << " event loops; data in " << data.string() << "; " << catalog.Get()->functions.size()
            << " functions; " << cgroup_note << ")" << std::endl;

  int sig = 0;
  sigwait(&stop_set, &sig);
  std::cerr << "nimbus: " << strsignal(sig) << ", stopping" << std::endl;
  listener.Close();
  loops.Stop();
  scheduler.Shutdown();
  blocking.join();
  launcher.reset();  // stops its waiting starter processes and removes their cgroups
  cgroups.reset();   // removes nimbus's parent cgroup, now empty
  // Instances are killed; the store commits every change as it happens. Leave without running
  // destructors of objects whose loops are gone.
  std::cerr.flush();
  _exit(0);
}

}  // namespace nimbus::daemon
