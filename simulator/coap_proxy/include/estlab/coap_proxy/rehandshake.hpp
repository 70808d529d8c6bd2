// RFC 6347 4.2.8: a device that lost its DTLS state (a reboot, a power cut, a client killed
// without close_notify) comes back from the address and port of a session the server still
// holds. libcoap 4.3.1 hands its ClientHello to that session, whose OpenSSL drops an epoch-0
// record: the device gets no answer until the old session times out, minutes later. The RFC says
// the server SHOULD make a new handshake, after a cookie exchange, and MUST NOT drop the old
// association before the device has shown it is reachable at that address.
//
// The guard looks at each datagram before libcoap reads it (MSG_PEEK on the endpoint socket).
// A copy of the ClientHello that made the session (the same client random: a duplicate or a
// retransmission the network delayed) is left to libcoap, which drops it. A new ClientHello
// without a cookie for an established session gets a HelloVerifyRequest with the
// cookie libcoap gave that address in the session's own handshake (libcoap's cookie depends only
// on a per-context secret and the two addresses), so the exchange goes on exactly as on a first
// contact. When the ClientHello comes back with that cookie, the old session is to be replaced and
// the datagram is left for libcoap, which then starts the new session.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "estlab/core/bytes.hpp"
#include "estlab/network/dtls_records.hpp"

namespace estlab::coap_proxy {

// What to do with one datagram from an address.
enum class HelloAction {
  pass,              // libcoap reads it
  answer_cookie,     // a ClientHello without a cookie on an established session: answer it here
  replace_session,   // the ClientHello carries the session's cookie: the device is reachable
};

struct HelloDecision {
  HelloAction action = HelloAction::pass;
  std::optional<network::DtlsRecord> client_hello;  // the ClientHello's record, when it is one
  std::optional<Bytes> cookie;                      // the cookie it carries (empty: none)
  std::optional<Bytes> random;                      // the client's random
};

// What the guard knows of the handshake that made an established session.
struct SessionHandshake {
  Bytes cookie;  // the cookie its ClientHello brought
  Bytes random;  // its client random: a late copy of that ClientHello is no new handshake
};

// established: the address has a session whose handshake completed; handshake: what that
// handshake's ClientHello carried, if the guard saw it.
HelloDecision decide_client_hello(ByteView datagram, bool established, const std::optional<SessionHandshake>& handshake);

// A socket address as a map key: family, port and address bytes (IPv6 with its scope).
std::string address_key(const sockaddr* address);

class RehandshakeGuard {
 public:
  struct Counters {
    std::uint64_t cookies_sent = 0;      // HelloVerifyRequests answering a ClientHello on an established session
    std::uint64_t sessions_replaced = 0; // old sessions given up after the cookie came back
  };

  // endpoint_fd: libcoap's UDP socket; the guard only peeks, except at ClientHellos it answers.
  explicit RehandshakeGuard(int endpoint_fd) : fd_(endpoint_fd) {}

  // A session's handshake completed (COAP_EVENT_DTLS_CONNECTED): it may now be replaced.
  void established(const sockaddr* remote, const void* session);
  // The session is gone (COAP_EVENT_SERVER_SESSION_DEL).
  void deleted(const sockaddr* remote, const void* session);

  // A session to end: its device came back, reachable, from the same address.
  struct Replacement {
    const void* session = nullptr;
    sockaddr_storage remote{};
    socklen_t remote_size = 0;
    int ifindex = 0;  // the interface the ClientHello came in on, as libcoap records it
  };

  // Before each libcoap read. Answers ClientHellos for established sessions at the head of the
  // socket; returns the session to replace when the head is a ClientHello proving reachability
  // (the caller ends it before libcoap reads that datagram, which then starts a new session).
  std::optional<Replacement> before_read();

  const Counters& counters() const { return counters_; }

  // libcoap's UDP socket bound to this port (its endpoint does not expose it), or -1.
  static int find_endpoint_socket(std::uint16_t port);

 private:
  struct Session {
    const void* session = nullptr;
    std::optional<SessionHandshake> handshake;
  };
  int fd_;
  std::map<std::string, Session> established_;
  std::map<std::string, SessionHandshake> offered_handshakes_;  // what each address last brought libcoap
  static constexpr std::size_t kMaxOfferedHandshakes = 4096;
  Counters counters_;
};

}  // namespace estlab::coap_proxy
