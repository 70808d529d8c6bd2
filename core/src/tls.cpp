#include "estlab/core/tls.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>

#include "estlab/core/pkcs12.hpp"

namespace estlab {

const char* to_string(TlsVersion version) {
  switch (version) {
    case TlsVersion::tls1_0: return "TLSv1";
    case TlsVersion::tls1_1: return "TLSv1.1";
    case TlsVersion::tls1_2: return "TLSv1.2";
    case TlsVersion::tls1_3: return "TLSv1.3";
  }
  return "TLS?";
}

std::optional<TlsVersion> parse_tls_version(std::string_view text) {
  std::string t;
  for (char c : text) t.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  if (t.rfind("tlsv", 0) == 0) t = t.substr(4);
  else if (t.rfind("tls", 0) == 0) t = t.substr(3);
  if (t == "1" || t == "1.0") return TlsVersion::tls1_0;
  if (t == "1.1") return TlsVersion::tls1_1;
  if (t == "1.2") return TlsVersion::tls1_2;
  if (t == "1.3") return TlsVersion::tls1_3;
  return std::nullopt;
}

int to_openssl(TlsVersion version) {
  switch (version) {
    case TlsVersion::tls1_0: return TLS1_VERSION;
    case TlsVersion::tls1_1: return TLS1_1_VERSION;
    case TlsVersion::tls1_2: return TLS1_2_VERSION;
    case TlsVersion::tls1_3: return TLS1_3_VERSION;
  }
  return TLS1_2_VERSION;
}

std::optional<TlsVersion> from_openssl(int version) {
  switch (version) {
    case TLS1_VERSION: return TlsVersion::tls1_0;
    case TLS1_1_VERSION: return TlsVersion::tls1_1;
    case TLS1_2_VERSION: return TlsVersion::tls1_2;
    case TLS1_3_VERSION: return TlsVersion::tls1_3;
    default: return std::nullopt;
  }
}

Result<TlsIdentity> TlsIdentity::load(const std::filesystem::path& certificate_file, const std::filesystem::path& key_file) {
  auto cert_bytes = read_file_bytes(certificate_file.string());
  if (!cert_bytes.ok()) return cert_bytes.error();
  auto certs = Certificate::parse_all(*cert_bytes);
  if (!certs.ok()) return certs.error().within(certificate_file.string());
  if (certs->empty()) return make_error(ErrorCode::invalid_input, certificate_file.string() + ": no certificate");
  auto key_bytes = read_file_bytes(key_file.string());
  if (!key_bytes.ok()) return key_bytes.error();
  auto key = PrivateKey::parse(*key_bytes);
  if (!key.ok()) return key.error().within(key_file.string());
  if (!(key->public_key() == certs->front().public_key()))
    return make_error(ErrorCode::invalid_input,
                      key_file.string() + ": the key does not belong to the certificate in " + certificate_file.string());
  TlsIdentity identity{std::move(key).value(), certs->front(), {}};
  identity.chain.assign(certs->begin() + 1, certs->end());
  return identity;
}

Result<TlsIdentity> TlsIdentity::load_pkcs12(const std::filesystem::path& file, const std::string& password) {
  auto bytes = read_file_bytes(file.string());
  if (!bytes.ok()) return bytes.error();
  auto token = parse_pkcs12(*bytes, password);
  if (!token.ok()) return token.error().within(file.string());
  return TlsIdentity{std::move(token->key), std::move(token->certificate), std::move(token->chain)};
}

ChannelBindings channel_bindings(SSL* ssl, bool is_server) {
  ChannelBindings bindings;
  if (SSL_version(ssl) >= TLS1_3_VERSION) {
    // RFC 5929 tls-unique is undefined for TLS 1.3 (RFC 9266 section 1).
  } else {
    // The first Finished of the latest handshake: the client's for a full handshake, the
    // server's for a resumed one (RFC 5929 3.1).
    const bool own_first = is_server ? SSL_session_reused(ssl) != 0 : SSL_session_reused(ssl) == 0;
    unsigned char finished[EVP_MAX_MD_SIZE];
    const std::size_t length = own_first ? SSL_get_finished(ssl, finished, sizeof(finished))
                                         : SSL_get_peer_finished(ssl, finished, sizeof(finished));
    if (length > 0 && length <= sizeof(finished)) bindings.tls_unique = Bytes(finished, finished + length);
    const std::size_t own = SSL_get_finished(ssl, finished, sizeof(finished));
    if (own > 0 && own <= sizeof(finished)) (is_server ? bindings.server_finished : bindings.client_finished) = Bytes(finished, finished + own);
    const std::size_t peer = SSL_get_peer_finished(ssl, finished, sizeof(finished));
    if (peer > 0 && peer <= sizeof(finished)) (is_server ? bindings.client_finished : bindings.server_finished) = Bytes(finished, finished + peer);
  }
  static constexpr char kLabel[] = "EXPORTER-Channel-Binding";
  Bytes exporter(32);
  if (SSL_export_keying_material(ssl, exporter.data(), exporter.size(), kLabel, sizeof(kLabel) - 1, nullptr, 0, 1) == 1)
    bindings.tls_exporter = std::move(exporter);
  ERR_clear_error();
  return bindings;
}

TlsConnectionInfo describe_tls_connection(SSL* ssl, bool is_server) {
  TlsConnectionInfo info;
  info.version = from_openssl(SSL_version(ssl)).value_or(TlsVersion::tls1_2);
  if (const char* name = SSL_get_cipher_name(ssl)) info.cipher = name;
  info.resumed = SSL_session_reused(ssl) != 0;
  info.secure_renegotiation = SSL_get_secure_renegotiation_support(ssl) == 1;
  // The server side's peer chain excludes the leaf (OpenSSL quirk); add it back first.
  if (is_server) {
    if (X509* leaf = SSL_get0_peer_certificate(ssl)) info.peer_chain.push_back(Certificate::borrow_shared(leaf));
  }
  if (STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl)) {
    for (int i = 0; i < sk_X509_num(chain); ++i) info.peer_chain.push_back(Certificate::borrow_shared(sk_X509_value(chain, i)));
  }
  info.bindings = channel_bindings(ssl, is_server);
  return info;
}

