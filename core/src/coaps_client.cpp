#include "estlab/core/coaps_client.hpp"

#include "coap_blockwise.hpp"

#include <cbor.h>
#include <netdb.h>
#include <unistd.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "estlab/core/coap_handles.hpp"
#include "estlab/core/ossl.hpp"

namespace estlab {

namespace coap {

coap_dtls_pki_t pki_setup(bool verify_peer, coap_dtls_security_setup_t tls_setup, void* arg) {
  coap_dtls_pki_t pki{};
  pki.version = COAP_DTLS_PKI_SETUP_VERSION;
  pki.verify_peer_cert = verify_peer ? 1 : 0;
  pki.check_common_ca = 0;
  pki.allow_self_signed = 0;
  pki.cert_chain_validation = 1;
  pki.cert_chain_verify_depth = 8;
  pki.additional_tls_setup_call_back = tls_setup;
  pki.cn_call_back_arg = arg;
  return pki;
}

void set_pem_identity(coap_dtls_pki_t& pki, const std::string& certificate_pem, const std::string& key_pem) {
  pki.pki_key.key_type = COAP_PKI_KEY_PEM_BUF;
  auto& buf = pki.pki_key.key.pem_buf;
  buf.public_cert = reinterpret_cast<const std::uint8_t*>(certificate_pem.c_str());
  buf.public_cert_len = certificate_pem.size() + 1;  // libcoap wants the NUL counted
  buf.private_key = reinterpret_cast<const std::uint8_t*>(key_pem.c_str());
  buf.private_key_len = key_pem.size() + 1;
}

Result<void> add_client_chain(coap_session_t* session, const std::vector<Certificate>& chain) {
  if (chain.empty()) return {};
  coap_tls_library_t library = COAP_TLS_LIBRARY_NOTLS;
  auto* ssl = static_cast<SSL*>(coap_session_get_tls(session, &library));
  if (ssl == nullptr || library != COAP_TLS_LIBRARY_OPENSSL)
    return make_error(ErrorCode::unsupported, "libcoap's DTLS session has no OpenSSL SSL to send the certificate chain with");
  for (const auto& certificate : chain)
    if (SSL_add1_chain_cert(ssl, certificate.native()) != 1)
      return make_error(ErrorCode::internal, "cannot add '" + certificate.subject().to_string() + "' to the DTLS certificate chain");
  return {};
}

void ensure_started() {
  static std::once_flag once;
  std::call_once(once, [] {
    coap_startup();
    // libcoap logs to stderr; keep it to errors unless ESTLAB_COAP_LOG asks for more (0..7, syslog levels).
    int level = LOG_ERR;
    if (const char* env = std::getenv("ESTLAB_COAP_LOG")) level = std::clamp(std::atoi(env), 0, 7);
    coap_set_log_level(static_cast<coap_log_t>(level));
    coap_dtls_set_log_level(level);
  });
}

}  // namespace coap

namespace {

struct CborDeleter {
  void operator()(cbor_item_t* item) const noexcept { cbor_decref(&item); }
};
using CborItem = std::unique_ptr<cbor_item_t, CborDeleter>;

cbor_item_t* cbor_uint(std::uint64_t value) {
  // Preferred serialization (RFC 8949 4.2.1): the shortest form.
  if (value <= 0xff) return cbor_build_uint8(static_cast<std::uint8_t>(value));
  if (value <= 0xffff) return cbor_build_uint16(static_cast<std::uint16_t>(value));
  if (value <= 0xffffffff) return cbor_build_uint32(static_cast<std::uint32_t>(value));
  return cbor_build_uint64(value);
}

}  // namespace

// ---- codec ------------------------------------------------------------------------------------

std::optional<std::string_view> media_type_of_format(std::uint16_t content_format) {
  switch (content_format) {
    case coap_formats::server_generated_key: return media_types::server_generated_key;
    case coap_formats::certs_only: return media_types::certs_only;
    case coap_formats::pkcs8: return media_types::pkcs8;
    case coap_formats::csrattrs: return media_types::csrattrs;
    case coap_formats::pkcs10: return media_types::pkcs10;
    case coap_formats::pkix_cert: return std::string_view("application/pkix-cert");
    case coap_formats::multipart_core: return std::string_view("application/multipart-core");
    default: return std::nullopt;
  }
}

std::optional<std::uint16_t> format_of_media_type(const MediaType& media_type) {
  if (media_type.same_type(media_types::pkcs7_mime)) {
    auto smime = media_type.param("smime-type");
    if (!smime || media_type_matches(media_type, media_types::certs_only)) return coap_formats::certs_only;
    if (media_type_matches(media_type, media_types::server_generated_key)) return coap_formats::server_generated_key;
    return std::nullopt;
  }
  if (media_type.same_type(media_types::pkcs8)) return coap_formats::pkcs8;
  if (media_type.same_type(media_types::csrattrs)) return coap_formats::csrattrs;
  if (media_type.same_type(media_types::pkcs10)) return coap_formats::pkcs10;
  if (media_type.same_type("application/pkix-cert")) return coap_formats::pkix_cert;
  if (media_type.same_type("application/multipart-core")) return coap_formats::multipart_core;
  return std::nullopt;
}

std::optional<std::string_view> coaps_short_name(EstOperation operation) {
  switch (operation) {
    case EstOperation::cacerts: return "crts";
    case EstOperation::simpleenroll: return "sen";
    case EstOperation::simplereenroll: return "sren";
    case EstOperation::serverkeygen: return "skg";
    case EstOperation::csrattrs: return "att";
    case EstOperation::fullcmc: return std::nullopt;
  }
  return std::nullopt;
}

std::optional<EstOperation> parse_coaps_short_name(std::string_view name) {
  for (auto operation : all_est_operations)
    if (auto short_name = coaps_short_name(operation); short_name && *short_name == name) return operation;
  return std::nullopt;
}

std::optional<std::string> coaps_est_path(std::string_view label, EstOperation operation) {
  auto short_name = coaps_short_name(operation);
  if (!short_name) return std::nullopt;
  std::string path(coaps_est_root);
  if (!label.empty()) path += "/" + std::string(label);
  return path + "/" + std::string(*short_name);
}

std::optional<std::string> coaps_resource_type(EstOperation operation) {
  auto short_name = coaps_short_name(operation);
  if (!short_name) return std::nullopt;
  return "ace.est." + std::string(*short_name);
}

std::optional<std::uint16_t> coaps_request_format(EstOperation operation) {
  switch (operation) {
    case EstOperation::simpleenroll:
    case EstOperation::simplereenroll:
    case EstOperation::serverkeygen: return coap_formats::pkcs10;
    default: return std::nullopt;
  }
}

std::uint16_t coaps_response_format(EstOperation operation) {
  switch (operation) {
    case EstOperation::csrattrs: return coap_formats::csrattrs;
    case EstOperation::serverkeygen: return coap_formats::multipart_core;
    default: return coap_formats::certs_only;
  }
}

Bytes encode_multipart_core(const std::vector<MultipartCorePart>& parts) {
  CborItem array(cbor_new_definite_array(parts.size() * 2));
  for (const auto& part : parts) {
    cbor_array_push(array.get(), cbor_move(cbor_uint(part.content_format)));
    cbor_array_push(array.get(), cbor_move(cbor_build_bytestring(part.data.data(), part.data.size())));
  }
  unsigned char* buffer = nullptr;
  std::size_t buffer_size = 0;
  const std::size_t length = cbor_serialize_alloc(array.get(), &buffer, &buffer_size);
  Bytes out(buffer, buffer + length);
  std::free(buffer);  // allocated by libcbor with malloc
  return out;
}

Result<std::vector<MultipartCorePart>> decode_multipart_core(ByteView cbor, std::size_t max_parts) {
  cbor_load_result loaded{};
  CborItem item(cbor_load(cbor.data(), cbor.size(), &loaded));
  if (!item || loaded.error.code != CBOR_ERR_NONE)
    return make_error(ErrorCode::invalid_input, "multipart-core: not CBOR (error at offset " +
                                                    std::to_string(loaded.error.position) + ")");
  if (loaded.read != cbor.size())
    return make_error(ErrorCode::invalid_input, "multipart-core: " + std::to_string(cbor.size() - loaded.read) +
                                                    " bytes after the CBOR array");
  if (!cbor_isa_array(item.get()) || !cbor_array_is_definite(item.get()))
    return make_error(ErrorCode::invalid_input, "multipart-core: not a definite-length CBOR array");
  const std::size_t size = cbor_array_size(item.get());
  if (size % 2 != 0) return make_error(ErrorCode::invalid_input, "multipart-core: odd number of items (" + std::to_string(size) + ")");
  if (size / 2 > max_parts) return make_error(ErrorCode::limit_exceeded, "multipart-core: more than " + std::to_string(max_parts) + " parts");
  std::vector<MultipartCorePart> parts;
  cbor_item_t** items = cbor_array_handle(item.get());
  for (std::size_t i = 0; i < size; i += 2) {
    MultipartCorePart part;
    if (!cbor_isa_uint(items[i]) || cbor_get_int(items[i]) > 0xffff)
      return make_error(ErrorCode::invalid_input, "multipart-core: item " + std::to_string(i) + " is not a Content-Format (uint < 65536)");
    part.content_format = static_cast<std::uint16_t>(cbor_get_int(items[i]));
    if (!cbor_isa_bytestring(items[i + 1]) || !cbor_bytestring_is_definite(items[i + 1]))
      return make_error(ErrorCode::invalid_input, "multipart-core: item " + std::to_string(i + 1) + " is not a definite byte string");
    const unsigned char* data = cbor_bytestring_handle(items[i + 1]);
    part.data.assign(data, data + cbor_bytestring_length(items[i + 1]));
    parts.push_back(std::move(part));
  }
  return parts;
}

std::string CoapCode::to_string() const {
  char text[8];
  std::snprintf(text, sizeof text, "%d.%02d", code_class(), detail());
  return text;
}

// ---- client -----------------------------------------------------------------------------------

namespace {

enum class Handshake { pending, connected, failed };

}  // namespace

std::optional<std::uint32_t> coap::uint_option(const coap_pdu_t* pdu, coap_option_num_t number) {
  coap_opt_iterator_t iterator;
  coap_opt_t* option = coap_check_option(pdu, number, &iterator);
  if (option == nullptr) return std::nullopt;
  return coap_decode_var_bytes(coap_opt_value(option), coap_opt_length(option));
}

const char* coap::nack_reason(coap_nack_reason_t reason) {
  switch (reason) {
    case COAP_NACK_TOO_MANY_RETRIES: return "no answer after the retransmissions";
    case COAP_NACK_NOT_DELIVERABLE: return "not deliverable";
    case COAP_NACK_RST: return "the server answered with a Reset";
    case COAP_NACK_TLS_FAILED: return "DTLS failed";
    case COAP_NACK_ICMP_ISSUE: return "ICMP error (nothing listening?)";
  }
  return "negative acknowledgement";
}

Result<coap_address_t> coap::any_udp(int family, std::uint16_t port) {
  return resolve_udp(family == AF_INET6 ? "::" : "0.0.0.0", port);
}

int coap::process_io(coap_context_t* context, std::uint32_t timeout_ms) {
  ERR_clear_error();
  return coap_io_process(context, timeout_ms);
}

void coap::prepare_io(coap_context_t* context) {
  ERR_clear_error();
  coap_tick_t now = 0;
  coap_ticks(&now);
  coap_io_prepare_epoll(context, now);  // its timerfd wakes the caller's poll: the timeout is not needed
}

void coap::do_io(coap_context_t* context, epoll_event* events, std::size_t count) {
  ERR_clear_error();
  coap_io_do_epoll(context, events, count);
}

void coap::event_seen() { ERR_clear_error(); }

void coap::end_quietly(coap_session_t* session) {
  coap_tls_library_t library = COAP_TLS_LIBRARY_NOTLS;
  if (void* tls = coap_session_get_tls(session, &library); tls != nullptr && library == COAP_TLS_LIBRARY_OPENSSL)
    SSL_set_quiet_shutdown(static_cast<SSL*>(tls), 1);
}

std::string coap::session_ended_during_request(coap_event_t event) {
  const char* said = event == COAP_EVENT_DTLS_ERROR      ? "DTLS error"
                     : event == COAP_EVENT_DTLS_CLOSED   ? "DTLS closed"
                     : event == COAP_EVENT_SESSION_FAILED ? "session failed"
                                                          : "session closed";
  return std::string("DTLS session closed during the request (libcoap: ") + said + ")";
}

Result<void> coap::set_root_cas(coap_context_t* context, const std::vector<Certificate>& trust_anchors) {
  if (trust_anchors.empty()) return make_error(ErrorCode::invalid_input, "no trust anchors to authenticate the server with (RFC 9148 3)");
  // libcoap 4.3's OpenSSL client takes its trust anchors only from a file, read at once.
  char path[] = "/tmp/estlab-coaps-anchors-XXXXXX";
  const int fd = ::mkstemp(path);
  if (fd < 0) return make_error(ErrorCode::io, "cannot create a temporary trust-anchor file");
  std::string pem;
  for (const auto& anchor : trust_anchors) pem += anchor.pem();
  const bool written = ::write(fd, pem.data(), pem.size()) == static_cast<ssize_t>(pem.size());
  ::close(fd);
  const bool loaded = written && coap_context_set_pki_root_cas(context, path, nullptr);
  ::unlink(path);
  if (!loaded) return make_error(ErrorCode::internal, "libcoap refused the trust anchors");
  return {};
}

Result<void> coap::check_server_name(const Certificate& leaf, const std::string& server_name) {
  // RFC 6125 on the server's leaf: an IP literal against iPAddress, else dNSName.
  X509* x509 = leaf.native();
  const bool matches = X509_check_ip_asc(x509, server_name.c_str(), 0) == 1 ||
                       X509_check_host(x509, server_name.c_str(), server_name.size(), 0, nullptr) == 1;
  if (!matches)
    return make_error(ErrorCode::verify_failed, "the server certificate '" + leaf.subject().to_string() + "' does not name " + server_name);
  return {};
}

Result<coap_address_t> coap::resolve_udp(const std::string& host, std::uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0 || found == nullptr)
    return make_error(ErrorCode::io, "cannot resolve " + host + ": " + gai_strerror(rc));
  coap_address_t address;
  coap_address_init(&address);
  std::memcpy(&address.addr, found->ai_addr, std::min<std::size_t>(found->ai_addrlen, sizeof address.addr));
  address.size = static_cast<socklen_t>(found->ai_addrlen);
  freeaddrinfo(found);
  return address;
}

