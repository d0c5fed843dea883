// Who is on the other end of a loopback TCP connection. The Runtime API listens on loopback and
// every function instance runs under its own uid; SocketPeerUid() lets the server attribute an
// accepted connection to the instance that opened it, without trusting anything the client sends.
//
// It asks the kernel through one NETLINK_SOCK_DIAG round trip (inet_diag, SOCK_DIAG_BY_FAMILY)
// for the socket whose 4-tuple is the mirror image of ours (its source is our peer address, its
// destination is our local address) and returns the uid that owns it (idiag_uid).
//
// The uid is the socket's owner as the kernel recorded it: the effective (fs) uid of the process
// that created the socket, even if that process changed uid afterwards or passed the socket on.
// Instances switch uid before they exec the runtime, so their sockets carry the instance's uid.
//
// Errors: InvalidArgument if the fd is not a TCP socket over IPv4/IPv6; FailedPrecondition if
// it has no peer (never connected, or reset); NotFound if no process holds the peer's socket:
// the peer closed its end (its socket may linger in FIN_WAIT2 or TIME_WAIT, owned by nobody),
// or the peer is on another host; Io for a failed netlink call. An error is returned rather
// than a guess: a wrong uid would attribute a request to the wrong instance. So a client that
// writes its request and closes at once (without a half-close) is refused; Runtime API clients
// wait for the answer and hold their end open until then.
//
// Threading: SocketPeerUid() is thread-safe and keeps no state; each call opens, uses and closes
// its own netlink socket. Its system calls do not wait (sock_diag answers from kernel memory),
// so it may run on an event loop: about 25 us a call on a 2-core VM, half of it opening and
// closing the netlink socket (peer_uid_test's CostPerCall prints both).
#pragma once

#include <sys/types.h>

#include "common/status.h"

namespace nimbus::sandbox {
Result<uid_t> SocketPeerUid(int connected_fd);
}
