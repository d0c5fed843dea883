// Runtime-channel transport microbenchmark: is a shared-memory ring with eventfd wake-ups
// cheaper than the Unix stream socket the daemon and its runtimes use today
// (docs/runtime-channel.md)?
//
// The process forks a child "runtime" and ping-pongs messages with it, one request and one
// answer of the same size per round trip, the way a warm invocation crosses the channel: the
// parent ("daemon") writes one frame and waits for readiness with epoll, then reads; the child
// blocks in the kernel until a frame arrives and answers with one write. Each round trip costs
// one wake-up each way. Transports:
//
//   socket      socketpair(AF_UNIX, SOCK_STREAM). Parent: non-blocking sendmsg (header and
//               payload gathered; EPOLLOUT if the socket buffer fills), epoll_wait, then read
//               (again after another epoll_wait until the frame is whole), as the daemon's
//               Channel does. Child: blocking recv until the frame is whole, one blocking sendmsg.
//   shm-always  two single-producer single-consumer byte rings in a MAP_SHARED mapping made
//               before fork (one per direction; head and tail are byte counters published with
//               release and read with acquire) and one eventfd per direction. The writer copies
//               the frame into the ring, publishes it and writes the reader's eventfd every time.
//               Parent waits with epoll_wait then reads its eventfd; child blocks in read().
//   shm-needed  as shm-always, but the writer writes the eventfd only when the reader has said
//               it may be asleep. The reader sets its `sleeping` flag, re-checks the ring, and
//               only then blocks; the writer publishes the frame, then exchanges the flag to 0
//               and signals if it was 1. Both sides' flag/head accesses are seq_cst, so in the
//               single total order either the reader's re-check sees the frame or the writer
//               sees the flag: no wake-up is lost. A signal that was not needed after all only
//               costs the reader a spurious wake-up, which it counts and absorbs.
//   shm-et      as shm-needed, but the parent registers its eventfd edge-triggered and never
//               reads it: every eventfd write is one epoll event, so a wake-up costs the parent
//               epoll_wait alone (the counter only grows; 2^64 - 2 writes would fill it).
//   shm-spin    as shm-needed, but a reader first polls the ring for up to --spin-us (default
//               30) before setting its flag and sleeping. When the answer comes within the spin
//               neither side makes a system call; the price is CPU burnt while polling.
//
// Every frame is a 16-byte header (magic, length, sequence number) and a payload whose content
// depends on the sequence number and the direction. Both sides check the header and the
// payload of every frame: with --verify stamps (the default, cheap enough not to hide the
// transport's cost) an 8-byte word at every 512-byte stride and at the end; with --verify full
// every byte. Any mismatch, a short or overlong frame, a dead peer or no answer within
// --timeout-ms (a lost wake-up) aborts with "FATAL" and exit status 3. --fault injects a
// broken transport to show those checks fire: corrupt (the child flips one payload byte of one
// answer), late-flag (a ring reader sets its sleeping flag after its last look at the ring: the
// classic lost wake-up, with the window widened to a few microseconds so that it is hit) and
// early-publish (a ring writer publishes the frame before copying it; only a polling reader,
// shm-spin, can see that). A fault that goes unnoticed ends the run with exit status 4.
//
// The rings hold whole frames: a frame larger than --ring-bytes is refused, and a writer that
// finds too little room yields until there is (a ping-pong never does; it is counted as
// full_waits, which for the socket counts the EPOLLOUT waits instead). Both sides copy a frame
// into the ring and out of it again, as the socket copies into and out of the kernel.
//
// --parent-work-us and --child-work-us add a fixed amount of CPU work (a calibrated loop, not
// a wall-clock wait) per round trip on each side, standing in for what the daemon and the
// function do between frames; cpu_net_us is the CPU per round trip with that work taken off.
// --call-cost measures the calls alone with nobody to wake (a socket frame sent and read back
// in one process, an eventfd written and read) and exits.
//
// Measured per case, after --warmup round trips: round trips per second; wall time per round
// trip from per-message timestamps taken in the parent (mean, p50, p99, p99.9, max); CPU time
// per round trip of parent and child separately (getrusage(RUSAGE_SELF) in each, the child's
// sent back over a pipe at the end); voluntary and involuntary context switches and system
// calls per round trip on each side; how the ring readers waited (spin hits, sleeps, spurious
// wake-ups); the load average and, from /proc/stat, how busy the rest of the machine and the
// hypervisor (steal) were meanwhile. wall_us is the elapsed time per round trip (it includes the
// parent's own work between frames); the percentiles time each frame from before its send to
// the end of the answer's read.
//
// Build and run:
//   g++ -std=c++20 -O2 -pthread bench/channel-pingpong.cc -o /tmp/pingpong
//   /tmp/pingpong                               # every transport, 200 B, 200,000 round trips
//   /tmp/pingpong -t socket,shm-needed -s 65536 -n 100000
//   /tmp/pingpong --matrix --reps 3             # every transport and size, interleaved, x3
//   taskset -c 0 /tmp/pingpong --matrix         # parent and child share one core
//   /tmp/pingpong --matrix --pin-parent 0 --pin-child 1   # each on its own core
//   /tmp/pingpong -t shm-needed --fault late-flag         # must end in FATAL
//   /tmp/pingpong -t socket,shm-et --parent-work-us 60 --child-work-us 25 -n 50000
//   /tmp/pingpong --call-cost -s 200,65536
// Options: -t/--transports LIST, -s/--sizes LIST (bytes; a multiple of 8), -n/--iters N,
// --iters-large N (round trips for sizes over 256 KiB, default 10,000), --warmup N,
// --reps N, --matrix, --spin-us N, --ring-bytes N (per direction, a power of two; default
// 4 MiB, so frames up to 4 MiB - 16 B fit), --pin-parent CPU, --pin-child CPU,
// --verify stamps|full, --fault none|corrupt|late-flag|early-publish, --fault-at SEQ,
// --timeout-ms N, --parent-work-us N, --child-work-us N, --call-cost. One line per case on
// stdout, key=value; errors on stderr.

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