struct CoapsConnection::Impl {
  CoapsClientOptions options;
  // Declared first so it is destroyed last: sessions are released before their context.
  coap::Context context;
  coap::Session session;
  std::string certificate_pem;
  std::string key_pem;
  std::string sni;
  coap_dtls_pki_t pki{};
  TlsConnectionInfo tls;
  bool extended_master_secret = false;

  Handshake handshake = Handshake::pending;
  std::string handshake_error;

  bool waiting = false;
  std::string expected_token;  // the token of the message in flight
  std::optional<coap::BlockAnswer> received;  // the answer to the message in flight
  std::optional<Error> failure;

  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  // Releasing the session fires its close event into on_event, which writes the members below:
  // release it here, while they are alive, not in member order after they are gone (LeakSanitizer
  // caught handshake_error assigned after its destruction).
  ~Impl() { session.reset(); }

  static Impl* of(coap_session_t* session) {
    return static_cast<Impl*>(coap_session_get_app_data(session));
  }

  static int on_event(coap_session_t* session, const coap_event_t event) noexcept {
    coap::event_seen();
    Impl* self = of(session);
    if (self == nullptr) return 0;
    switch (event) {
      case COAP_EVENT_DTLS_CONNECTED:
        if (self->handshake == Handshake::pending) self->handshake = Handshake::connected;
        break;
      case COAP_EVENT_DTLS_ERROR:
      case COAP_EVENT_DTLS_CLOSED:
      case COAP_EVENT_SESSION_FAILED:
      case COAP_EVENT_SESSION_CLOSED:
        if (self->handshake == Handshake::pending) {
          self->handshake = Handshake::failed;
          self->handshake_error = event == COAP_EVENT_DTLS_ERROR ? "DTLS handshake failed" : "DTLS session closed";
        } else if (self->waiting) {
          self->failure = make_error(ErrorCode::io, coap::session_ended_during_request(event));
          self->waiting = false;
        }
        break;
      default: break;
    }
    return 0;
  }

