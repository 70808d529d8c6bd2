#include "transport.hpp"

#include <algorithm>

#include "estlab/core/est.hpp"

namespace estlab::conformance {

HttpResponse as_http(const CoapResponse& response) {
  HttpResponse http;
  http.status = response.code.code_class() * 100 + response.code.detail();
  http.reason = "CoAP " + response.code.to_string();
  if (response.max_age) http.headers.emplace_back("Max-Age", std::to_string(*response.max_age));
  const auto format = response.content_format;
  if (format) http.headers.emplace_back("Content-Format", std::to_string(*format));
  if (response.block2_szx) http.headers.emplace_back("Block2-Size", std::to_string(16u << std::min(*response.block2_szx, 7u)));
  if (response.separate) http.headers.emplace_back("CoAP-Separate", "empty ACK first");  // RFC 7252 5.2.2
  if (response.size2) http.headers.emplace_back("Size2", std::to_string(*response.size2));
  if (format && *format == coap_formats::multipart_core) {
    auto parts = decode_multipart_core(response.payload);
    if (parts.ok()) {
      std::vector<MimePart> mime;
      for (const auto& part : *parts)
        mime.push_back(make_est_part(media_type_of_format(part.content_format).value_or("application/octet-stream"), part.data));
      const std::array<std::uint8_t, 16> fixed{};
      const std::string boundary = make_boundary(fixed);
      http.headers.emplace_back("Content-Type", "multipart/mixed; boundary=" + boundary);
      http.body = make_multipart(mime, boundary);
      return http;
    }
  }
  if (format) {
    if (auto type = media_type_of_format(*format)) {
      http.headers.emplace_back("Content-Type", std::string(*type));
      if (*format != coap_formats::text_plain && *format != coap_formats::link_format) {
        http.body = encode_est_body(response.payload);
        return http;
      }
    }
  }
  http.body = response.payload_text();
  return http;
}


HttpsClientOptions TargetChannel::https_options(std::chrono::milliseconds timeout) const {
  HttpsClientOptions o;
  o.host = target_.host;
  o.port = target_.port;
  o.server_name = target_.server_name;
  o.trust_anchors = target_.trust_anchors;
  o.use_tls = !settings_.plain_http;
  if (settings_.tls == "any") {
    o.min_version = TlsVersion::tls1_2;
    o.max_version = TlsVersion::tls1_3;
  } else {
    o.min_version = o.max_version = *parse_tls_version(settings_.tls);
  }
  o.identity = settings_.identity;
  o.tls12_ciphers = settings_.ciphers;
  o.tls13_ciphersuites = settings_.ciphersuites;
  o.verify_server = settings_.verify_server;
  if (settings_.resume) o.resume_session = last_session_;
  o.connect_timeout = o.handshake_timeout = o.io_timeout = timeout;
  return o;
}

CoapsClientOptions TargetChannel::coaps_options(std::chrono::milliseconds timeout) const {
  CoapsClientOptions o = coaps_client_options(target_, settings_.identity, timeout);
  if (coaps_via_port_) {  // datagrams through the relay; the name checked stays the target's
    o.host = coaps_via_host_;
    o.port = coaps_via_port_;
  }
  return o;
}

void TargetChannel::close() {
  if (https_) {
    if (auto session = https_->session()) last_session_ = std::move(session);
    https_->close();
  }
  https_.reset();
  if (coaps_) coaps_->close();
  coaps_.reset();
}

std::string TargetChannel::open(const ChannelSettings& settings, std::chrono::milliseconds timeout) {
  std::uint16_t rejoin_port = 0;
  if (settings.rejoin && coaps_ && coaps_->local_port() != 0) {
    rejoin_port = coaps_->local_port();
    coaps_->abandon();
    coaps_.reset();
  }
  close();
  settings_ = settings;
  handshake_.reset();
  connect_failure_.clear();
  connect_failed_locally_ = false;
  requests_on_connection_ = 0;
  if (settings.resume && !coaps_transport_ && !last_session_) {
    connect_failed_locally_ = true;
    return connect_failure_ = "resume: no earlier TLS connection of this scenario left a session to offer";
  }
  if (settings.rejoin && rejoin_port == 0) {
    connect_failed_locally_ = true;
    return connect_failure_ = "rejoin: no open EST-coaps connection of this scenario to lose and come back after";
  }
  if (coaps_transport_ && (settings.dtls != "any" || !settings.ciphers.empty() || !settings.groups.empty())) {
    // A restricted ClientHello is a handshake of its own (libcoap cannot make one); requests after
    // it go on a new default connection.
    const CoapsClientOptions coaps = coaps_options(timeout);
    DtlsHandshakeOptions o;
    o.host = coaps.host;
    o.port = coaps.port;
    o.identity = coaps.identity;
    o.trust_anchors = coaps.trust_anchors;
    o.server_name = coaps.server_name;
    using Version = DtlsHandshakeOptions::Version;
    o.version = settings.dtls == "1.0" ? Version::dtls1_0 : settings.dtls == "1.2" ? Version::dtls1_2 : Version::any;
    o.ciphers = settings.ciphers;
    o.groups = settings.groups;
    o.timeout = timeout;
    auto shaken = dtls_handshake(o);
    if (shaken.ok()) handshake_ = *shaken;
    else connect_failure_ = shaken.error().message;
  } else if (coaps_transport_) {
    CoapsClientOptions options = coaps_options(timeout);
    options.local_port = rejoin_port;
    auto connected = CoapsConnection::connect(options);
    if (connected.ok()) coaps_ = std::move(connected).value();
    else connect_failure_ = connected.error().message;
  } else {
    auto connected = HttpsConnection::connect(https_options(timeout));
    if (connected.ok()) https_ = std::move(connected).value();
    else {
      connect_failure_ = connected.error().message;
      connect_failed_locally_ = connected.error().code == ErrorCode::unsupported;
    }
  }
  return connect_failure_;
}

Result<void> TargetChannel::ensure_https(std::chrono::milliseconds timeout) {
  if (https_ && https_->open()) return {};
  if (https_) {
    if (auto session = https_->session()) last_session_ = std::move(session);
    https_->close();
  }
  https_.reset();
  auto connected = HttpsConnection::connect(https_options(timeout));
  if (!connected.ok()) return connected.error();
  https_ = std::move(connected).value();
  requests_on_connection_ = 0;
  return {};
}

const TlsConnectionInfo* TargetChannel::tls_for_request(bool fresh, std::chrono::milliseconds timeout) {
  if (coaps_transport_ || settings_.plain_http) return nullptr;
  if (fresh) {
    close();
    connect_failure_.clear();
  }
  if (!connect_failure_.empty()) return nullptr;
  if (auto ready = ensure_https(timeout); !ready.ok()) {
    connect_failure_ = ready.error().message;
    return nullptr;
  }
  return &https_->tls();
}

Observation TargetChannel::send(const HttpRequest& request, bool fresh, std::chrono::milliseconds timeout, Exchange& exchange) {
  Observation observation;
  if (fresh) {
    close();
    connect_failure_.clear();
  }
  if (!connect_failure_.empty()) {
    observation.kind = Observation::Kind::refused_at_handshake;
    observation.failure = connect_failure_;
    return observation;
  }
  // A connection the server closed after its last answer (a 401 without "Connection: close", say)
  // is replaced by a new one once, as any HTTP client does with a stale persistent connection.
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (auto ready = ensure_https(timeout); !ready.ok()) {
      observation.kind = Observation::Kind::refused_at_handshake;
      observation.failure = ready.error().message;
      return observation;
    }
    const bool reused = requests_on_connection_ > 0;
    const auto started = std::chrono::steady_clock::now();
    auto response = https_->send(request);
    exchange.elapsed_ms = ms_since(started);
    ++requests_on_connection_;
    if (response.ok()) {
      observation.kind = Observation::Kind::response;
      observation.response = *response;
      if (!settings_.plain_http) observation.tls = https_->tls();
      if (!response->keep_alive) https_->close();
      return observation;
    }
    observation.kind = Observation::Kind::no_response;
    observation.failure = response.error().message;
    https_->close();
    if (response.error().code == ErrorCode::timeout) {
      timed_out_ = "step timed out waiting for an answer (" + response.error().message + ")";
      return observation;
    }
    if (!reused) return observation;
    exchange.request = "(the kept-alive connection had been closed by the server; sent again on a new connection)\n" + exchange.request;
  }
  return observation;
}