Result<void> set_tls_versions(SSL_CTX* ctx, TlsVersion min_version, TlsVersion max_version) {
  if (static_cast<int>(min_version) > static_cast<int>(max_version))
    return make_error(ErrorCode::invalid_input, std::string("TLS minimum version ") + to_string(min_version) +
                                                    " is above the maximum " + to_string(max_version));
  if (SSL_CTX_set_min_proto_version(ctx, to_openssl(min_version)) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, to_openssl(max_version)) != 1)
    return ossl::error(ErrorCode::internal, "setting TLS versions");
  // OpenSSL 3 refuses TLS 1.0/1.1 at security level 1; a client that asks for them on purpose
  // (to test that a server refuses them, RFC 8996) needs level 0.
  if (min_version < TlsVersion::tls1_2) SSL_CTX_set_security_level(ctx, 0);
  return {};
}

Result<void> use_tls_identity(SSL_CTX* ctx, const TlsIdentity& identity) {
  ossl::ErrorQueueGuard guard;
  if (SSL_CTX_use_certificate(ctx, identity.certificate.native()) != 1)
    return ossl::error(ErrorCode::invalid_input, "TLS certificate refused");
  if (SSL_CTX_use_PrivateKey(ctx, identity.key.native()) != 1)
    return ossl::error(ErrorCode::invalid_input, "TLS private key refused");
  if (SSL_CTX_check_private_key(ctx) != 1)
    return ossl::error(ErrorCode::invalid_input, "TLS private key does not match the certificate");
  SSL_CTX_clear_chain_certs(ctx);
  for (const auto& cert : identity.chain) {
    if (SSL_CTX_add1_chain_cert(ctx, cert.native()) != 1) return ossl::error(ErrorCode::internal, "adding a chain certificate");
  }
  return {};
}

Result<void> add_trust_anchors(SSL_CTX* ctx, const std::vector<Certificate>& anchors) {
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  for (const auto& anchor : anchors) {
    if (X509_STORE_add_cert(store, anchor.native()) != 1) {
      // A duplicate anchor is harmless; anything else is not.
      const unsigned long err = ERR_peek_last_error();
      if (ERR_GET_REASON(err) == X509_R_CERT_ALREADY_IN_HASH_TABLE) {
        ERR_clear_error();
        continue;
      }
      return ossl::error(ErrorCode::internal, "adding trust anchor " + anchor.subject().to_string());
    }
  }
  return {};
}