enum class Transport { kSocket, kShmAlways, kShmNeeded, kShmEt, kShmSpin };
constexpr Transport kAllTransports[] = {Transport::kSocket, Transport::kShmAlways, Transport::kShmNeeded,
                                        Transport::kShmEt, Transport::kShmSpin};
enum class Verify { kStamps, kFull };
enum class Fault { kNone, kCorrupt, kLateFlag, kEarlyPublish };

const char* Name(Transport t) {
  switch (t) {
    case Transport::kSocket: return "socket";
    case Transport::kShmAlways: return "shm-always";
    case Transport::kShmNeeded: return "shm-needed";
    case Transport::kShmEt: return "shm-et";
    case Transport::kShmSpin: return "shm-spin";
  }
  return "?";
}

struct Options {
  std::vector<Transport> transports{std::begin(kAllTransports), std::end(kAllTransports)};
  std::vector<size_t> sizes{200};
  long iters = 200000;
  long iters_large = 10000;
  long warmup = 2000;
  int reps = 1;
  int spin_us = 30;
  size_t ring_bytes = 4 << 20;
  int pin_parent = -1, pin_child = -1;
  Verify verify = Verify::kStamps;
  Fault fault = Fault::kNone;
  long fault_at = -1;  // -1: half way through the measured round trips
  int timeout_ms = 3000;
  int parent_work_us = 0, child_work_us = 0;
  bool call_cost = false;
};

const char* g_role = "parent";
pid_t g_child = -1;

[[noreturn]] void Fatal(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  fprintf(stderr, "channel-pingpong: FATAL in %s: %s\n", g_role, buf);
  fflush(stderr);
  if (g_child > 0) kill(g_child, SIGKILL);
  _exit(3);
}

uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

void Pin(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) Fatal("sched_setaffinity(%d): %s", cpu, strerror(errno));
}

// Busy work of a fixed amount of CPU (not of wall time, so preemption does not shorten it),
// calibrated once before any case runs against this thread's CPU clock, so that time spent
// preempted during the calibration does not inflate it.
double g_loops_per_us = 0;

uint64_t ThreadCpuNs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

uint64_t BusyLoops(uint64_t loops) {
  uint64_t x = 1;
  for (uint64_t i = 0; i < loops; i++) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    asm volatile("" : "+r"(x));
  }
  return x;
}

void Calibrate() {
  const uint64_t loops = 20000000;
  uint64_t best = UINT64_MAX;
  for (int i = 0; i < 5; i++) {
    uint64_t t0 = ThreadCpuNs();
    BusyLoops(loops);
    best = std::min(best, ThreadCpuNs() - t0);
  }
  g_loops_per_us = double(loops) * 1000.0 / double(best);
}

void Work(int us) {
  if (us > 0) BusyLoops(uint64_t(us * g_loops_per_us));
}

// ---- frames and their content ---------------------------------------------------------------

constexpr uint32_t kMagic = 0x4e50504eu;
struct FrameHeader {
  uint32_t magic;
  uint32_t len;  // payload bytes after the header
  uint64_t seq;
};
static_assert(sizeof(FrameHeader) == 16);
constexpr size_t kStampStride = 512;

// The 8-byte word at payload word `index` of frame `seq` going in direction `dir` (0: parent to
// child, 1: child to parent). Differs for every frame, so stale, torn or misplaced bytes show.
inline uint64_t Word(uint64_t seq, uint64_t index, uint64_t dir) {
  uint64_t x = ((seq << 1) | dir) * 0x9E3779B97F4A7C15ull + (index + 1) * 0xBF58476D1CE4E5B9ull;
  return x ^ (x >> 29);
}

void Fill(char* p, size_t len, uint64_t seq, uint64_t dir, Verify v) {
  const size_t step = v == Verify::kFull ? 8 : kStampStride;
  for (size_t off = 0; off + 8 <= len; off += step) {
    uint64_t w = Word(seq, off / 8, dir);
    memcpy(p + off, &w, 8);
  }
  uint64_t w = Word(seq, (len - 8) / 8, dir);
  memcpy(p + len - 8, &w, 8);
}

// Returns the offset of the first wrong word, or SIZE_MAX.
size_t Check(const char* p, size_t len, uint64_t seq, uint64_t dir, Verify v) {
  const size_t step = v == Verify::kFull ? 8 : kStampStride;
  for (size_t off = 0; off + 8 <= len; off += step) {
    uint64_t w;
    memcpy(&w, p + off, 8);
    if (w != Word(seq, off / 8, dir)) return off;
  }
  uint64_t w;
  memcpy(&w, p + len - 8, 8);
  if (w != Word(seq, (len - 8) / 8, dir)) return len - 8;
  return SIZE_MAX;
}

void CheckFrame(const FrameHeader& h, const char* payload, size_t len, uint64_t seq, uint64_t dir, Verify v) {
  if (h.magic != kMagic) Fatal("frame %llu: bad magic %08x", (unsigned long long)seq, h.magic);
  if (h.len != len) Fatal("frame %llu: length %u, expected %zu", (unsigned long long)seq, h.len, len);
  if (h.seq != seq)
    Fatal("frame out of order: got sequence %llu, expected %llu", (unsigned long long)h.seq, (unsigned long long)seq);
  size_t bad = Check(payload, len, seq, dir, v);
  if (bad != SIZE_MAX) Fatal("frame %llu: payload corrupt at byte %zu of %zu", (unsigned long long)seq, bad, len);
}

