/* nimbus-init: the first process of every instance (PID 1 of its PID namespace when the
 * instance is sandboxed). The launcher's stem forks the instance's main process and then execs
 * this small static program in its own place, so no copy of the daemon's memory stays behind
 * for the instance's lifetime.
 *
 * It reaps every process of the instance (orphans included, as an init must), and when the
 * main process (argv[1], its pid as this process sees it) ends, writes that process's wait
 * status (a native int) to fd 3 and exits; the kernel then ends whatever is left in the PID
 * namespace. The daemon reads the status to say how the runtime ended.
 *
 * A prepared or primed instance (argv[2] is "bind", docs/sandbox.md) entered its jail, or
 * started its runtime, before any function was known, so its code is mounted later, by this
 * process, when a launch comes. Until then fd 5 is the stem's staging directory (/.nimbus,
 * opened before the worker covered it) and fd 6 a socket from the daemon. The daemon sends one
 * message, the code's path relative to the staging directory, a NUL, and the runtime's (or
 * nothing); this process binds them read-only at /var/task and /var/runtime, answers one byte
 * (0, or the errno of the failure) and closes both descriptors. Until the message comes it
 * also watches the main process, so a runtime that dies while primed is reported as any other.
 *
 * `nimbus-init --exec` is another role of the same program: a prepared stem's worker, once in
 * its jail, execs it in its own place (so the daemon's memory, which the worker was cloned
 * with, is let go before any launch rather than during one). It reads one exec message from fd
 * 3 (a little-endian u32 length, then u32 argc and envc, then NUL-terminated strings: the
 * executable, the working directory, argv..., env...), changes directory and execs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

enum { kStageFd = 5, kControlFd = 6 };

/* Binds <staging>/<rel> read-only, nosuid, nodev at `target`. Returns 0 or an errno. */
static int BindStaged(const char* rel, const char* target) {
  if (rel[0] == '\0' || rel[0] == '/' || strstr(rel, "..") != NULL) return EINVAL;
  int tree = (int)syscall(SYS_open_tree, kStageFd, rel, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (tree < 0) return errno;
  struct mount_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  /* The staged directory is a read-only bind already and its clone keeps that; this says it
   * again where the kernel has mount_setattr (5.12). */
  if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof attr) != 0 && errno != ENOSYS) {
    int e = errno;
    close(tree);
    return e;
  }
  int rc = (int)syscall(SYS_move_mount, tree, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH);
  int e = rc == 0 ? 0 : errno;
  close(tree);
  return e;
}

/* Waits for the daemon's hand-off or the main process's end, whichever comes first. */
static void AwaitHandOff(pid_t main_pid) {
  int pidfd = (int)syscall(SYS_pidfd_open, main_pid, 0);
  struct pollfd fds[2] = {{kControlFd, POLLIN, 0}, {pidfd, POLLIN, 0}};
  for (;;) {
    int n = poll(fds, pidfd >= 0 ? 2 : 1, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    if (fds[1].revents) break; /* the runtime ended before any hand-off */
    if (fds[0].revents) {
      char rel[4096];
      ssize_t got;
      do {
        got = read(kControlFd, rel, sizeof rel - 1);
      } while (got < 0 && errno == EINTR);
      if (got > 0) {
        /* "code\0runtime": the runtime part is empty when the runtime is there already (a
         * primed instance) or there is none (`provided`). */
        rel[got] = '\0';
        size_t code_len = strlen(rel);
        const char* runtime = (size_t)got > code_len + 1 ? rel + code_len + 1 : "";
        int e = BindStaged(rel, "/var/task");
        if (e == 0 && runtime[0] != '\0') e = BindStaged(runtime, "/var/runtime");
        unsigned char answer = (unsigned char)e;
        ssize_t w;
        do {
          w = write(kControlFd, &answer, 1);
        } while (w < 0 && errno == EINTR);
      }
      break;
    }
  }
  close(kStageFd);
  close(kControlFd);
  if (pidfd >= 0) close(pidfd);
}

enum { kExecMax = 64 * 1024, kExecPointers = 2048 };

static void Say(const char* s) {
  ssize_t n = write(2, s, strlen(s));
  (void)n;
}

/* Reads exactly `want` bytes from fd 3; 0 at end of file before any byte, -1 when cut short. */
static int ReadFull(char* to, size_t want) {
  size_t got = 0;
  while (got < want) {
    ssize_t r = read(3, to + got, want - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return got == 0 ? 0 : -1;
    got += (size_t)r;
  }
  return 1;
}

static int ExecWhenTold(void) {
  static char buf[kExecMax + 1];
  static char* ptrs[kExecPointers + 2];
  uint32_t length = 0;
  int rc = ReadFull((char*)&length, sizeof length);
  if (rc == 0) _exit(0); /* retired while prepared */
  if (rc < 0 || length > kExecMax || length < 2 * sizeof(uint32_t) || ReadFull(buf, length) != 1) _exit(124);
  close(3);
  buf[length] = '\0';
  uint32_t counts[2];
  memcpy(counts, buf, sizeof counts);
  if ((size_t)counts[0] + counts[1] + 2 > kExecPointers) _exit(124);
  char* p = buf + sizeof counts;
  char* end = buf + length;
  char* next[2 + kExecPointers];
  size_t total = 2 + (size_t)counts[0] + counts[1];
  for (size_t i = 0; i < total; ++i) {
    next[i] = p;
    while (p < end && *p) ++p;
    if (p >= end) _exit(124);
    ++p;
  }
  /* argv..., NULL, env..., NULL */
  size_t k = 0;
  for (uint32_t i = 0; i < counts[0]; ++i) ptrs[k++] = next[2 + i];
  ptrs[k++] = NULL;
  char** exec_env = ptrs + k;
  for (uint32_t i = 0; i < counts[1]; ++i) ptrs[k++] = next[2 + counts[0] + i];
  ptrs[k] = NULL;
  if (chdir(next[1]) != 0) {
    int e = errno;
    Say("nimbus: cannot start the instance: enter the task root: ");
    Say(strerror(e));
    Say("\n");
    _exit(125);
  }
  execve(next[0], ptrs, exec_env);
  int e = errno;
  Say("nimbus: cannot execute ");
  Say(next[0]);
  Say(": ");
  Say(strerror(e));
  Say("\n");
  _exit(127);
}

int main(int argc, char** argv) {
  if (argc >= 2 && strcmp(argv[1], "--exec") == 0) return ExecWhenTold();
  if (argc < 2) return 2;
  pid_t main_pid = (pid_t)atoi(argv[1]);
  if (argc >= 3 && strcmp(argv[2], "bind") == 0) AwaitHandOff(main_pid);
  for (;;) {
    int status = 0;
    pid_t p = wait(&status);
    if (p == main_pid) {
      ssize_t n;
      do {
        n = write(3, &status, sizeof status);
      } while (n < 0 && errno == EINTR);
      _exit(0);
    }
    if (p < 0 && errno == ECHILD) _exit(0);
  }
}