  // Blocks are handled by send() (coap_blockwise.hpp says why), not by libcoap.
  static coap_response_t on_response(coap_session_t* session, const coap_pdu_t*, const coap_pdu_t* received,
                                     const coap_mid_t) noexcept {
    Impl* self = of(session);
    if (self == nullptr || !self->waiting) return COAP_RESPONSE_OK;
    try {
      if (coap::token_of(received) != self->expected_token) return COAP_RESPONSE_OK;  // a late answer to an earlier message
      self->received = coap::BlockAnswer::read(received);
    } catch (const std::exception& e) {
      self->failure = make_error(ErrorCode::internal, std::string("reading the response: ") + e.what());
    }
    self->waiting = false;
    return COAP_RESPONSE_OK;
  }

  static void on_nack(coap_session_t* session, const coap_pdu_t*, const coap_nack_reason_t reason, const coap_mid_t) noexcept {
    Impl* self = of(session);
    if (self == nullptr || !self->waiting) return;
    self->failure = make_error(reason == COAP_NACK_TOO_MANY_RETRIES ? ErrorCode::timeout : ErrorCode::io, coap::nack_reason(reason));
    self->waiting = false;
  }

  // Drives libcoap until done() or the deadline; false on timeout.
  template <typename Done>
  bool run_until(std::chrono::steady_clock::time_point deadline, Done done) {
    while (!done()) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return false;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
      if (coap::process_io(context.get(), static_cast<std::uint32_t>(std::clamp<long long>(left, 1, 100))) < 0) return false;
    }
    return true;
  }
};