namespace {

// Offering PSK suites needs a PSK; a probe that offers only PSK suites (7030-3.3.3-a) gives a
// fixed identity and key the server cannot know.
unsigned int probe_psk(SSL*, const char*, char* identity, unsigned int max_identity, unsigned char* psk, unsigned int max_psk) {
  static constexpr char kIdentity[] = "estlab-probe";
  if (max_identity < sizeof(kIdentity) || max_psk < 16) return 0;
  std::memcpy(identity, kIdentity, sizeof(kIdentity));
  std::memset(psk, 0x5a, 16);
  return 16;
}

std::string this_openssl() { return std::string("this OpenSSL (") + OpenSSL_version(OPENSSL_VERSION) + ")"; }

}  // namespace

Result<void> offer_cipher_suites(SSL_CTX* ctx, const std::string& tls12_ciphers, const std::string& tls13_suites) {
  if (!tls12_ciphers.empty() && SSL_CTX_set_cipher_list(ctx, tls12_ciphers.c_str()) != 1) {
    ERR_clear_error();
    return make_error(ErrorCode::unsupported, this_openssl() + " has no cipher suite matching '" + tls12_ciphers + "'");
  }
  if (!tls13_suites.empty() && SSL_CTX_set_ciphersuites(ctx, tls13_suites.c_str()) != 1) {
    ERR_clear_error();
    return make_error(ErrorCode::unsupported, this_openssl() + " has no TLS 1.3 suite matching '" + tls13_suites + "'");
  }
  if (tls12_ciphers.find("PSK") != std::string::npos) SSL_CTX_set_psk_client_callback(ctx, probe_psk);
  return {};
}

std::string local_suite_problem(const std::string& tls12_ciphers, const std::string& tls13_suites, TlsVersion min_version,
                                TlsVersion max_version) {
  if (tls12_ciphers.empty() && tls13_suites.empty()) return {};
  ossl::SslCtx ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return this_openssl() + " cannot make a TLS context";
  if (auto r = set_tls_versions(ctx.get(), min_version, max_version); !r.ok()) return r.error().message;
  if (auto r = offer_cipher_suites(ctx.get(), tls12_ciphers, tls13_suites); !r.ok()) return r.error().message;
  // What a ClientHello would carry: the lists filtered by the versions, the security level and PSK.
  ossl::Ssl ssl(SSL_new(ctx.get()));
  STACK_OF(SSL_CIPHER)* offered = ssl ? SSL_get1_supported_ciphers(ssl.get()) : nullptr;
  const int count = offered ? sk_SSL_CIPHER_num(offered) : 0;
  sk_SSL_CIPHER_free(offered);
  ERR_clear_error();
  if (count > 0) return {};
  return this_openssl() + " can offer none of '" + tls12_ciphers + (tls12_ciphers.empty() || tls13_suites.empty() ? "" : "' / '") + tls13_suites +
         "' at " + to_string(min_version) + (min_version == max_version ? std::string() : std::string("-") + to_string(max_version));
}

namespace {

struct KeylogSink {
  std::mutex mutex;
  std::ofstream out;
  std::filesystem::path path;
};

KeylogSink& keylog_sink() {
  static KeylogSink sink;
  return sink;
}

void keylog_line(const SSL*, const char* line) {
  auto& sink = keylog_sink();
  std::lock_guard lock(sink.mutex);
  if (sink.out) {
    sink.out << line << '\n';
    sink.out.flush();
  }
}

}  // namespace

Result<void> enable_tls_keylog(SSL_CTX* ctx, const std::filesystem::path& path) {
  std::filesystem::path target = path;
  if (target.empty()) {
    const char* env = std::getenv("SSLKEYLOGFILE");
    if (env == nullptr || *env == '\0') return {};
    target = env;
  }
  auto& sink = keylog_sink();
  {
    std::lock_guard lock(sink.mutex);
    if (!sink.out.is_open() || sink.path != target) {
      sink.out.close();
      sink.out.clear();
      sink.out.open(target, std::ios::app);
      if (!sink.out) return make_error(ErrorCode::io, "cannot open TLS key log file " + target.string());
      sink.path = target;
    }
  }
  SSL_CTX_set_keylog_callback(ctx, keylog_line);
  return {};
}

}  // namespace estlab
