// Just enough of the DTLS 1.2 record layer (RFC 6347 4.1, 4.2.2) for a relay to find ClientHellos,
// tell whole ones from fragments, split one in two and keep the epoch-0 sequence numbers in order,
// and for a server to answer a ClientHello with a HelloVerifyRequest (RFC 6347 4.2.1).
// Nothing here decrypts or validates: bytes that are not plaintext DTLS 1.2 records are left alone.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "estlab/core/bytes.hpp"

namespace estlab::network {

struct DtlsRecord {
  std::uint8_t content_type = 0;  // 22 = handshake
  std::uint16_t version = 0;      // 0xfefd = DTLS 1.2
  std::uint16_t epoch = 0;
  std::uint64_t sequence = 0;     // 48 bits
  Bytes fragment;

  Bytes encode() const;
};

// The records of one datagram; nullopt when the datagram is not a whole run of DTLS records.
std::optional<std::vector<DtlsRecord>> parse_dtls_records(ByteView datagram);

// An epoch-0 handshake record carrying (a fragment of) a ClientHello.
struct ClientHelloFragment {
  std::uint32_t message_length = 0;
  std::uint32_t fragment_offset = 0;
  std::uint32_t fragment_length = 0;
  bool whole() const { return fragment_offset == 0 && fragment_length == message_length; }
  // Known only from the first fragment: a ClientHello answering a HelloVerifyRequest carries the
  // server's cookie (RFC 6347 4.2.1).
  std::optional<bool> has_cookie;
  std::optional<Bytes> cookie;  // when known: empty in a first ClientHello
  // The client's random: the same in the ClientHello answering a HelloVerifyRequest, and in
  // every retransmission, as in the first (RFC 6347 4.2.1); a new handshake has a new one.
  std::optional<Bytes> random;
};
std::optional<ClientHelloFragment> client_hello_fragment(const DtlsRecord& record);

// A whole ClientHello record as two records, each with one half of the message (RFC 6347 4.2.3
// fragments): sequence numbers `record.sequence` and `record.sequence + 1`.
std::vector<DtlsRecord> split_client_hello(const DtlsRecord& record);

// The HelloVerifyRequest answering `client_hello` with `cookie` (RFC 6347 4.2.1): DTLS 1.0 as the
// record and server version, the ClientHello's record sequence number, message_seq 0, as
// OpenSSL's DTLSv1_listen writes it. The cookie is at most 255 bytes.
DtlsRecord hello_verify_request(const DtlsRecord& client_hello, ByteView cookie);

}  // namespace estlab::network