CoapsConnection::CoapsConnection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CoapsConnection::CoapsConnection(CoapsConnection&&) noexcept = default;
CoapsConnection& CoapsConnection::operator=(CoapsConnection&&) noexcept = default;
CoapsConnection::~CoapsConnection() = default;

Result<CoapsConnection> CoapsConnection::connect(const CoapsClientOptions& options) {
  coap::ensure_started();
  if (!coap_dtls_is_supported()) return make_error(ErrorCode::unsupported, "libcoap was built without DTLS support");
  if (options.block_szx > 6) return make_error(ErrorCode::invalid_input, "block_szx must be 0..6");
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->context.reset(coap_new_context(nullptr));
  if (!impl->context) return make_error(ErrorCode::internal, "coap_new_context failed");
  // No libcoap block mode: send() does Block1 and Block2 itself (see on_response).
  coap_register_response_handler(impl->context.get(), &Impl::on_response);
  coap_register_nack_handler(impl->context.get(), &Impl::on_nack);
  coap_register_event_handler(impl->context.get(), &Impl::on_event);

  if (options.verify_server) {
    if (auto set = coap::set_root_cas(impl->context.get(), options.trust_anchors); !set.ok()) return set.error();
  }
  coap_dtls_pki_t& pki = impl->pki;
  pki = coap::pki_setup(options.verify_server, nullptr, nullptr);
  if (!options.server_name.empty()) {
    impl->sni = options.server_name;
    pki.client_sni = impl->sni.data();
  }
  if (options.identity) {
    impl->certificate_pem = options.identity->certificate.pem();
    impl->key_pem = options.identity->key.pkcs8_pem();
    coap::set_pem_identity(pki, impl->certificate_pem, impl->key_pem);
  }

  auto server = coap::resolve_udp(options.host, options.port);
  if (!server.ok()) return server.error();

  std::optional<coap_address_t> local;
  if (options.local_port != 0) {
    auto any = coap::any_udp(server->addr.sa.sa_family, options.local_port);
    if (!any.ok()) return any.error();
    local = *any;
  }
  ERR_clear_error();  // libcoap asks SSL_get_error after SSL_connect: see coap::process_io
  impl->session.reset(coap_new_client_session_pki(impl->context.get(), local ? &*local : nullptr, &*server, COAP_PROTO_DTLS, &pki));
  if (!impl->session) return make_error(ErrorCode::io, "cannot start a DTLS session to " + options.host + ":" + std::to_string(options.port));
  coap_session_set_app_data(impl->session.get(), impl.get());  // callbacks find their connection here
  if (options.identity)
    if (auto added = coap::add_client_chain(impl->session.get(), options.identity->chain); !added.ok()) return added.error();
  coap_session_set_max_retransmit(impl->session.get(), coap::kDtlsHandshakeRetransmissions);
  // The handshake starts with the session; wait for it so a failure is reported as such.
  const auto deadline = std::chrono::steady_clock::now() + options.handshake_timeout;
  Impl* self = impl.get();
  if (!self->run_until(deadline, [self] {
        return self->handshake != Handshake::pending ||
               coap_session_get_state(self->session.get()) == COAP_SESSION_STATE_ESTABLISHED;
      }))
    return make_error(ErrorCode::timeout, "DTLS handshake with " + options.host + ":" + std::to_string(options.port) +
                                              " timed out after " + std::to_string(options.handshake_timeout.count()) + " ms");
  if (self->handshake == Handshake::failed)
    return make_error(ErrorCode::verify_failed, self->handshake_error + " with " + options.host + ":" + std::to_string(options.port));
  coap_session_set_max_retransmit(self->session.get(), coap::kCoapMaxRetransmit);
  coap_tls_library_t library;
  if (auto* ssl = static_cast<SSL*>(coap_session_get_tls(self->session.get(), &library)); ssl && library == COAP_TLS_LIBRARY_OPENSSL) {
    self->tls = describe_tls_connection(ssl, false);
    self->extended_master_secret = SSL_get_extms_support(ssl) == 1;
  }
  // RFC 6125 name check on the server's leaf: an IP literal against iPAddress, else dNSName.
  if (options.verify_server && !options.server_name.empty()) {
    if (self->tls.peer_chain.empty()) return make_error(ErrorCode::verify_failed, "the server sent no certificate");
    if (auto named = coap::check_server_name(self->tls.peer_chain.front(), options.server_name); !named.ok()) return named.error();
  }
  return CoapsConnection(std::move(impl));
}