Observation TargetChannel::send(const CoapRequest& request, std::chrono::milliseconds timeout, Exchange& exchange) {
  Observation observation;
  if (!coaps_ && connect_failure_.empty()) {
    handshake_.reset();  // a handshake alone carries no requests: this one gets a connection
    auto connected = CoapsConnection::connect(coaps_options(timeout));
    if (connected.ok()) coaps_ = std::move(connected).value();
    else connect_failure_ = connected.error().message;
  }
  if (!coaps_) {
    observation.kind = Observation::Kind::refused_at_handshake;
    observation.failure = connect_failure_;
    return observation;
  }
  const auto started = std::chrono::steady_clock::now();
  auto response = coaps_->send(request);
  exchange.elapsed_ms = ms_since(started);
  if (!response.ok()) {
    observation.kind = Observation::Kind::no_response;
    observation.failure = response.error().message;
    if (response.error().code == ErrorCode::timeout) timed_out_ = "step timed out waiting for an answer (" + response.error().message + ")";
    coaps_.reset();
    return observation;
  }
  observation.response = as_http(*response);
  exchange.response = response->code.to_string() + (response->content_format ? " Content-Format: " + std::to_string(*response->content_format) : "") +
                      (response->block2_szx ? " Block2 size: " + std::to_string(16u << std::min(*response->block2_szx, 7u)) : "") +
                      (response->max_age ? " Max-Age: " + std::to_string(*response->max_age) : "") + "\n\n" + observation.response.body;
  return observation;
}

