/* nimbus-init: the first process of every instance (PID 1 of its PID namespace when the
 * instance is sandboxed). The launcher's stem forks the instance's main process and then execs
 * this small static program in its own place, so no copy of the daemon's memory stays behind
 * for the instance's lifetime.
 *
 * It reaps every process of the instance (orphans included, as an init must), and when the
 * main process (argv[1], its pid as this process sees it) ends, writes that process's wait
 * status (a native int) to fd 3 and exits; the kernel then ends whatever is left in the PID
 * namespace. The daemon reads the status to say how the runtime ended.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  pid_t main_pid = (pid_t)atoi(argv[1]);
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
