// Every libcoap handle the project owns, declared once (as ossl.hpp does for OpenSSL): unique_ptr
// aliases with their free function. libcoap 3 is not thread-safe: each owner keeps its context,
// its sessions and its PDUs on one thread.
#pragma once

#include <coap3/coap.h>
#include <sys/epoll.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "estlab/core/certificate.hpp"

#include "estlab/core/result.hpp"

namespace estlab::coap {

template <auto FreeFn>
struct Deleter {
  template <typename T>
  void operator()(T* p) const noexcept { FreeFn(p); }
};

// The context frees every endpoint, resource and server session it holds.
using Context = std::unique_ptr<coap_context_t, Deleter<coap_free_context>>;
// A client session: a reference released before its context is freed.
using Session = std::unique_ptr<coap_session_t, Deleter<coap_session_release>>;
// A PDU not yet handed to coap_send() (which takes ownership, even on failure).
using Pdu = std::unique_ptr<coap_pdu_t, Deleter<coap_delete_pdu>>;
using OptList = std::unique_ptr<coap_optlist_t, Deleter<coap_delete_optlist>>;

// libcoap 4.3.1 counts DTLS handshake timeouts over the whole handshake, not per flight, and gives
// up after the session's MAX_RETRANSMIT (4): a handshake that lost five datagrams in all fails,
// even when every flight got through in the end. While a session shakes hands its limit is this
// instead (OpenSSL's own DTLS limit), bounded by the handshake deadline; CoAP's own (RFC 7252 4.8)
// is set back once the session is up.
inline constexpr std::uint16_t kDtlsHandshakeRetransmissions = 12;
inline constexpr std::uint16_t kCoapMaxRetransmit = 4;

// coap_startup() once per process (thread-safe); libcoap is never cleaned up before exit.
void ensure_started();

// The DTLS PKI setup both ends use: the peer's chain validated (depth 8, no self-signed peer) when
// verify_peer, and `tls_setup` called with `arg` for the OpenSSL settings libcoap does not cover.
// libcoap 4.3.1 calls `tls_setup` for server sessions only: a client passes nullptr and sets its
// SSL up with add_client_chain.
coap_dtls_pki_t pki_setup(bool verify_peer, coap_dtls_security_setup_t tls_setup, void* arg);
// Our own certificate and key as PEM buffers; the strings must outlive the session or context.
// libcoap loads the first certificate of the buffer only.
void set_pem_identity(coap_dtls_pki_t& pki, const std::string& certificate_pem, const std::string& key_pem);
// The intermediates a client sends after its leaf (RFC 5246 7.4.6), added to a new client session's
// SSL: libcoap has sent the ClientHello by then, and the certificate goes out only after the
// server's CertificateRequest. A server that trusts only the root refuses a leaf alone.
Result<void> add_client_chain(coap_session_t* session, const std::vector<Certificate>& chain);

// A host name or literal and a port as a UDP address (the first getaddrinfo answer).
Result<coap_address_t> resolve_udp(const std::string& host, std::uint16_t port);
// The wildcard address of `family` (AF_INET or AF_INET6) with `port`: where a client sends from.
Result<coap_address_t> any_udp(int family, std::uint16_t port);

// coap_io_process, on an empty OpenSSL error queue. libcoap 4.3.1 reads DTLS records with
// SSL_read and then asks SSL_get_error without clearing the thread's error queue first, so an
// error left there by anything else on this thread (another device's refused handshake, a parse
// that failed) turns an SSL_read that only dropped a duplicate record into SSL_ERROR_SSL: libcoap
// then ends an established session. Every libcoap loop goes through here.
int process_io(coap_context_t* context, std::uint32_t timeout_ms);
// The two halves of coap_io_process with epoll, for a loop that must look at the ready sockets
// before libcoap reads them (the proxy's RehandshakeGuard), on an empty error queue as above:
// prepare runs libcoap's due timers and triggered async requests and arms its timerfd; do_io
// reads and writes exactly the sockets `events` names, one datagram per readable endpoint.
void prepare_io(coap_context_t* context);
void do_io(coap_context_t* context, epoll_event* events, std::size_t count);
// The same within one coap_io_process, which reads for several sessions at once (a client context
// with many devices): a session's DTLS event comes after libcoap read that session's errors, and
// they must not reach the next session. First thing in every libcoap event handler.
void event_seen();
// The session's end will send no close_notify: its peer is gone, and another may use its address.
void end_quietly(coap_session_t* session);

// Shared by the blocking and the asynchronous coaps clients:
// an unsigned option's value (nullopt when absent);
std::optional<std::uint32_t> uint_option(const coap_pdu_t* pdu, coap_option_num_t number);
// what a NACK means, for error messages;
const char* nack_reason(coap_nack_reason_t reason);
// the error of a request cut short by the end of its session, naming the libcoap event
// (a DTLS error or alert, close_notify, the session failing or closing);
std::string session_ended_during_request(coap_event_t event);
// the trust anchors of a client context (RFC 9148 3: an explicit TA database);
Result<void> set_root_cas(coap_context_t* context, const std::vector<Certificate>& trust_anchors);
// RFC 6125 name check of the server's leaf: an IP literal against iPAddress, else dNSName.
Result<void> check_server_name(const Certificate& leaf, const std::string& server_name);

}  // namespace estlab::coap