Observation TargetChannel::send_raw(std::string_view bytes, std::chrono::milliseconds timeout, Exchange& exchange) {
  Observation observation;
  if (auto ready = ensure_https(timeout); !ready.ok()) {
    observation.kind = Observation::Kind::refused_at_handshake;
    observation.failure = ready.error().message;
    return observation;
  }
  const auto started = std::chrono::steady_clock::now();
  auto response = https_->send_raw(bytes);
  exchange.elapsed_ms = ms_since(started);
  if (!response.ok()) {
    observation.kind = Observation::Kind::no_response;
    observation.failure = response.error().message;
    https_->close();
    return observation;
  }
  observation.response = *response;
  return observation;
}

const TlsConnectionInfo* TargetChannel::tls_info() const {
  if (coaps_transport_ || settings_.plain_http || !https_) return nullptr;
  return &https_->tls();
}

std::optional<bool> TargetChannel::extended_master_secret() const {
  if (coaps_) return coaps_->extended_master_secret();
  if (handshake_) return handshake_->extended_master_secret;
  return std::nullopt;
}

std::string TargetChannel::describe() const {
  if (coaps_transport_ && handshake_ && !coaps_)
    return "coaps " + handshake_->version + " " + handshake_->cipher + (handshake_->extended_master_secret ? " EMS" : " no-EMS") +
           " (handshake only)" + (settings_.as.empty() ? " anonymous" : " as " + settings_.as);
  std::string text = coaps_transport_             ? std::string("coaps DTLS 1.2")
                     : settings_.plain_http       ? std::string("http (no TLS)")
                     : https_ && https_->open()   ? std::string("https ") + to_string(https_->tls().version)
                                                  : std::string("https");
  return text + (settings_.as.empty() ? " anonymous" : " as " + settings_.as);
}

}  // namespace estlab::conformance