// ---- what each side counts ------------------------------------------------------------------

struct SideStats {
  double user_us = 0, sys_us = 0;
  long nvcsw = 0, nivcsw = 0, minflt = 0;
  uint64_t syscalls = 0;     // counted by the code below, not traced
  uint64_t sleeps = 0;       // blocked in the kernel waiting for a frame
  uint64_t spin_hits = 0;    // frame arrived while polling
  uint64_t spurious = 0;     // woke with nothing to read
  uint64_t signals = 0;      // eventfd writes made
  uint64_t full_waits = 0;   // writer found the ring without room (never in a ping-pong)
};

rusage Usage() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru;
}
double Us(const timeval& tv) { return tv.tv_sec * 1e6 + tv.tv_usec; }
void AddUsage(SideStats& s, const rusage& a, const rusage& b) {
  s.user_us = Us(b.ru_utime) - Us(a.ru_utime);
  s.sys_us = Us(b.ru_stime) - Us(a.ru_stime);
  s.nvcsw = b.ru_nvcsw - a.ru_nvcsw;
  s.nivcsw = b.ru_nivcsw - a.ru_nivcsw;
  s.minflt = b.ru_minflt - a.ru_minflt;
}

// ---- the socket transport -------------------------------------------------------------------

struct Context {
  const Options* opt;
  Transport transport;
  size_t size;
  int parent_ep = -1;  // parent's epoll set
  SideStats stats;
  uint64_t fault_seq = UINT64_MAX;
};

// Waits for `events` on the parent's epoll set; a silent peer past the timeout is fatal.
void ParentWait(Context& c, uint64_t seq) {
  epoll_event ev;
  for (int waited = 0;;) {
    int n = epoll_wait(c.parent_ep, &ev, 1, 500);
    c.stats.syscalls++;
    if (n == 1) return;
    if (n < 0 && errno != EINTR) Fatal("epoll_wait: %s", strerror(errno));
    int status;
    if (waitpid(g_child, &status, WNOHANG) == g_child) {
      g_child = -1;
      Fatal("the child died (status %#x) while frame %llu was out", status, (unsigned long long)seq);
    }
    if (n == 0 && (waited += 500) >= c.opt->timeout_ms)
      Fatal("no answer to frame %llu within %d ms: a lost wake-up or a stuck peer", (unsigned long long)seq,
            c.opt->timeout_ms);
  }
}

struct SocketParent {
  Context& c;
  int fd;

  void Send(const FrameHeader& h, const char* payload) {
    const size_t total = sizeof h + h.len;
    size_t done = 0;
    while (done < total) {
      iovec iov[2];
      int cnt = 0;
      if (done < sizeof h) iov[cnt++] = {(char*)&h + done, sizeof h - done};
      size_t pdone = done > sizeof h ? done - sizeof h : 0;
      iov[cnt++] = {(char*)payload + pdone, h.len - pdone};
      msghdr m{};
      m.msg_iov = iov;
      m.msg_iovlen = cnt;
      ssize_t n = sendmsg(fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
      c.stats.syscalls++;
      if (n > 0) {
        done += size_t(n);
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        epoll_event ev{.events = EPOLLOUT, .data = {}};
        epoll_ctl(c.parent_ep, EPOLL_CTL_MOD, fd, &ev);
        ParentWait(c, h.seq);
        ev.events = EPOLLIN;
        epoll_ctl(c.parent_ep, EPOLL_CTL_MOD, fd, &ev);
        c.stats.syscalls += 2;
        c.stats.full_waits++;
      } else if (!(n < 0 && errno == EINTR)) {
        Fatal("sendmsg: %s", n == 0 ? "wrote nothing" : strerror(errno));
      }
    }
  }

  // Readiness first, then one read, until the frame is whole (as the daemon's Channel reads).
  void Recv(FrameHeader& h, char* payload, size_t cap, uint64_t seq) {
    size_t have = 0, need = SIZE_MAX;
    while (have < need) {
      ParentWait(c, seq);
      c.stats.sleeps++;
      iovec iov[2];
      int cnt = 0;
      if (have < sizeof h) iov[cnt++] = {(char*)&h + have, sizeof h - have};
      size_t pdone = have > sizeof h ? have - sizeof h : 0;
      iov[cnt++] = {payload + pdone, cap - pdone};
      ssize_t n = readv(fd, iov, cnt);
      c.stats.syscalls++;
      if (n == 0) Fatal("the child closed the socket while frame %llu was out", (unsigned long long)seq);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) {
          c.stats.spurious++;
          continue;
        }
        Fatal("read: %s", strerror(errno));
      }
      have += size_t(n);
      if (have >= sizeof h) {
        if (h.magic != kMagic || h.len > cap) Fatal("frame %llu: bad header", (unsigned long long)seq);
        need = sizeof h + h.len;
        if (have > need) Fatal("frame %llu: %zu bytes arrived for a %zu-byte frame", (unsigned long long)seq, have, need);
      }
    }
  }
};

struct SocketChild {
  SideStats& s;
  int fd;

  void Send(const FrameHeader& h, const char* payload) {
    iovec iov[2] = {{(char*)&h, sizeof h}, {(char*)payload, h.len}};
    msghdr m{};
    m.msg_iov = iov;
    m.msg_iovlen = 2;
    size_t total = sizeof h + h.len;
    ssize_t n = sendmsg(fd, &m, MSG_NOSIGNAL);  // blocking: returns once every byte is queued
    s.syscalls++;
    if (n < 0 || size_t(n) != total) Fatal("sendmsg: %s", n < 0 ? strerror(errno) : "short write");
  }

