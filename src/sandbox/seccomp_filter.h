// The seccomp filter every function instance runs under, built in the daemon and installed by
// the instance's child process just before it execs the runtime.
//
// Why default-allow. An instance runs an arbitrary runtime (CPython, Node.js, a native
// `provided` binary) and whatever native extensions the function ships; an allow-list would
// have to know every syscall each of them may ever make, and a miss breaks a function in
// production with an error far from its cause. A deny-list keeps every runtime working and
// takes away what a function never needs. It is one layer, not the wall: the instance already
// runs as an unprivileged uid in its own namespaces and cgroup, so most of the refused calls
// would fail on permissions anyway. The filter exists to shrink the kernel attack surface
// reachable from that unprivileged process (calls with a long history of privilege-escalation
// bugs) and to keep a future mistake in the privilege drop from becoming a host escape.
//
// The policy. Refused calls fail with EPERM (what the kernel returns to an unprivileged caller,
// so runtimes already handle it), except clone3:
//   - Mounts and the root directory: mount, umount2, pivot_root, chroot, and the new mount API
//     (fsopen, fsconfig, fsmount, fspick, move_mount, open_tree, mount_setattr). The launcher
//     builds the instance's file system view; the instance may not change it.
//   - New namespaces: unshare and setns outright, and clone with any CLONE_NEW* flag (a check
//     on clone's flags argument). clone3 passes its flags in memory a filter cannot read, so it
//     fails with ENOSYS, which makes glibc (pthread_create, posix_spawn) fall back to clone, as
//     container runtimes do. User namespaces above all: they hand an unprivileged process
//     capabilities over kernel code that was never written for untrusted callers.
//   - Other processes: ptrace, process_vm_readv, process_vm_writev, pidfd_getfd.
//   - The kernel and the machine: init_module, finit_module, delete_module, kexec_load,
//     kexec_file_load, reboot, swapon, swapoff, acct, quotactl, quotactl_fd, syslog, iopl,
//     ioperm, vhangup, and the obsolete nfsservctl, uselib, lookup_dcookie.
//   - Host identity and time, shared by every instance on the host: sethostname,
//     setdomainname, settimeofday, clock_settime, adjtimex, clock_adjtime (also when adjtimex
//     only reads the clock discipline: the mode is in memory a filter cannot read).
//   - Large attack surface no function needs: bpf, perf_event_open, userfaultfd, keyctl,
//     add_key, request_key (the kernel keyring is not namespaced), fanotify_init,
//     open_by_handle_at and name_to_handle_at (open_by_handle_at bypasses the mount namespace:
//     the "shocker" escape), io_uring_setup, io_uring_enter, io_uring_register (a long run of
//     kernel bugs; libuv and other users fall back to ordinary I/O when setup fails).
//   - Memory of other processes: migrate_pages and move_pages. mbind, set_mempolicy and
//     get_mempolicy stay allowed: they act on the caller's own memory, and NUMA-aware runtimes
//     and libraries (the JVM, OpenMP, jemalloc) call them.
//   - personality, unless it only reads the persona (0xffffffff) or sets the default
//     (PER_LINUX, 0): the other personas disable address randomisation, map page zero or make
//     reads imply exec.
//   - Other ABIs: a syscall made through any ABI but the native one (i386 int 0x80 and x32 on
//     x86-64; 32-bit compat on arm64) kills the process, since every rule above is written in
//     native syscall numbers and another ABI would walk around them.
//
// Using it. BuildInstanceFilter() runs once in the daemon (it allocates and calls libseccomp);
// the launcher keeps the program and, in the forked child, after the namespaces, mounts, cgroup
// and uid switch are set up (the filter refuses calls the launcher itself makes), calls
// InstallFilter() and then execve(). The filter is inherited across fork and exec and cannot be
// removed.
//
// Supported on x86-64 and arm64 (clone's flags are its first argument there; s390 swaps them
// and is refused at compile time).
//
// Threading: BuildInstanceFilter() is thread-safe (no shared state). InstallFilter() is
// async-signal-safe: it makes two prctl calls and touches no allocator or lock, so it may run
// in a child forked from the multi-threaded daemon. It confines only the calling thread (and
// what it later forks and execs), which is the whole process in such a child.
#pragma once

#include <linux/filter.h>

#include <vector>

#include "common/status.h"

namespace nimbus::sandbox {

// The instance filter as a classic BPF program for the native architecture. Errors: Internal
// when libseccomp refuses a rule or cannot export (a nimbus bug or a libseccomp too old to know
// a syscall), Io when the memory file for the export cannot be made.
Result<std::vector<sock_filter>> BuildInstanceFilter();

// Sets no_new_privs and installs `prog` (len instructions) on the calling thread. Returns 0, or
// -errno from the prctl that failed. Async-signal-safe.
int InstallFilter(const sock_filter* prog, unsigned short len);

}  // namespace nimbus::sandbox
