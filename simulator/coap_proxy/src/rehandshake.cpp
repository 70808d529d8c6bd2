#include "estlab/coap_proxy/rehandshake.hpp"

#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstring>

namespace estlab::coap_proxy {

namespace {

// What client_hello_fragment needs of the first record, read off the bytes without parsing the
// datagram: every datagram of every session passes here, and almost none is a ClientHello.
bool may_be_client_hello(ByteView datagram) {
  constexpr std::size_t kHandshakeType = 13;  // after the record header
  return datagram.size() > kHandshakeType && datagram[0] == 22 && datagram[3] == 0 && datagram[4] == 0 &&
         datagram[kHandshakeType] == 1;
}

}  // namespace

HelloDecision decide_client_hello(ByteView datagram, bool established, const std::optional<SessionHandshake>& handshake) {
  HelloDecision decision;
  if (!may_be_client_hello(datagram)) return decision;
  auto records = network::parse_dtls_records(datagram);
  if (!records || records->empty()) return decision;
  auto hello = network::client_hello_fragment(records->front());
  if (!hello || !hello->cookie || !hello->random) return decision;  // not a ClientHello's first fragment
  decision.client_hello = records->front();
  decision.cookie = hello->cookie;
  decision.random = hello->random;
  if (!established || !handshake) return decision;
  if (*hello->random == handshake->random) return decision;  // a late copy of the session's own
  if (hello->cookie->empty()) {
    decision.action = HelloAction::answer_cookie;
  } else if (*hello->cookie == handshake->cookie) {
    decision.action = HelloAction::replace_session;
  }
  return decision;
}

std::string address_key(const sockaddr* address) {
  std::string key;
  auto append = [&key](const void* data, std::size_t size) { key.append(static_cast<const char*>(data), size); };
  if (address->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(address);
    key = "4";
    append(&in->sin_port, sizeof in->sin_port);
    append(&in->sin_addr, sizeof in->sin_addr);
  } else if (address->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
    key = "6";
    append(&in6->sin6_port, sizeof in6->sin6_port);
    append(&in6->sin6_addr, sizeof in6->sin6_addr);
    append(&in6->sin6_scope_id, sizeof in6->sin6_scope_id);
  }
  return key;
}

void RehandshakeGuard::established(const sockaddr* remote, const void* session) {
  const std::string key = address_key(remote);
  Session entry{session, std::nullopt};
  if (auto it = offered_handshakes_.find(key); it != offered_handshakes_.end()) {
    entry.handshake = std::move(it->second);
    offered_handshakes_.erase(it);
  }
  established_[key] = std::move(entry);
}

void RehandshakeGuard::deleted(const sockaddr* remote, const void* session) {
  auto it = established_.find(address_key(remote));
  if (it != established_.end() && it->second.session == session) established_.erase(it);
}

namespace {

// One datagram at the head of the socket, left there (MSG_PEEK), with where it came from and the
// local address it was sent to (IP_PKTINFO, which libcoap turns on), to answer from that address.
struct Peeked {
  Bytes bytes;
  sockaddr_storage from{};
  socklen_t from_size = 0;
  std::optional<in_pktinfo> local4;
  std::optional<in6_pktinfo> local6;
};

std::optional<Peeked> peek(int fd, int flags) {
  Peeked peeked;
  std::array<std::uint8_t, 2048> buffer{};
  alignas(cmsghdr) std::array<std::uint8_t, 256> control{};
  iovec io{buffer.data(), buffer.size()};
  msghdr message{};
  message.msg_name = &peeked.from;
  message.msg_namelen = sizeof peeked.from;
  message.msg_iov = &io;
  message.msg_iovlen = 1;
  message.msg_control = control.data();
  message.msg_controllen = control.size();
  const ssize_t size = ::recvmsg(fd, &message, flags | MSG_DONTWAIT);
  if (size < 0) return std::nullopt;
  // Longer than any ClientHello this guard answers: libcoap's.
  if (message.msg_flags & MSG_TRUNC) return std::nullopt;
  peeked.bytes.assign(buffer.begin(), buffer.begin() + size);
  peeked.from_size = message.msg_namelen;
  for (cmsghdr* c = CMSG_FIRSTHDR(&message); c != nullptr; c = CMSG_NXTHDR(&message, c)) {
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
      in_pktinfo info{};
      std::memcpy(&info, CMSG_DATA(c), sizeof info);
      peeked.local4 = info;
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
      in6_pktinfo info{};
      std::memcpy(&info, CMSG_DATA(c), sizeof info);
      peeked.local6 = info;
    }
  }
  return peeked;
}

// The answer leaves from the address the ClientHello was sent to, as libcoap's own would.
void send_from(int fd, const Peeked& to, ByteView datagram) {
  iovec io{const_cast<std::uint8_t*>(datagram.data()), datagram.size()};
  msghdr message{};
  message.msg_name = const_cast<sockaddr_storage*>(&to.from);
  message.msg_namelen = to.from_size;
  message.msg_iov = &io;
  message.msg_iovlen = 1;
  alignas(cmsghdr) std::array<std::uint8_t, CMSG_SPACE(sizeof(in6_pktinfo))> control{};
  auto attach = [&](int level, int type, const void* data, std::size_t size) {
    message.msg_control = control.data();
    message.msg_controllen = CMSG_SPACE(size);
    cmsghdr* c = CMSG_FIRSTHDR(&message);
    c->cmsg_level = level;
    c->cmsg_type = type;
    c->cmsg_len = CMSG_LEN(size);
    std::memcpy(CMSG_DATA(c), data, size);
  };
  if (to.local4 && to.from.ss_family == AF_INET) {
    in_pktinfo info{};
    info.ipi_spec_dst = to.local4->ipi_addr;
    attach(IPPROTO_IP, IP_PKTINFO, &info, sizeof info);
  } else if (to.local6 && to.from.ss_family == AF_INET6) {
    attach(IPPROTO_IPV6, IPV6_PKTINFO, &*to.local6, sizeof(in6_pktinfo));
  }
  // A lost answer is a lost datagram: the device sends its ClientHello again.
  [[maybe_unused]] auto sent = ::sendmsg(fd, &message, MSG_DONTWAIT);
}

}  // namespace

