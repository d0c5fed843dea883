#include "daemon/daemon.h"

#include <signal.h>
#include <unistd.h>

#include <boost/asio/thread_pool.hpp>
#include <sys/resource.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <thread>

#include "admin/admin_api.h"
#include "admin/admin_token.h"
#include "catalog/catalog.h"
#include "gateway/api_error.h"
#include "gateway/front_door.h"
#include "gateway/metrics.h"
#include "http/server.h"
#include "observability/log_store.h"
#include "package/package.h"
#include "queue/delivery.h"
#include "queue/journal.h"
#include "sandbox/cgroup.h"
#include "sandbox/launcher.h"
#include "sandbox/process_launcher.h"
#include "schedule/trigger.h"
#include "scheduler/scheduler.h"
#include "store/sqlite_store.h"

namespace nimbus::daemon {

namespace fs = std::filesystem;

fs::path DefaultExecutableDir() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path(".") : exe.parent_path();
}

std::string DefaultShareDir() {
  if (const char* env = getenv("NIMBUS_SHARE_DIR"); env && *env) return env;
  return (DefaultExecutableDir() / "share" / "nimbus").string();
}

int Serve(const ServeOptions& opt) {
  auto fail = [](const std::string& what) {
    std::cerr << "nimbus: " << what << "\n";
    return 1;
  };
  // Checked with the other flags (ParseServeArgs); checked again for callers that fill
  // ServeOptions themselves.
  const std::optional<ListenAddress> listen = ParseListen(opt.listen);
  if (!listen) return fail("--listen wants ADDR:PORT, e.g. 127.0.0.1:8080 or [::1]:8080, got '" + opt.listen + "'");
  const std::string& host = listen->host;
  boost::system::error_code ec;
  auto addr = boost::asio::ip::make_address(host, ec);
  if (ec) return fail("--listen: '" + host + "' is not an IP address");

  std::error_code fec;
  fs::create_directories(opt.data_dir, fec);
  if (fec) return fail("cannot create data dir " + opt.data_dir + ": " + fec.message());
  fs::path data = fs::absolute(opt.data_dir);
  // The store holds every function's code and environment: for the daemon's user only.
  if (::chmod(data.c_str(), 0700) != 0) return fail("cannot make " + data.string() + " private (chmod 700): " + strerror(errno));
  std::string share = fs::absolute(opt.share_dir.empty() ? DefaultShareDir() : opt.share_dir).lexically_normal().string();
  if (!share.empty() && share.back() == '/') share.pop_back();
  if (!fs::exists(fs::path(share) / "runtimes")) {
    return fail("runtimes not found under " + share + "; build with `make build` or pass --share-dir");
  }

  // Every connection and instance costs descriptors: take all the kernel allows this process.
  if (struct rlimit files; getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
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
  auto admin_token = admin::LoadOrCreateToken(data);  // DATA/admin.token guards the admin API
  if (!admin_token.ok()) return fail(admin_token.status().message());
  package::CodeStore code(data);

  // Secure by default: without cgroups, namespaces or seccomp the daemon does not start unless
  // told to run functions unconfined.
  const char* kInsecureHint = "; fix that, or start with --insecure-no-sandbox to run functions unconfined";
  std::unique_ptr<sandbox::CgroupManager> cgroups;
  std::string cgroup_note;
  auto cg = sandbox::CgroupManager::Create("nimbus/" + std::to_string(getpid()));
  if (cg.ok()) {
    cgroups = std::move(cg).value();
    cgroup_note = cgroups->Describe();
  } else if (opt.sandbox) {
    return fail("cannot confine functions: " + cg.status().message() + kInsecureHint);
  } else {
    cgroup_note = "no cgroups (" + cg.status().message() + "): memory limits are not enforced";
  }
  sandbox::ProcessLauncherOptions lopt;
  lopt.sandbox = opt.sandbox;
  lopt.root_dir = (data / "sandbox-root").string();
  lopt.init_path = (DefaultExecutableDir() / "nimbus-init").string();
  // Every instance's code and runtime come from these two; stems stage them inside their root.
  fs::create_directories(data / "code", fec);
  lopt.staged_dirs = {(data / "code").string(), (fs::path(share) / "runtimes").string()};
  lopt.protected_dirs = {data.string(), share};
  scheduler::Options sopt;
  sopt.runtimes_dir = (fs::path(share) / "runtimes").string();
  sopt.init_timeout = std::chrono::seconds(opt.init_timeout_s);
  // Primed instances start with what every launch of theirs shares; the rest comes at the
  // hand-off.
  lopt.primed_per_runtime = opt.primed_per_runtime;
  if (opt.primed_per_runtime > 0) {
    lopt.primed_runtimes = {sopt.runtimes_dir + "/python3", sopt.runtimes_dir + "/nodejs"};
    lopt.primed_env = scheduler::FixedEnvironment(sopt);
  }
  auto launcher_or = sandbox::NewProcessLauncher(cgroups.get(), lopt);
  if (!launcher_or.ok()) {
    return fail("cannot confine functions: " + launcher_or.status().message() + (opt.sandbox ? kInsecureHint : ""));
  }
  auto launcher = std::move(launcher_or).value();
  if (!opt.sandbox) {
    std::cerr << "nimbus: WARNING: --insecure-no-sandbox: functions run unconfined, as this daemon's user, "
                 "and can read its data directory, each other's files and every local port"
              << std::endl;
  }

  size_t threads = opt.threads ? opt.threads : std::max(1u, std::thread::hardware_concurrency());
  http::LoopGroup loops(threads);
  boost::asio::thread_pool blocking(2);
  observability::LogStore logs;
  catalog::Catalog catalog;
  scheduler::Scheduler scheduler(loops, *launcher, logs, sopt);

  // Asynchronous invocations: the durable queue, its group-commit journal, the delivery engine
  // and the schedules that feed it.
  auto event_queue = queue::OpenSqliteEventQueue(data / "queue.db");
  if (!event_queue.ok()) return fail(event_queue.status().message());
  queue::Journal journal(**event_queue);
  queue::DeliveryOptions dopt;
  dopt.max_payload = opt.async_max_payload;
  dopt.retry_base_ms = opt.async_retry_base_ms;
  dopt.idempotency_window_ms = opt.idempotency_window_ms;
  queue::Delivery delivery(**event_queue, journal, catalog, queue::InvokeThrough(scheduler), dopt);
  schedule::Trigger trigger(**event_queue, journal, delivery, catalog);

  admin::AdminApi admin(**store, code, catalog, scheduler, logs, blocking, *admin_token);
  admin.set_sandboxed(opt.sandbox);
  admin.set_protected_dirs(lopt.protected_dirs);
  admin.set_async(&delivery, event_queue->get(), &trigger);
  Status st = admin.Load();
  if (!st.ok()) return fail("cannot load the store: " + st.message());
  // Every event accepted before a stop or a crash is pending again, and runs.
  st = delivery.Recover();
  if (!st.ok()) return fail("cannot read the event queue: " + st.message());
  int64_t recovered = 0, dead_letters = 0;
  for (const auto& [fn, c] : delivery.AllCounts()) {
    recovered += c.queued + c.retrying;
    dead_letters += c.dead;
  }

  gateway::FrontDoor front(
      catalog, scheduler, delivery,
      [&admin](const http::ConnectionPtr& c, http::Request&& r) { admin.Handle(c, std::move(r)); },
      [&] { return gateway::RenderMetrics(*catalog.Get(), scheduler, &delivery); });
  // Deploys carry packages up to 50 MB; larger bodies get 413 from the connection itself, in
  // the shape of Lambda's RequestTooLargeException.
  http::ServerOptions api_options{64ull << 20, std::chrono::seconds(120)};
  api_options.body_too_large = [](unsigned version, uint64_t limit) {
    return gateway::ApiError(version, false, http::bhttp::status::payload_too_large, "RequestTooLargeException",
                             "request body is larger than this endpoint accepts (" + std::to_string(limit) +
                                 " bytes)");
  };
  http::Listener listener(
      [&front](const http::ConnectionPtr& c, http::Request&& r) { front.Handle(c, std::move(r)); },
      std::move(api_options));
  st = listener.Listen(loops, {addr, listen->port});
  if (!st.ok()) return fail(st.message());
  // Registered only once listening: a daemon that cannot bind must not take over the
  // registration of the one holding the address.
  if (Status reg = admin::RegisterEndpoint(host, listener.port(), admin::TokenFile(data));
      !reg.ok()) {
    std::cerr << "nimbus: warning: " << reg.message() << std::endl;
  }
  if (!addr.is_loopback()) {
    std::cerr << "nimbus: admin API token in " << admin::TokenFile(data).string()
              << " (send it as Authorization: Bearer; the CLI on this machine finds it)" << std::endl;
  }
  loops.Start();
  delivery.Start();
  st = trigger.Start();
  if (!st.ok()) return fail("cannot start the schedules: " + st.message());

  std::cerr << "nimbus: listening on http://" << opt.listen.substr(0, opt.listen.rfind(':')) << ":" << listener.port() << " ("
            << threads << " event loops; data in " << data.string() << "; " << catalog.Get()->functions.size()
            << " functions; " << recovered << " pending async events, " << dead_letters << " dead letters; "
            << cgroup_note << "; "
            << (opt.sandbox ? "sandbox on: namespaces, own root, unprivileged uids, seccomp"
                            : "SANDBOX OFF (--insecure-no-sandbox)")
            << ")" << std::endl;

  int sig = 0;
  sigwait(&stop_set, &sig);
  std::cerr << "nimbus: " << strsignal(sig) << ", stopping" << std::endl;
  listener.Close();
  loops.Stop();
  trigger.Stop();
  delivery.Stop();       // nothing new starts; events still running end with the scheduler
  scheduler.Shutdown();  // interrupted events stay pending and run after the restart
  journal.Stop();        // every completion recorded so far is written
  blocking.join();
  launcher->Drain();  // every released instance reaped and its cgroup removed
  launcher.reset();   // stops the launcher thread and its waiting stems
  cgroups.reset();   // removes nimbus's parent cgroup, now empty
  // Instances are killed; the store and the journal have committed every change. Leave without running
  // destructors of objects whose loops are gone.
  std::cerr.flush();
  _exit(0);
}

}  // namespace nimbus::daemon
