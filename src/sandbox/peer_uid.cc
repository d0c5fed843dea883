#include "sandbox/peer_uid.h"

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace nimbus::sandbox {
namespace {

std::string Errno(const char* what, int err) {
  return std::string(what) + ": " + std::strerror(err);
}

// "127.0.0.1:41234" or "[::1]:41234", for messages.
std::string Describe(const sockaddr_storage& a) {
  char host[INET6_ADDRSTRLEN] = "?";
  std::string out;
  if (a.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&a);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    out.append(host).append(":").append(std::to_string(ntohs(in->sin_port)));
  } else {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&a);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
    out.append("[").append(host).append("]:").append(std::to_string(ntohs(in6->sin6_port)));
  }
  return out;
}

// Fills one end of an inet_diag_sockid: the address words and the port, both in network order
// as the kernel keeps them.
void FillEnd(const sockaddr_storage& a, __be16* port, __be32 addr[4]) {
  if (a.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&a);
    *port = in->sin_port;
    addr[0] = in->sin_addr.s_addr;
  } else {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&a);
    *port = in6->sin6_port;
    std::memcpy(addr, &in6->sin6_addr, sizeof(in6->sin6_addr));
  }
}

// Closes the netlink socket on every return path.
struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) close(fd);
  }
};

}  // namespace

Result<uid_t> SocketPeerUid(int connected_fd) {
  int protocol = 0;
  socklen_t optlen = sizeof(protocol);
  if (getsockopt(connected_fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &optlen) != 0) {
    return Status::InvalidArgument(Errno("peer uid: fd is not a socket", errno));
  }
  if (protocol != IPPROTO_TCP) {
    return Status::InvalidArgument("peer uid: fd is not a TCP socket");
  }
  sockaddr_storage local{}, peer{};
  socklen_t local_len = sizeof(local), peer_len = sizeof(peer);
  if (getsockname(connected_fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0) {
    return Status::Io(Errno("peer uid: getsockname", errno));
  }
  if (getpeername(connected_fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) {
    // ENOTCONN: never connected, or already reset by the peer.
    return Status::FailedPrecondition(Errno("peer uid: socket has no peer (getpeername)", errno));
  }
  if (local.ss_family != AF_INET && local.ss_family != AF_INET6) {
    return Status::InvalidArgument("peer uid: socket is neither IPv4 nor IPv6");
  }

  // The request: the peer's socket, named from its own point of view (its source is our peer,
  // its destination is us). Without NLM_F_DUMP the kernel does an exact lookup of that 4-tuple.
  struct {
    nlmsghdr nlh;
    inet_diag_req_v2 req;
  } request{};
  request.nlh.nlmsg_len = sizeof(request);
  request.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  request.nlh.nlmsg_flags = NLM_F_REQUEST;
  request.nlh.nlmsg_seq = 1;
  request.req.sdiag_family = local.ss_family;
  request.req.sdiag_protocol = IPPROTO_TCP;
  request.req.idiag_states = ~0u;
  FillEnd(peer, &request.req.id.idiag_sport, request.req.id.idiag_src);
  FillEnd(local, &request.req.id.idiag_dport, request.req.id.idiag_dst);
  request.req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  request.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;

  // TODO(perf): a netlink socket kept per thread would save about half the cost of a call; it
  // is opened per call so that no state is shared across threads or inherited by forked children.
  FdCloser nl{socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG)};
  if (nl.fd < 0) return Status::Io(Errno("peer uid: socket(NETLINK_SOCK_DIAG)", errno));
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  ssize_t sent;
  do {
    sent = sendto(nl.fd, &request, sizeof(request), 0, reinterpret_cast<sockaddr*>(&kernel),
                  sizeof(kernel));
  } while (sent < 0 && errno == EINTR);
  if (sent != static_cast<ssize_t>(sizeof(request))) {
    return Status::Io(Errno("peer uid: sending the sock_diag request", sent < 0 ? errno : EIO));
  }

  // The answer is one message: an inet_diag_msg, or an NLMSG_ERROR. The buffer is sized for an
  // inet_diag_msg with the attributes the kernel may append; a longer answer is truncated and
  // reported as an error below rather than half-read.
  alignas(nlmsghdr) char buf[1024];
  sockaddr_nl from{};
  socklen_t from_len = sizeof(from);
  ssize_t got;
  do {
    got = recvfrom(nl.fd, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &from_len);
  } while (got < 0 && errno == EINTR);
  if (got < 0) return Status::Io(Errno("peer uid: reading the sock_diag answer", errno));

  const auto* nlh = reinterpret_cast<const nlmsghdr*>(buf);
  if (!NLMSG_OK(nlh, static_cast<unsigned>(got))) {
    return Status::Io("peer uid: truncated sock_diag answer");
  }
  if (from.nl_pid != 0 || nlh->nlmsg_seq != request.nlh.nlmsg_seq) {
    return Status::Io("peer uid: sock_diag answer not from the kernel or not to our request");
  }
  // Built only on error paths: the answer for a live peer allocates nothing.
  auto tuple = [&] { return "peer " + Describe(peer) + " -> " + Describe(local); };
  if (nlh->nlmsg_type == NLMSG_ERROR) {
    const auto* err = static_cast<const nlmsgerr*>(NLMSG_DATA(nlh));
    if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) {
      return Status::Io("peer uid: truncated sock_diag error");
    }
    if (err->error == -ENOENT) {
      return Status::NotFound("peer uid: no local socket for " + tuple() +
                              " (the peer closed its end, or it is not on this host)");
    }
    return Status::Io(Errno(("peer uid: sock_diag lookup of " + tuple()).c_str(), -err->error));
  }
  if (nlh->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
      nlh->nlmsg_len < NLMSG_LENGTH(sizeof(inet_diag_msg))) {
    return Status::Io("peer uid: unexpected sock_diag answer (type " +
                      std::to_string(nlh->nlmsg_type) + ")");
  }
  const auto* msg = static_cast<const inet_diag_msg*>(NLMSG_DATA(nlh));
  // The exact lookup falls back to a listener bound to the peer's address and port when no
  // connected socket matches, so the answer must be checked to be the peer's connected end:
  // same ports, a connected state. And only a socket still held open by a process has an owner
  // to report: the kernel reports uid 0 for sockets no process holds (TIME_WAIT and request
  // sockets, and on older kernels a socket orphaned by close()). Those have inode 0, so an
  // inode of 0 means "no owner", never "root".
  const bool same_ports = msg->id.idiag_sport == request.req.id.idiag_sport &&
                          msg->id.idiag_dport == request.req.id.idiag_dport;
  bool connected = false;
  switch (msg->idiag_state) {
    case TCP_ESTABLISHED:
    case TCP_FIN_WAIT1:
    case TCP_FIN_WAIT2:
    case TCP_CLOSE_WAIT:
    case TCP_LAST_ACK:
    case TCP_CLOSING:
      connected = true;
      break;
    default:
      break;
  }
  if (!same_ports || !connected || msg->idiag_inode == 0) {
    return Status::NotFound("peer uid: no process holds a connected socket for " + tuple() +
                            " (the peer closed its end, or it is not on this host; kernel "
                            "state " + std::to_string(msg->idiag_state) + ")");
  }
  return static_cast<uid_t>(msg->idiag_uid);
}

}  // namespace nimbus::sandbox