Result<CoapResponse> CoapsConnection::send(const CoapRequest& request) {
  Impl& impl = *impl_;
  if (!impl.session) return make_error(ErrorCode::io, "the coaps connection is closed");
  const unsigned szx = request.block_szx.value_or(impl.options.block_szx);
  if (szx > 6) return make_error(ErrorCode::invalid_input, "block_szx must be 0..6");
  if (request.uri_host && (request.uri_host->empty() || request.uri_host->size() > 255))
    return make_error(ErrorCode::invalid_input, "Uri-Host must be 1 to 255 bytes (RFC 7252 5.10)");
  const auto deadline = std::chrono::steady_clock::now() + impl.options.request_timeout;
  coap::BlockwiseTransfer transfer(request, szx, impl.options.max_response_body);
  for (;;) {
    auto pdu = coap::build_message(impl.session.get(), request, transfer.message(), impl.expected_token);
    if (!pdu.ok()) return pdu.error();
    impl.received.reset();
    impl.failure.reset();
    impl.waiting = true;
    // coap_send takes the PDU, also when it fails.
    ERR_clear_error();  // and after SSL_write
    if (coap_send(impl.session.get(), pdu->release()) == COAP_INVALID_MID) {
      impl.waiting = false;
      return make_error(ErrorCode::io, "coap_send failed");
    }
    Impl* self = &impl;
    const bool finished = impl.run_until(deadline, [self] { return !self->waiting; });
    impl.waiting = false;
    if (!finished) {
      // A late answer must not be taken for the next request's: the connection is done.
      close();
      return make_error(ErrorCode::timeout, "no complete answer to " + request.path + " within " +
                                                std::to_string(impl.options.request_timeout.count()) + " ms");
    }
    if (impl.failure) return *impl.failure;
    if (!impl.received) return make_error(ErrorCode::internal, "no response recorded");
    if (transfer.take(std::move(*impl.received))) return transfer.result();
  }
}

