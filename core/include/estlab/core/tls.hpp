// TLS pieces shared by the gateway, the HTTPS client and the CoAP proxy's upstream side:
// protocol versions, identities, OpenSSL context setup, channel bindings (RFC 5929 tls-unique,
// RFC 9266 tls-exporter) and SSLKEYLOGFILE support.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "estlab/core/bytes.hpp"
#include "estlab/core/certificate.hpp"
#include "estlab/core/key.hpp"
#include "estlab/core/ossl.hpp"
#include "estlab/core/result.hpp"

namespace estlab {

enum class TlsVersion { tls1_0, tls1_1, tls1_2, tls1_3 };

const char* to_string(TlsVersion version);  // "TLSv1.2", OpenSSL's spelling
// Accepts "1.2", "tls1.2", "TLSv1.2" (any case).
std::optional<TlsVersion> parse_tls_version(std::string_view text);
int to_openssl(TlsVersion version);
std::optional<TlsVersion> from_openssl(int version);

// A certificate with its key and the chain sent after it in the handshake.
struct TlsIdentity {
  PrivateKey key;
  Certificate certificate;
  std::vector<Certificate> chain;  // intermediates, leaf excluded

  // PEM/DER certificate file (a chain file: leaf first), key file.
  static Result<TlsIdentity> load(const std::filesystem::path& certificate_file, const std::filesystem::path& key_file);
  // PKCS#12 token (the product's tlsToken form).
  static Result<TlsIdentity> load_pkcs12(const std::filesystem::path& file, const std::string& password);
};

// The channel-binding values RFC 7030 3.5 links a CSR to.
struct ChannelBindings {
  std::optional<Bytes> tls_unique;    // TLS 1.2 and earlier: first Finished of the latest handshake
  std::optional<Bytes> tls_exporter;  // RFC 9266: 32 bytes of "EXPORTER-Channel-Binding"
  // TLS 1.2 and earlier: both Finished messages of the latest handshake, so a test can offer the
  // one tls-unique does not name (the client's on a resumed session, RFC 5929 3.1).
  std::optional<Bytes> client_finished;
  std::optional<Bytes> server_finished;
};

// A TLS session a client can offer again to resume it (RFC 5246 7.3, RFC 8446 2.2); shared, freed
// with SSL_SESSION_free.
using TlsSession = std::shared_ptr<SSL_SESSION>;

// What one TLS connection negotiated, as seen from either end.
struct TlsConnectionInfo {
  TlsVersion version = TlsVersion::tls1_2;
  std::string cipher;
  bool resumed = false;
  bool secure_renegotiation = false;  // RFC 5746 renegotiation_info was exchanged (TLS 1.2 and earlier)
  int hello_requests = 0;             // HelloRequest messages the server sent after the handshake (client side)
  std::vector<Certificate> peer_chain;  // leaf first, as the peer sent it; empty when none
  ChannelBindings bindings;
};

// Reads everything above from an established connection.
TlsConnectionInfo describe_tls_connection(SSL* ssl, bool is_server);
ChannelBindings channel_bindings(SSL* ssl, bool is_server);

// Context setup. Each returns an error naming what OpenSSL refused.
Result<void> set_tls_versions(SSL_CTX* ctx, TlsVersion min_version, TlsVersion max_version);
Result<void> use_tls_identity(SSL_CTX* ctx, const TlsIdentity& identity);
Result<void> add_trust_anchors(SSL_CTX* ctx, const std::vector<Certificate>& anchors);
// The cipher suites a client offers: an OpenSSL cipher list for TLS <= 1.2 and TLS 1.3 suites ("" =
// OpenSSL's default for each). A list naming PSK suites comes with a probe identity and key no
// server knows. A list the local OpenSSL has no suite for is an `unsupported` error.
Result<void> offer_cipher_suites(SSL_CTX* ctx, const std::string& tls12_ciphers, const std::string& tls13_suites);
// Why this client cannot offer these suites at these versions (the local OpenSSL lacks them: EXPORT
// and DES are gone since 1.1), "" when it can. Planning and the HTTPS client say the same words.
std::string local_suite_problem(const std::string& tls12_ciphers, const std::string& tls13_suites, TlsVersion min_version,
                                TlsVersion max_version);

// SSLKEYLOGFILE (NSS key log format) so Wireshark can decrypt a capture. `path` empty means
// "take it from the SSLKEYLOGFILE environment variable, if set". Lines from every context that
// enabled it go to one append-only file, written under a lock.
Result<void> enable_tls_keylog(SSL_CTX* ctx, const std::filesystem::path& path = {});

}  // namespace estlab
