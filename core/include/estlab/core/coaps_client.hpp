// EST-coaps (RFC 9148): the codec shared by the client and the proxy (short paths, Content-Formats,
// resource types, application/multipart-core) and a blocking coaps client on libcoap 3 with its
// OpenSSL DTLS backend: DTLS 1.2 with certificates, a deadline on the handshake and on every
// request, Block1/Block2 through libcoap's block helpers. Bodies are binary DER (RFC 9148 4.3).
// Each connection owns its own libcoap context, so connections on different threads share nothing.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "estlab/core/bytes.hpp"
#include "estlab/core/certificate.hpp"
#include "estlab/core/est.hpp"
#include "estlab/core/result.hpp"
#include "estlab/core/tls.hpp"

namespace estlab {

// ---- Content-Formats (RFC 9148 8.1, RFC 7252 12.3) --------------------------------------------

namespace coap_formats {
inline constexpr std::uint16_t text_plain = 0;
inline constexpr std::uint16_t link_format = 40;
inline constexpr std::uint16_t multipart_core = 62;            // RFC 8710
inline constexpr std::uint16_t server_generated_key = 280;     // pkcs7-mime; smime-type=server-generated-key
inline constexpr std::uint16_t certs_only = 281;               // pkcs7-mime; smime-type=certs-only
inline constexpr std::uint16_t pkcs8 = 284;
inline constexpr std::uint16_t csrattrs = 285;
inline constexpr std::uint16_t pkcs10 = 286;
inline constexpr std::uint16_t pkix_cert = 287;
}  // namespace coap_formats

// The HTTP media type of a Content-Format (RFC 9148 Table 5); nullopt for one EST does not use.
std::optional<std::string_view> media_type_of_format(std::uint16_t content_format);
// The Content-Format of an EST media type (parameters compared as media_type_matches does).
std::optional<std::uint16_t> format_of_media_type(const MediaType& media_type);

// ---- Paths and discovery (RFC 9148 4.1, Table 1) ----------------------------------------------

inline constexpr std::string_view coaps_est_root = "/.well-known/est";

// "crts", "sen", "sren", "skg", "att"; nullopt for fullcmc, which has no short name.
std::optional<std::string_view> coaps_short_name(EstOperation operation);
std::optional<EstOperation> parse_coaps_short_name(std::string_view name);  // exact match
// "/.well-known/est/crts" or "/.well-known/est/<label>/crts"; nullopt for fullcmc.
std::optional<std::string> coaps_est_path(std::string_view label, EstOperation operation);
// "ace.est.crts", ...; nullopt for fullcmc.
std::optional<std::string> coaps_resource_type(EstOperation operation);
// What RFC 9148 4.3 expects: the request Content-Format (nullopt for GET) and the success one.
std::optional<std::uint16_t> coaps_request_format(EstOperation operation);
std::uint16_t coaps_response_format(EstOperation operation);

// ---- application/multipart-core (RFC 8710): a CBOR array [CF, bstr, CF, bstr, ...] ------------

struct MultipartCorePart {
  std::uint16_t content_format = 0;
  Bytes data;
};
Bytes encode_multipart_core(const std::vector<MultipartCorePart>& parts);
// Errors: not CBOR, not a definite array of an even number of items, a CF that is not an unsigned
// integer below 65536, a value that is not a byte string (RFC 8710 allows null; EST does not).
Result<std::vector<MultipartCorePart>> decode_multipart_core(ByteView cbor, std::size_t max_parts = 16);

// ---- Messages ---------------------------------------------------------------------------------

// A CoAP response code as class.detail: 0x45 = 2.05.
struct CoapCode {
  std::uint8_t value = 0;
  static constexpr CoapCode make(int code_class, int detail) {
    return CoapCode{static_cast<std::uint8_t>((code_class << 5) | detail)};
  }
  int code_class() const { return value >> 5; }
  int detail() const { return value & 0x1f; }
  std::string to_string() const;  // "2.05"
  bool operator==(const CoapCode&) const = default;
};

enum class CoapMethod { get = 1, post = 2, put = 3, del = 4 };

struct CoapRequest {
  CoapMethod method = CoapMethod::get;
  std::string path = "/";            // absolute, without query; segments percent-free
  std::string query;                 // "rt=ace.est*" (one Uri-Query per '&'-separated item)
  std::optional<std::uint16_t> content_format;
  std::optional<std::uint16_t> accept;
  Bytes payload;
  // Sends `payload` as this one Block1 block (RFC 7959) instead of letting libcoap split the body:
  // for tests of truncated, out-of-order or malformed block-wise transfers.
  struct Block1Fragment {
    std::uint32_t num = 0;
    bool more = true;
    unsigned szx = 2;  // 0..7; 7 is reserved and must be refused
    std::optional<std::uint32_t> size1;  // the total size claimed (RFC 7959 4), which a server may believe
  };
  std::optional<Block1Fragment> block1_fragment;
  // This request's Block1/Block2 size as SZX (0..6) instead of the connection's block_szx.
  std::optional<unsigned> block_szx;
  // Uri-Host (RFC 7252 5.10.1): left out, it defaults to the destination's address; virtual hosts
  // need it (RFC 9148 4.4).
  std::optional<std::string> uri_host;
  // Size2 (RFC 7959 4): 0 asks the server for the total size of the representation.
  std::optional<std::uint32_t> size2;
};

struct CoapResponse {
  CoapCode code;
  std::optional<std::uint16_t> content_format;
  std::optional<std::uint32_t> max_age;
  // The SZX of the last Block2 block (the size the server chose, 16 << szx bytes); nullopt when
  // the answer came in one piece.
  std::optional<unsigned> block2_szx;
  // The answer came as a separate CON response after an empty ACK (RFC 7252 5.2.2, 9148-4.7-a),
  // not piggybacked on the ACK.
  bool separate = false;
  std::optional<std::uint32_t> size2;  // the Size2 option of the answer (the total size), when sent
  Bytes payload;  // the whole body, Block2 reassembled

