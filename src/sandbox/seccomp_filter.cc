#include "sandbox/seccomp_filter.h"

#include <linux/seccomp.h>
#include <seccomp.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#if defined(__s390__) || defined(__s390x__)
#error "clone's flags are its second argument on s390; the clone rule assumes the first"
#endif

namespace nimbus::sandbox {
namespace {

struct CtxDeleter {
  void operator()(scmp_filter_ctx ctx) const { seccomp_release(ctx); }
};
using Ctx = std::unique_ptr<void, CtxDeleter>;

struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) close(fd);
  }
};

// Refused outright with EPERM; the header says why for each group. Names this architecture does
// not have (umount and stime on x86-64, iopl on arm64) are skipped by libseccomp.
constexpr int kRefused[] = {
    // Mounts and the root directory.
    SCMP_SYS(mount), SCMP_SYS(umount), SCMP_SYS(umount2), SCMP_SYS(pivot_root), SCMP_SYS(chroot),
    SCMP_SYS(fsopen), SCMP_SYS(fsconfig), SCMP_SYS(fsmount), SCMP_SYS(fspick),
    SCMP_SYS(move_mount), SCMP_SYS(open_tree), SCMP_SYS(mount_setattr),
    // New namespaces (clone is checked on its flags below).
    SCMP_SYS(unshare), SCMP_SYS(setns),
    // Other processes.
    SCMP_SYS(ptrace), SCMP_SYS(process_vm_readv), SCMP_SYS(process_vm_writev),
    SCMP_SYS(pidfd_getfd),
    // The kernel and the machine.
    SCMP_SYS(init_module), SCMP_SYS(finit_module), SCMP_SYS(delete_module), SCMP_SYS(kexec_load),
    SCMP_SYS(kexec_file_load), SCMP_SYS(reboot), SCMP_SYS(swapon), SCMP_SYS(swapoff),
    SCMP_SYS(acct), SCMP_SYS(quotactl), SCMP_SYS(quotactl_fd), SCMP_SYS(syslog), SCMP_SYS(iopl),
    SCMP_SYS(ioperm), SCMP_SYS(vhangup), SCMP_SYS(nfsservctl), SCMP_SYS(uselib),
    SCMP_SYS(lookup_dcookie),
    // Host identity and time.
    SCMP_SYS(sethostname), SCMP_SYS(setdomainname), SCMP_SYS(settimeofday), SCMP_SYS(stime),
    SCMP_SYS(clock_settime), SCMP_SYS(adjtimex), SCMP_SYS(clock_adjtime),
    // Large attack surface no function needs.
    SCMP_SYS(bpf), SCMP_SYS(perf_event_open), SCMP_SYS(userfaultfd), SCMP_SYS(keyctl),
    SCMP_SYS(add_key), SCMP_SYS(request_key), SCMP_SYS(fanotify_init),
    SCMP_SYS(open_by_handle_at), SCMP_SYS(name_to_handle_at), SCMP_SYS(io_uring_setup),
    SCMP_SYS(io_uring_enter), SCMP_SYS(io_uring_register),
    // Memory of other processes.
    SCMP_SYS(migrate_pages), SCMP_SYS(move_pages),
};

// Flags of clone that create a namespace. (CLONE_NEWTIME is not among them: in clone's flags
// its bit belongs to the exit signal; it exists only for clone3 and unshare, both refused.)
constexpr unsigned long kNamespaceFlags[] = {
    CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER,
    CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP,
};

Status RuleError(const char* what, int rc) {
  return Status::Internal(std::string("seccomp filter: adding the rule for ") + what +
                          " failed: " + std::strerror(-rc));
}

// Adds `action` for `syscall` when `cmp` holds, naming the syscall in errors.
Status AddRule(scmp_filter_ctx ctx, uint32_t action, int syscall, unsigned arg_count,
               const scmp_arg_cmp* cmp) {
  int rc = seccomp_rule_add_array(ctx, action, syscall, arg_count, cmp);
  if (rc == 0) return Status::Ok();
  char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, syscall);
  std::string what = name ? name : "syscall " + std::to_string(syscall);
  free(name);
  return RuleError(what.c_str(), rc);
}