  // Returns false at end-of-file before any byte of a frame.
  bool Recv(FrameHeader& h, char* payload, size_t cap) {
    size_t have = 0, need = SIZE_MAX;
    while (have < need) {
      iovec iov[2];
      int cnt = 0;
      if (have < sizeof h) iov[cnt++] = {(char*)&h + have, sizeof h - have};
      size_t pdone = have > sizeof h ? have - sizeof h : 0;
      iov[cnt++] = {payload + pdone, cap - pdone};
      msghdr m{};
      m.msg_iov = iov;
      m.msg_iovlen = cnt;
      ssize_t n = recvmsg(fd, &m, 0);
      s.syscalls++;
      if (n == 0) {
        if (have == 0) return false;
        Fatal("end of file inside a frame");
      }
      if (n < 0) {
        if (errno == EINTR) continue;
        Fatal("recv: %s", strerror(errno));
      }
      have += size_t(n);
      if (have >= sizeof h) {
        if (h.magic != kMagic || h.len > cap) Fatal("bad frame header");
        need = sizeof h + h.len;
        if (have > need) Fatal("%zu bytes arrived for a %zu-byte frame", have, need);
      }
    }
    return true;
  }
};

// ---- the shared-memory transport ------------------------------------------------------------

// One direction. Producer and consumer fields sit on separate cache lines.
struct alignas(64) RingCtl {
  alignas(64) std::atomic<uint64_t> head{0};       // bytes ever published; the producer's
  alignas(64) std::atomic<uint64_t> tail{0};       // bytes ever consumed; the consumer's
  alignas(64) std::atomic<uint32_t> sleeping{0};   // 1: the consumer may be blocked on its eventfd
};
static_assert(std::atomic<uint64_t>::is_always_lock_free && std::atomic<uint32_t>::is_always_lock_free,
              "the ring needs lock-free atomics in shared memory");

struct Ring {
  RingCtl* ctl;
  char* data;
  size_t cap;  // a power of two
  int efd;     // the consumer's eventfd

  void CopyIn(uint64_t pos, const void* src, size_t n) {
    size_t off = pos & (cap - 1), first = std::min(n, cap - off);
    memcpy(data + off, src, first);
    memcpy(data, (const char*)src + first, n - first);
  }
  void CopyOut(uint64_t pos, void* dst, size_t n) const {
    size_t off = pos & (cap - 1), first = std::min(n, cap - off);
    memcpy(dst, data + off, first);
    memcpy((char*)dst + first, data, n - first);
  }
};

// How the consumer blocks: the child in read(), the parent in epoll_wait then a read.
struct ShmSide {
  Context* parent;  // null in the child
  SideStats& s;
  Transport t;
  const Options& opt;
  Ring tx, rx;
  uint64_t credits = 0;  // shm-always: eventfd counts not yet matched with a frame

  void BlockOnEventfd(uint64_t seq) {
    uint64_t v;
    if (parent) {
      ParentWait(*parent, seq);
      if (t == Transport::kShmEt) {  // edge-triggered: every eventfd write is one event; no read
        s.sleeps++;
        return;
      }
      ssize_t n = read(rx.efd, &v, sizeof v);
      s.syscalls++;
      if (n != sizeof v) {
        if (n < 0 && errno == EAGAIN) {
          s.spurious++;
          return;
        }
        Fatal("eventfd read: %s", strerror(errno));
      }
    } else {
      ssize_t n;
      do {
        n = read(rx.efd, &v, sizeof v);
        s.syscalls++;
      } while (n < 0 && errno == EINTR);
      if (n != sizeof v) Fatal("eventfd read: %s", strerror(errno));
    }
    s.sleeps++;
    credits += v;
  }

  void Signal() {
    uint64_t one = 1;
    ssize_t n = write(tx.efd, &one, sizeof one);
    s.syscalls++;
    s.signals++;
    if (n != sizeof one) Fatal("eventfd write: %s", strerror(errno));
  }

  void Send(const FrameHeader& h, const char* payload) {
    const size_t total = sizeof h + h.len;
    if (total > tx.cap) Fatal("a %zu-byte frame does not fit a %zu-byte ring", total, tx.cap);
    RingCtl& c = *tx.ctl;
    const uint64_t head = c.head.load(std::memory_order_relaxed);
    while (head + total - c.tail.load(std::memory_order_acquire) > tx.cap) {
      s.full_waits++;  // a ping-pong always finds the ring empty; a real channel would block here
      sched_yield();
    }
    const bool early = opt.fault == Fault::kEarlyPublish && h.seq % 2 == 0;
    if (early) c.head.store(head + total, std::memory_order_release);  // broken on purpose
    tx.CopyIn(head, &h, sizeof h);
    tx.CopyIn(head + sizeof h, payload, h.len);
    if (t == Transport::kShmAlways) {
      c.head.store(head + total, std::memory_order_release);
      Signal();
      return;
    }
    // Dekker with the reader's Wait(): store head, then look at the flag, both seq_cst.
    if (!early) c.head.store(head + total, std::memory_order_seq_cst);
    if (c.sleeping.load(std::memory_order_seq_cst) != 0 && c.sleeping.exchange(0, std::memory_order_seq_cst) != 0)
      Signal();
  }

  bool Ready() const { return rx.ctl->head.load(std::memory_order_acquire) != rx.ctl->tail.load(std::memory_order_relaxed); }