Result<CoapResponse> CoapsConnection::discover(std::string_view query) {
  CoapRequest request;
  request.path = "/.well-known/core";
  request.query = std::string(query);
  return send(request);
}

Result<CoapResponse> CoapsConnection::cacerts(std::string_view label) {
  CoapRequest request;
  request.path = *coaps_est_path(label, EstOperation::cacerts);
  return send(request);
}

Result<CoapResponse> CoapsConnection::enroll(ByteView csr_der, bool reenroll, std::string_view label) {
  CoapRequest request;
  request.method = CoapMethod::post;
  request.path = *coaps_est_path(label, reenroll ? EstOperation::simplereenroll : EstOperation::simpleenroll);
  request.content_format = coap_formats::pkcs10;
  request.payload.assign(csr_der.begin(), csr_der.end());
  return send(request);
}

Result<CoapResponse> CoapsConnection::serverkeygen(ByteView csr_der, std::string_view label) {
  CoapRequest request;
  request.method = CoapMethod::post;
  request.path = *coaps_est_path(label, EstOperation::serverkeygen);
  request.content_format = coap_formats::pkcs10;
  request.payload.assign(csr_der.begin(), csr_der.end());
  return send(request);
}

Result<CoapResponse> CoapsConnection::csrattrs(std::string_view label) {
  CoapRequest request;
  request.path = *coaps_est_path(label, EstOperation::csrattrs);
  return send(request);
}