std::optional<RehandshakeGuard::Replacement> RehandshakeGuard::before_read() {
  if (fd_ < 0) return std::nullopt;
  // Each answered ClientHello is taken off the socket; stop at the first datagram for libcoap.
  for (int answered = 0; answered < 64; ++answered) {
    auto peeked = peek(fd_, MSG_PEEK);
    if (!peeked || !may_be_client_hello(peeked->bytes)) return std::nullopt;  // libcoap's
    const std::string key = address_key(reinterpret_cast<const sockaddr*>(&peeked->from));
    auto session = established_.find(key);
    const bool established = session != established_.end();
    HelloDecision decision = decide_client_hello(peeked->bytes, established, established ? session->second.handshake : std::nullopt);
    switch (decision.action) {
      case HelloAction::pass:
        // A cookie libcoap is about to check: if the handshake completes, it is that address's.
        if (!established && decision.cookie && !decision.cookie->empty()) {
          if (offered_handshakes_.size() >= kMaxOfferedHandshakes && offered_handshakes_.count(key) == 0)
            offered_handshakes_.erase(offered_handshakes_.begin());
          offered_handshakes_[key] = {*decision.cookie, *decision.random};
        }
        return std::nullopt;
      case HelloAction::answer_cookie: {
        if (!peek(fd_, 0)) return std::nullopt;  // take it off the socket: it is answered here
        send_from(fd_, *peeked, network::hello_verify_request(*decision.client_hello, session->second.handshake->cookie).encode());
        ++counters_.cookies_sent;
        continue;
      }
      case HelloAction::replace_session: {
        Replacement replacement;
        replacement.session = session->second.session;
        replacement.remote = peeked->from;
        replacement.remote_size = peeked->from_size;
        if (peeked->local4) replacement.ifindex = peeked->local4->ipi_ifindex;
        else if (peeked->local6) replacement.ifindex = static_cast<int>(peeked->local6->ipi6_ifindex);
        else replacement.ifindex = fd_;  // what libcoap records without IP_PKTINFO
        offered_handshakes_[key] = {*decision.cookie, *decision.random};  // the new session's handshake
        established_.erase(session);
        ++counters_.sessions_replaced;
        return replacement;
      }
    }
  }
  return std::nullopt;
}

int RehandshakeGuard::find_endpoint_socket(std::uint16_t port) {
  DIR* directory = ::opendir("/proc/self/fd");
  if (directory == nullptr) return -1;
  int found = -1;
  while (dirent* entry = ::readdir(directory)) {
    char* end = nullptr;
    const long fd = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || fd == ::dirfd(directory)) continue;
    int type = 0;
    socklen_t type_size = sizeof type;
    if (::getsockopt(static_cast<int>(fd), SOL_SOCKET, SO_TYPE, &type, &type_size) != 0 || type != SOCK_DGRAM) continue;
    sockaddr_storage bound{};
    socklen_t bound_size = sizeof bound;
    if (::getsockname(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&bound), &bound_size) != 0) continue;
    std::uint16_t bound_port = 0;
    if (bound.ss_family == AF_INET) bound_port = ntohs(reinterpret_cast<const sockaddr_in*>(&bound)->sin_port);
    else if (bound.ss_family == AF_INET6) bound_port = ntohs(reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port);
    if (bound_port == port) {
      found = static_cast<int>(fd);
      break;
    }
  }
  ::closedir(directory);
  return found;
}

}  // namespace estlab::coap_proxy