  void Wait(uint64_t seq) {
    RingCtl& c = *rx.ctl;
    const uint64_t tail = c.tail.load(std::memory_order_relaxed);
    if (t == Transport::kShmAlways) {
      while (credits == 0) BlockOnEventfd(seq);
      credits--;
      if (!Ready()) Fatal("woken for frame %llu but the ring is empty", (unsigned long long)seq);
      return;
    }
    if (Ready()) return;
    if (t == Transport::kShmSpin) {
      const uint64_t until = NowNs() + uint64_t(opt.spin_us) * 1000;
      for (;;) {
        for (int i = 0; i < 64; i++) {
          CpuRelax();
          if (Ready()) {
            s.spin_hits++;
            return;
          }
        }
        if (NowNs() >= until) break;
      }
    }
    for (;;) {
      if (opt.fault == Fault::kLateFlag) {  // broken on purpose: the last look comes before the flag
        if (c.head.load(std::memory_order_seq_cst) != tail) return;
        // Widen the window (0-15 us) so that the race, nanoseconds wide otherwise, is hit soon.
        const uint64_t until = NowNs() + (seq * 7919) % 16 * 1000;
        while (NowNs() < until) CpuRelax();
        c.sleeping.store(1, std::memory_order_seq_cst);
      } else {
        c.sleeping.store(1, std::memory_order_seq_cst);
        if (c.head.load(std::memory_order_seq_cst) != tail) {
          c.sleeping.store(0, std::memory_order_relaxed);
          return;
        }
      }
      BlockOnEventfd(seq);  // the writer cleared the flag before signalling
      if (Ready()) return;
      s.spurious++;  // an old signal that was not needed after all
    }
  }

  void Take(FrameHeader& h, char* payload, size_t cap, uint64_t seq) {
    RingCtl& c = *rx.ctl;
    const uint64_t tail = c.tail.load(std::memory_order_relaxed);
    const uint64_t head = c.head.load(std::memory_order_acquire);
    if (head - tail < sizeof h) Fatal("frame %llu: only %llu bytes published", (unsigned long long)seq,
                                      (unsigned long long)(head - tail));
    rx.CopyOut(tail, &h, sizeof h);
    if (h.magic != kMagic || h.len > cap) Fatal("frame %llu: bad header", (unsigned long long)seq);
    if (head - tail < sizeof h + h.len) Fatal("frame %llu: published only in part", (unsigned long long)seq);
    rx.CopyOut(tail + sizeof h, payload, h.len);
    c.tail.store(tail + sizeof h + h.len, std::memory_order_release);
  }
};

// ---- one case -------------------------------------------------------------------------------

struct MachineTicks {
  uint64_t busy = 0, steal = 0, total = 0;
};
MachineTicks ReadProcStat() {
  MachineTicks m;
  FILE* f = fopen("/proc/stat", "r");
  if (!f) return m;
  unsigned long long v[10] = {};
  if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
             &v[6], &v[7], &v[8], &v[9]) >= 8) {
    // user nice system idle iowait irq softirq steal (guest time is already in user)
    m.busy = v[0] + v[1] + v[2] + v[5] + v[6];
    m.steal = v[7];
    m.total = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
  }
  fclose(f);
  return m;
}
std::string LoadAvg() {
  char buf[64] = {};
  FILE* f = fopen("/proc/loadavg", "r");
  if (f) {
    if (!fgets(buf, sizeof buf, f)) buf[0] = 0;
    fclose(f);
  }
  std::string s(buf);
  // "0.66 0.99 1.26 1/123 4567" -> "0.66/0.99/1.26"
  size_t a = s.find(' '), b = a == std::string::npos ? a : s.find(' ', a + 1), e = b == std::string::npos ? b : s.find(' ', b + 1);
  if (e == std::string::npos) return "?";
  std::string r = s.substr(0, e);
  std::replace(r.begin(), r.end(), ' ', '/');
  return r;
}

// The child's loop: answer every frame with one of the same size, then report its figures.
[[noreturn]] void RunChild(Context& c, SocketChild* sock, ShmSide* shm, int result_fd, long total_frames) {
  g_role = "child";
  Pin(c.opt->pin_child);
  const size_t cap = c.size;
  std::vector<char> in(cap), out(cap);
  SideStats& s = c.stats;
  rusage r0{};
  uint64_t seq = 0;
  for (long i = 0; i < total_frames; i++, seq++) {
    FrameHeader h;
    if (sock) {
      if (!sock->Recv(h, in.data(), cap)) Fatal("end of file after %llu frames", (unsigned long long)seq);
    } else {
      shm->Wait(seq);
      shm->Take(h, in.data(), cap, seq);
    }
    CheckFrame(h, in.data(), cap, seq, 0, c.opt->verify);
    Work(c.opt->child_work_us);
    Fill(out.data(), cap, seq, 1, c.opt->verify);
    if (c.opt->fault == Fault::kCorrupt && seq == c.fault_seq) out[cap - 1] ^= 0x01;  // broken on purpose
    FrameHeader a{kMagic, uint32_t(cap), seq};
    if (sock) sock->Send(a, out.data());
    else shm->Send(a, out.data());
    if (i + 1 == c.opt->warmup) {
      r0 = Usage();
      s = SideStats{};
    }
  }
  AddUsage(s, r0, Usage());
  if (write(result_fd, &s, sizeof s) != sizeof s) Fatal("writing the results: %s", strerror(errno));
  _exit(0);
}

struct CaseResult {
  double rt_per_s, wall_mean, p50, p99, p999, max;
  SideStats parent, child;
};