Result<DtlsHandshakeResult> dtls_handshake(const DtlsHandshakeOptions& options) {
  ossl::ErrorQueueGuard guard;
  ossl::SslCtx ctx(SSL_CTX_new(DTLS_client_method()));
  if (!ctx) return ossl::error(ErrorCode::internal, "SSL_CTX_new(DTLS)");
  using Version = DtlsHandshakeOptions::Version;
  if (options.version != Version::any) {
    const int version = options.version == Version::dtls1_0 ? DTLS1_VERSION : DTLS1_2_VERSION;
    if (SSL_CTX_set_min_proto_version(ctx.get(), version) != 1 || SSL_CTX_set_max_proto_version(ctx.get(), version) != 1)
      return ossl::error(ErrorCode::unsupported, "this OpenSSL cannot offer that DTLS version");
    if (version == DTLS1_VERSION) SSL_CTX_set_security_level(ctx.get(), 0);
  }
  if (!options.ciphers.empty() && SSL_CTX_set_cipher_list(ctx.get(), options.ciphers.c_str()) != 1)
    return ossl::error(ErrorCode::invalid_input, "OpenSSL knows none of the ciphers '" + options.ciphers + "'");
  if (!options.groups.empty() && SSL_CTX_set1_groups_list(ctx.get(), options.groups.c_str()) != 1)
    return ossl::error(ErrorCode::invalid_input, "OpenSSL knows none of the groups '" + options.groups + "'");
  if (options.identity)
    if (auto used = use_tls_identity(ctx.get(), *options.identity); !used.ok()) return used.error();
  if (options.verify_server) {
    if (options.trust_anchors.empty())
      return make_error(ErrorCode::invalid_input, "no trust anchors to authenticate the server with (RFC 9148 3)");
    if (auto added = add_trust_anchors(ctx.get(), options.trust_anchors); !added.ok()) return added.error();
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  }

  addrinfo hints{};
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(options.host.c_str(), std::to_string(options.port).c_str(), &hints, &found) != 0 || found == nullptr)
    return make_error(ErrorCode::io, "cannot resolve " + options.host);
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> address(found, &freeaddrinfo);
  const int fd = ::socket(found->ai_family, SOCK_DGRAM, 0);
  if (fd < 0) return make_error(ErrorCode::io, "cannot open a UDP socket");
  if (options.local_port != 0) {
    auto local = coap::any_udp(found->ai_family, options.local_port);
    const int reuse = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof reuse);
    if (!local.ok() || ::bind(fd, &local->addr.sa, local->size) != 0) {
      ::close(fd);
      return make_error(ErrorCode::io, "cannot send from udp port " + std::to_string(options.local_port) + " (in use?)");
    }
  }
  BIO* bio = BIO_new_dgram(fd, BIO_CLOSE);  // owns the socket from here
  if (bio == nullptr) {
    ::close(fd);
    return ossl::error(ErrorCode::internal, "BIO_new_dgram");
  }
  ossl::Ssl ssl(SSL_new(ctx.get()));
  if (!ssl) {
    BIO_free(bio);
    return ossl::error(ErrorCode::internal, "SSL_new");
  }
  SSL_set_bio(ssl.get(), bio, bio);  // the SSL owns the BIO
  if (::connect(fd, found->ai_addr, found->ai_addrlen) != 0)
    return make_error(ErrorCode::io, "cannot reach udp " + options.host + ":" + std::to_string(options.port));
  BIO_ctrl(bio, BIO_CTRL_DGRAM_SET_CONNECTED, 0, found->ai_addr);
  // Short reads, so the deadline and DTLS retransmissions are both served by the loop below.
  timeval tick{0, 50'000};
  BIO_ctrl(bio, BIO_CTRL_DGRAM_SET_RECV_TIMEOUT, 0, &tick);
  if (!options.server_name.empty()) SSL_set_tlsext_host_name(ssl.get(), options.server_name.c_str());

  const auto deadline = std::chrono::steady_clock::now() + options.timeout;
  for (;;) {
    const int r = SSL_connect(ssl.get());
    if (r == 1) break;
    const int error = SSL_get_error(ssl.get(), r);
    if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE)
      return ossl::error(ErrorCode::verify_failed, "DTLS handshake refused");
    if (std::chrono::steady_clock::now() >= deadline)
      return make_error(ErrorCode::timeout, "DTLS handshake with " + options.host + ":" + std::to_string(options.port) +
                                                " timed out after " + std::to_string(options.timeout.count()) + " ms");
    DTLSv1_handle_timeout(ssl.get());
  }
  DtlsHandshakeResult result;
  result.version = SSL_get_version(ssl.get());
  result.cipher = SSL_get_cipher_name(ssl.get());
  result.extended_master_secret = SSL_get_extms_support(ssl.get()) == 1;
  result.peer_chain = describe_tls_connection(ssl.get(), false).peer_chain;
  if (options.close_notify) SSL_shutdown(ssl.get());  // no answer awaited
  return result;
}

const TlsConnectionInfo& CoapsConnection::tls() const { return impl_->tls; }
bool CoapsConnection::extended_master_secret() const { return impl_->extended_master_secret; }

void CoapsConnection::close() {
  if (!impl_) return;
  impl_->session.reset();
}

std::uint16_t CoapsConnection::local_port() const {
  if (!impl_ || !impl_->session) return 0;
  return coap_address_get_port(coap_session_get_addr_local(impl_->session.get()));
}

void CoapsConnection::abandon() {
  if (!impl_ || !impl_->session) return;
  coap::end_quietly(impl_->session.get());  // the server keeps its session
  impl_->session.reset();
}

}  // namespace estlab