Status AddRules(scmp_filter_ctx ctx) {
  const uint32_t eperm = SCMP_ACT_ERRNO(EPERM);
  for (int syscall : kRefused) NIMBUS_RETURN_IF_ERROR(AddRule(ctx, eperm, syscall, 0, nullptr));

  for (unsigned long flag : kNamespaceFlags) {
    scmp_arg_cmp has_flag = SCMP_A0_64(SCMP_CMP_MASKED_EQ, flag, flag);
    NIMBUS_RETURN_IF_ERROR(AddRule(ctx, eperm, SCMP_SYS(clone), 1, &has_flag));
  }
  NIMBUS_RETURN_IF_ERROR(AddRule(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0, nullptr));

  // personality: allowed only for 0 (PER_LINUX) and 0xffffffff (query). A rule compares each
  // argument once, so "neither 0 nor all-ones" is written as a union: a 32-bit value other than
  // those two has two neighbouring bits that differ, one rule per such pair and order. The masks
  // cover the low 32 bits only, which is all the kernel reads, so bits above them change nothing.
  for (int bit = 0; bit < 31; ++bit) {
    const uint64_t pair = 3ull << bit;
    scmp_arg_cmp low_set = SCMP_A0_64(SCMP_CMP_MASKED_EQ, pair, 1ull << bit);
    scmp_arg_cmp high_set = SCMP_A0_64(SCMP_CMP_MASKED_EQ, pair, 2ull << bit);
    NIMBUS_RETURN_IF_ERROR(AddRule(ctx, eperm, SCMP_SYS(personality), 1, &low_set));
    NIMBUS_RETURN_IF_ERROR(AddRule(ctx, eperm, SCMP_SYS(personality), 1, &high_set));
  }
  return Status::Ok();
}

}  // namespace

Result<std::vector<sock_filter>> BuildInstanceFilter() {
  Ctx ctx(seccomp_init(SCMP_ACT_ALLOW));  // with the native architecture only
  if (!ctx) return Status::Internal("seccomp filter: seccomp_init failed");
  // Any other ABI (i386 or x32 on x86-64) kills the process: the rules name native numbers.
  if (int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
      rc != 0) {
    return Status::Internal(std::string("seccomp filter: setting the bad-arch action: ") +
                            std::strerror(-rc));
  }
  // A binary search over syscall numbers instead of a linear scan of the rules. (The kernel also
  // caches "always allowed" per syscall, so most calls skip the program altogether.)
  if (int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_OPTIMIZE, 2); rc != 0) {
    return Status::Internal(std::string("seccomp filter: setting the optimizer: ") +
                            std::strerror(-rc));
  }
  NIMBUS_RETURN_IF_ERROR(AddRules(ctx.get()));

  // libseccomp 2.5 exports only into a file descriptor: a memory file, read back whole.
  FdCloser mem{memfd_create("nimbus-seccomp-bpf", MFD_CLOEXEC)};
  if (mem.fd < 0) {
    return Status::Io(std::string("seccomp filter: memfd_create: ") + std::strerror(errno));
  }
  if (int rc = seccomp_export_bpf(ctx.get(), mem.fd); rc != 0) {
    return Status::Internal(std::string("seccomp filter: exporting the program: ") +
                            std::strerror(-rc));
  }
  struct stat st {};
  if (fstat(mem.fd, &st) != 0) {
    return Status::Io(std::string("seccomp filter: fstat: ") + std::strerror(errno));
  }
  const size_t bytes = static_cast<size_t>(st.st_size);
  if (bytes == 0 || bytes % sizeof(sock_filter) != 0 ||
      bytes / sizeof(sock_filter) > BPF_MAXINSNS) {
    return Status::Internal("seccomp filter: exported program has an invalid size of " +
                            std::to_string(bytes) + " bytes");
  }
  std::vector<sock_filter> prog(bytes / sizeof(sock_filter));
  size_t done = 0;
  while (done < bytes) {
    ssize_t n = pread(mem.fd, reinterpret_cast<char*>(prog.data()) + done, bytes - done, done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return Status::Io(std::string("seccomp filter: reading the exported program: ") +
                        (n < 0 ? std::strerror(errno) : "short read"));
    }
    done += static_cast<size_t>(n);
  }
  return prog;
}

int InstallFilter(const sock_filter* prog, unsigned short len) {
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -errno;
  sock_fprog fprog{};
  fprog.len = len;
  fprog.filter = const_cast<sock_filter*>(prog);
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog, 0, 0) != 0) return -errno;
  return 0;
}

}  // namespace nimbus::sandbox