double Pct(std::vector<uint32_t>& v, double q) {
  size_t k = std::min(v.size() - 1, size_t(q * double(v.size())));
  std::nth_element(v.begin(), v.begin() + long(k), v.end());
  return v[k] / 1000.0;
}

void RunCase(const Options& opt, Transport t, size_t size, int rep) {
  const long iters = size > (256u << 10) ? opt.iters_large : opt.iters;
  const long total_frames = opt.warmup + iters;
  Context c{&opt, t, size, -1, SideStats{}, UINT64_MAX};
  c.fault_seq = uint64_t(opt.warmup + (opt.fault_at >= 0 ? opt.fault_at : iters / 2));

  int result_pipe[2];
  if (pipe2(result_pipe, O_CLOEXEC) != 0) Fatal("pipe: %s", strerror(errno));

  int sv[2] = {-1, -1};
  void* map = nullptr;
  size_t map_len = 0;
  Ring down{}, up{};  // parent->child, child->parent
  if (t == Transport::kSocket) {
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) Fatal("socketpair: %s", strerror(errno));
  } else {
    if (opt.ring_bytes & (opt.ring_bytes - 1)) Fatal("--ring-bytes must be a power of two");
    if (size + sizeof(FrameHeader) > opt.ring_bytes)
      Fatal("a %zu-byte frame does not fit the %zu-byte ring; raise --ring-bytes", size + sizeof(FrameHeader),
            opt.ring_bytes);
    const size_t ctl_len = 4096;
    map_len = ctl_len + 2 * opt.ring_bytes;
    map = mmap(nullptr, map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) Fatal("mmap: %s", strerror(errno));
    memset(map, 0, map_len);  // fault every page in now, not during the measurement
    auto* ctl = new (map) RingCtl[2];
    static_assert(2 * sizeof(RingCtl) <= 4096);
    char* base = static_cast<char*>(map) + ctl_len;
    down = {&ctl[0], base, opt.ring_bytes, eventfd(0, EFD_CLOEXEC)};
    up = {&ctl[1], base + opt.ring_bytes, opt.ring_bytes, eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
    if (down.efd < 0 || up.efd < 0) Fatal("eventfd: %s", strerror(errno));
  }

  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) Fatal("fork: %s", strerror(errno));
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1) _exit(1);
    close(result_pipe[0]);
    if (t == Transport::kSocket) {
      close(sv[0]);
      SocketChild sock{c.stats, sv[1]};
      RunChild(c, &sock, nullptr, result_pipe[1], total_frames);
    }
    ShmSide shm{nullptr, c.stats, t, opt, up, down};
    RunChild(c, nullptr, &shm, result_pipe[1], total_frames);
  }
  g_child = pid;
  close(result_pipe[1]);
  Pin(opt.pin_parent);

  c.parent_ep = epoll_create1(EPOLL_CLOEXEC);
  int wait_fd = t == Transport::kSocket ? sv[0] : up.efd;
  if (t == Transport::kSocket) {
    close(sv[1]);
    int fl = fcntl(sv[0], F_GETFL);
    fcntl(sv[0], F_SETFL, fl | O_NONBLOCK);
  }
  epoll_event ev{.events = EPOLLIN | (t == Transport::kShmEt ? uint32_t(EPOLLET) : 0u), .data = {}};
  if (epoll_ctl(c.parent_ep, EPOLL_CTL_ADD, wait_fd, &ev) != 0) Fatal("epoll_ctl: %s", strerror(errno));

  SocketParent sock{c, sv[0]};
  ShmSide shm{&c, c.stats, t, opt, down, up};
  std::vector<char> out(size), in(size);
  std::vector<uint32_t> rtt(static_cast<size_t>(iters));
  rusage r0{};
  MachineTicks m0{};
  uint64_t t_start = 0;
  const std::string load_before = LoadAvg();
  for (long i = 0; i < total_frames; i++) {
    const uint64_t seq = uint64_t(i);
    if (i == opt.warmup) {
      c.stats = SideStats{};
      r0 = Usage();
      m0 = ReadProcStat();
      t_start = NowNs();
    }
    Fill(out.data(), size, seq, 0, opt.verify);
    FrameHeader h{kMagic, uint32_t(size), seq}, a{};
    const uint64_t t0 = NowNs();
    if (t == Transport::kSocket) {
      sock.Send(h, out.data());
      sock.Recv(a, in.data(), size, seq);
    } else {
      shm.Send(h, out.data());
      shm.Wait(seq);
      shm.Take(a, in.data(), size, seq);
    }
    const uint64_t t1 = NowNs();
    CheckFrame(a, in.data(), size, seq, 1, opt.verify);
    if (i >= opt.warmup) rtt[size_t(i - opt.warmup)] = uint32_t(std::min<uint64_t>(t1 - t0, UINT32_MAX));
    Work(opt.parent_work_us);  // the daemon's own share between one answer and the next event
  }
  const uint64_t t_end = NowNs();
  const MachineTicks m1 = ReadProcStat();
  CaseResult r{};
  r.parent = c.stats;
  AddUsage(r.parent, r0, Usage());

  SideStats child{};
  size_t got = 0;
  while (got < sizeof child) {
    ssize_t n = read(result_pipe[0], (char*)&child + got, sizeof child - got);
    if (n <= 0) Fatal("the child's results did not arrive");
    got += size_t(n);
  }
  r.child = child;
  int status = 0;
  waitpid(pid, &status, 0);
  g_child = -1;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) Fatal("the child ended with status %#x", status);
  close(result_pipe[0]);
  close(c.parent_ep);
  if (t == Transport::kSocket) {
    close(sv[0]);
  } else {
    close(down.efd);
    close(up.efd);
    munmap(map, map_len);
  }

  const double secs = double(t_end - t_start) / 1e9;
  const double n = double(iters);
  r.rt_per_s = n / secs;
  r.wall_mean = secs * 1e6 / n;
  r.max = *std::max_element(rtt.begin(), rtt.end()) / 1000.0;
  r.p50 = Pct(rtt, 0.50);
  r.p99 = Pct(rtt, 0.99);
  r.p999 = Pct(rtt, 0.999);

  // Machine: busy cores during the run, ours subtracted; steal is the hypervisor running others.
  const double hz = double(sysconf(_SC_CLK_TCK));
  const double machine_busy_cores = double(m1.busy - m0.busy) / hz / secs;
  const double ours_cores =
      (r.parent.user_us + r.parent.sys_us + r.child.user_us + r.child.sys_us) / 1e6 / secs;
  const double steal_cores = double(m1.steal - m0.steal) / hz / secs;

  const double pc = (r.parent.user_us + r.parent.sys_us) / n, cc = (r.child.user_us + r.child.sys_us) / n;
  char pin[32];
  if (opt.pin_parent < 0 && opt.pin_child < 0) snprintf(pin, sizeof pin, "inherited");
  else snprintf(pin, sizeof pin, "p%d/c%d", opt.pin_parent, opt.pin_child);
  cpu_set_t mask;
  sched_getaffinity(0, sizeof mask, &mask);
  printf("transport=%s size=%zu rep=%d iters=%ld pin=%s parent_cpus=%d spin_us=%d verify=%s "
         "parent_work_us=%d child_work_us=%d work_loops_per_us=%.1f rt_per_s=%.0f wall_us=%.2f p50_us=%.2f p99_us=%.2f p999_us=%.2f max_us=%.1f "
         "cpu_us=%.2f cpu_net_us=%.2f parent_cpu_us=%.2f child_cpu_us=%.2f parent_sys_us=%.2f child_sys_us=%.2f "
         "parent_vcsw=%.3f parent_ivcsw=%.3f child_vcsw=%.3f child_ivcsw=%.3f "
         "parent_syscalls=%.3f child_syscalls=%.3f parent_sleeps=%.3f child_sleeps=%.3f "
         "parent_spin_hits=%.3f child_spin_hits=%.3f spurious=%llu signals=%.3f full_waits=%llu "
         "machine_busy_cores=%.2f others_cores=%.2f steal_cores=%.2f load=%s\n",
         Name(t), size, rep, iters, pin, CPU_COUNT(&mask), t == Transport::kShmSpin ? opt.spin_us : 0,
         opt.verify == Verify::kFull ? "full" : "stamps", opt.parent_work_us, opt.child_work_us, g_loops_per_us, r.rt_per_s,
         r.wall_mean, r.p50, r.p99, r.p999, r.max, pc + cc, pc + cc - opt.parent_work_us - opt.child_work_us, pc, cc, r.parent.sys_us / n, r.child.sys_us / n, r.parent.nvcsw / n, r.parent.nivcsw / n,
         r.child.nvcsw / n, r.child.nivcsw / n, double(r.parent.syscalls) / n, double(r.child.syscalls) / n,
         double(r.parent.sleeps) / n, double(r.child.sleeps) / n, double(r.parent.spin_hits) / n,
         double(r.child.spin_hits) / n, (unsigned long long)(r.parent.spurious + r.child.spurious),
         double(r.parent.signals + r.child.signals) / n, (unsigned long long)(r.parent.full_waits + r.child.full_waits),
         machine_busy_cores, std::max(0.0, machine_busy_cores - ours_cores), steal_cores, load_before.c_str());
  fflush(stdout);
  if (opt.fault != Fault::kNone) {
    fprintf(stderr, "channel-pingpong: the injected fault went unnoticed\n");
    exit(4);
  }
}