  std::string payload_text() const { return std::string(payload.begin(), payload.end()); }
};

// ---- The client -------------------------------------------------------------------------------

struct CoapsClientOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 5684;
  std::optional<TlsIdentity> identity;      // the device certificate (RFC 9148 3: required by servers)
  std::vector<Certificate> trust_anchors;   // explicit TA database (RFC 9148 3)
  bool verify_server = true;
  std::string server_name;                  // SNI and RFC 6125 name check; "" = no name check
  std::chrono::milliseconds handshake_timeout{5000};
  std::chrono::milliseconds request_timeout{15000};  // one request, every block included
  std::size_t max_response_body = 1u << 20;
  // Block size for Block1/Block2 as SZX: 16 << szx bytes (0..6); 6 = 1024.
  unsigned block_szx = 6;
  // The UDP port to send from (0 = any): a device back from the address of a session it lost
  // (RFC 6347 4.2.8), or one behind a NAT that keeps its mapping.
  std::uint16_t local_port = 0;
};

// ---- A DTLS handshake alone ---------------------------------------------------------------------

// libcoap 4.3's OpenSSL client applies no per-session TLS settings (its setup callback serves the
// server side), so a handshake with a restricted ClientHello (RFC 9148 3, RFC 8996) is made with
// OpenSSL directly on a UDP socket: it shows what the server accepts, and carries no CoAP.
struct DtlsHandshakeOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 5684;
  std::optional<TlsIdentity> identity;
  std::vector<Certificate> trust_anchors;
  bool verify_server = true;
  std::string server_name;  // SNI; "" = none
  // The one version offered. DTLS 1.0 also drops OpenSSL's security level to 0, or the ClientHello
  // of a refusal test could not be sent at all.
  enum class Version { any, dtls1_0, dtls1_2 };
  Version version = Version::any;
  std::string ciphers;  // OpenSSL cipher list ("ECDHE-ECDSA-AES128-CCM8"); "" = OpenSSL's default
  std::string groups;   // supported groups ("P-256"); "" = OpenSSL's default
  std::chrono::milliseconds timeout{5000};
  std::uint16_t local_port = 0;  // the UDP port to send from; 0 = any
  // false: the session is left without close_notify, as by a device that lost power, so the
  // server still holds it.
  bool close_notify = true;
};

struct DtlsHandshakeResult {
  std::string version;  // "DTLSv1.2"
  std::string cipher;   // OpenSSL's name
  bool extended_master_secret = false;  // RFC 7627 negotiated
  std::vector<Certificate> peer_chain;
};

// Errors: "DTLS handshake refused: <OpenSSL's reason>" (an alert), a timeout, a bad option.
Result<DtlsHandshakeResult> dtls_handshake(const DtlsHandshakeOptions& options);

class CoapsConnection {
 public:
  // DTLS handshake, bounded by handshake_timeout. Errors say what failed ("DTLS handshake failed",
  // "timed out after 5000 ms").
  static Result<CoapsConnection> connect(const CoapsClientOptions& options);

  CoapsConnection(CoapsConnection&&) noexcept;
  CoapsConnection& operator=(CoapsConnection&&) noexcept;
  ~CoapsConnection();

  // One confirmable request; waits for the whole response (every block) until request_timeout.
  Result<CoapResponse> send(const CoapRequest& request);

  // EST-coaps shortcuts. The label selects a CA (RFC 9148 4.1); "" = the default CA.
  Result<CoapResponse> discover(std::string_view query = "rt=ace.est*");
  Result<CoapResponse> cacerts(std::string_view label = "");
  Result<CoapResponse> enroll(ByteView csr_der, bool reenroll = false, std::string_view label = "");
  Result<CoapResponse> serverkeygen(ByteView csr_der, std::string_view label = "");
  Result<CoapResponse> csrattrs(std::string_view label = "");

  const TlsConnectionInfo& tls() const;
  bool extended_master_secret() const;  // RFC 7627, as negotiated in the handshake
  void close();
  // The UDP port this connection sends from (0 when closed).
  std::uint16_t local_port() const;
  // Ends the connection without close_notify, as a device that lost power: the server still holds
  // the session (RFC 6347 4.2.8 scenarios).
  void abandon();

 private:
  struct Impl;
  explicit CoapsConnection(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace estlab