// The calls alone, with nobody to wake: a socket frame sent (sendmsg, header and payload gathered)
// and read back in one process, against an eventfd written and read. What is left of a
// transport's cost per round trip after these is the wake-up path.
void RunCallCost(const Options& opt) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) Fatal("socketpair: %s", strerror(errno));
  int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  for (size_t size : opt.sizes) {
    if (size > (128u << 10)) continue;  // more than the socket buffer takes in one call
    std::vector<char> out(size), in(size + sizeof(FrameHeader));
    FrameHeader h{kMagic, uint32_t(size), 0};
    const long n = std::max(1000L, opt.iters);
    for (int rep = 1; rep <= opt.reps; rep++) {
      const uint64_t t0 = NowNs();
      for (long i = 0; i < n; i++) {
        iovec iov[2] = {{&h, sizeof h}, {out.data(), size}};
        msghdr m{};
        m.msg_iov = iov;
        m.msg_iovlen = 2;
        if (sendmsg(sv[0], &m, MSG_DONTWAIT | MSG_NOSIGNAL) != ssize_t(sizeof h + size)) Fatal("sendmsg: short");
        size_t got = 0;
        while (got < sizeof h + size) {
          ssize_t r = read(sv[1], in.data() + got, in.size() - got);
          if (r <= 0) Fatal("read: %s", strerror(errno));
          got += size_t(r);
        }
      }
      const uint64_t t1 = NowNs();
      for (long i = 0; i < n; i++) {
        uint64_t v = 1;
        if (write(efd, &v, sizeof v) != sizeof v || read(efd, &v, sizeof v) != sizeof v) Fatal("eventfd");
      }
      const uint64_t t2 = NowNs();
      printf("case=call-cost size=%zu rep=%d socket_send_read_ns=%.0f eventfd_write_read_ns=%.0f load=%s\n", size, rep,
             double(t1 - t0) / double(n), double(t2 - t1) / double(n), LoadAvg().c_str());
    }
  }
  close(sv[0]);
  close(sv[1]);
  close(efd);
}

// ---- command line ---------------------------------------------------------------------------

[[noreturn]] void Usage(const char* why) {
  fprintf(stderr,
          "channel-pingpong: %s\n"
          "usage: pingpong [-t socket,shm-always,shm-needed,shm-et,shm-spin] [-s 200,65536,1048576] [-n ITERS]\n"
          "                [--iters-large N] [--warmup N] [--reps N] [--matrix] [--spin-us N]\n"
          "                [--ring-bytes N] [--pin-parent CPU] [--pin-child CPU] [--verify stamps|full]\n"
          "                [--fault none|corrupt|late-flag|early-publish] [--fault-at SEQ] [--timeout-ms N]\n"
          "                [--parent-work-us N] [--child-work-us N] [--call-cost]\n"
          "(see the comment at the top of bench/channel-pingpong.cc)\n",
          why);
  exit(2);
}

long ParseNum(const char* s, const char* what) {
  char* end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *end || v < 0) {
    std::string m = std::string("bad number for ") + what + ": " + s;
    Usage(m.c_str());
  }
  return v;
}

template <class F>
void SplitList(std::string_view s, F f) {
  while (!s.empty()) {
    size_t comma = s.find(',');
    f(std::string(s.substr(0, comma)));
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
}

Options Parse(int argc, char** argv) {
  Options o;
  bool matrix = false, sizes_given = false;
  for (int i = 1; i < argc; i++) {
    std::string_view a = argv[i];
    auto val = [&]() -> const char* {
      if (i + 1 >= argc) Usage((std::string(a) + " needs a value").c_str());
      return argv[++i];
    };
    if (a == "-t" || a == "--transports") {
      o.transports.clear();
      SplitList(val(), [&](const std::string& n) {
        for (Transport t : kAllTransports)
          if (n == Name(t)) return o.transports.push_back(t);
        Usage(("unknown transport " + n).c_str());
      });
    } else if (a == "-s" || a == "--sizes") {
      o.sizes.clear();
      sizes_given = true;
      SplitList(val(), [&](const std::string& n) { o.sizes.push_back(size_t(ParseNum(n.c_str(), "--sizes"))); });
    } else if (a == "-n" || a == "--iters") {
      o.iters = ParseNum(val(), "--iters");
    } else if (a == "--iters-large") {
      o.iters_large = ParseNum(val(), "--iters-large");
    } else if (a == "--warmup") {
      o.warmup = ParseNum(val(), "--warmup");
    } else if (a == "--reps") {
      o.reps = int(ParseNum(val(), "--reps"));
    } else if (a == "--matrix") {
      matrix = true;
    } else if (a == "--call-cost") {
      o.call_cost = true;
    } else if (a == "--spin-us") {
      o.spin_us = int(ParseNum(val(), "--spin-us"));
    } else if (a == "--ring-bytes") {
      o.ring_bytes = size_t(ParseNum(val(), "--ring-bytes"));
    } else if (a == "--pin-parent") {
      o.pin_parent = int(ParseNum(val(), "--pin-parent"));
    } else if (a == "--pin-child") {
      o.pin_child = int(ParseNum(val(), "--pin-child"));
    } else if (a == "--verify") {
      std::string_view v = val();
      if (v == "stamps") o.verify = Verify::kStamps;
      else if (v == "full") o.verify = Verify::kFull;
      else Usage("--verify is stamps or full");
    } else if (a == "--fault") {
      std::string_view v = val();
      if (v == "none") o.fault = Fault::kNone;
      else if (v == "corrupt") o.fault = Fault::kCorrupt;
      else if (v == "late-flag") o.fault = Fault::kLateFlag;
      else if (v == "early-publish") o.fault = Fault::kEarlyPublish;
      else Usage("--fault is none, corrupt, late-flag or early-publish");
    } else if (a == "--fault-at") {
      o.fault_at = ParseNum(val(), "--fault-at");
    } else if (a == "--parent-work-us") {
      o.parent_work_us = int(ParseNum(val(), "--parent-work-us"));
    } else if (a == "--child-work-us") {
      o.child_work_us = int(ParseNum(val(), "--child-work-us"));
    } else if (a == "--timeout-ms") {
      o.timeout_ms = int(ParseNum(val(), "--timeout-ms"));
    } else if (a == "-h" || a == "--help") {
      Usage("help");
    } else {
      Usage(("unknown argument " + std::string(a)).c_str());
    }
  }
  if (matrix && !sizes_given) o.sizes = {200, 65536, 1048576};
  for (size_t s : o.sizes)
    if (s < 8 || s % 8 != 0 || s > (64u << 20)) Usage("a size is a multiple of 8 between 8 and 64 MiB");
  if (o.iters < 1 || o.iters_large < 1 || o.reps < 1 || o.warmup < 1)
    Usage("--iters, --iters-large, --warmup and --reps are at least 1");
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = Parse(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  if (opt.call_cost) {
    RunCallCost(opt);
    return 0;
  }
  if (opt.parent_work_us > 0 || opt.child_work_us > 0) Calibrate();
  // Interleave: every transport once per size before the next repetition, so a noisy minute on
  // the shared machine lands on every transport rather than on one.
  for (int rep = 1; rep <= opt.reps; rep++)
    for (size_t size : opt.sizes)
      for (Transport t : opt.transports) RunCase(opt, t, size, rep);
  return 0;
}
