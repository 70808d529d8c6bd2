#include "estlab/network/dtls_records.hpp"

#include <algorithm>

namespace estlab::network {

namespace {

constexpr std::size_t kRecordHeader = 13;     // type, version, epoch, sequence (6), length
constexpr std::size_t kHandshakeHeader = 12;  // type, length (3), message_seq, offset (3), fragment length (3)
constexpr std::uint8_t kHandshake = 22;
constexpr std::uint8_t kClientHello = 1;
constexpr std::uint8_t kHelloVerifyRequest = 3;
constexpr std::uint16_t kDtls1_0 = 0xfeff;

std::uint64_t read_be(ByteView bytes, std::size_t at, std::size_t size) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < size; ++i) value = (value << 8) | bytes[at + i];
  return value;
}

void write_be(Bytes& out, std::uint64_t value, std::size_t size) {
  for (std::size_t i = size; i-- > 0;) out.push_back(static_cast<std::uint8_t>(value >> (8 * i)));
}

}  // namespace

Bytes DtlsRecord::encode() const {
  Bytes out;
  out.reserve(kRecordHeader + fragment.size());
  out.push_back(content_type);
  write_be(out, version, 2);
  write_be(out, epoch, 2);
  write_be(out, sequence, 6);
  write_be(out, fragment.size(), 2);
  out.insert(out.end(), fragment.begin(), fragment.end());
  return out;
}

std::optional<std::vector<DtlsRecord>> parse_dtls_records(ByteView datagram) {
  std::vector<DtlsRecord> records;
  std::size_t at = 0;
  while (at < datagram.size()) {
    if (datagram.size() - at < kRecordHeader) return std::nullopt;
    DtlsRecord record;
    record.content_type = datagram[at];
    // DTLS 1.3's unified header (first bits 001) and anything that is not a record type.
    if (record.content_type < 20 || record.content_type > 25) return std::nullopt;
    record.version = static_cast<std::uint16_t>(read_be(datagram, at + 1, 2));
    if ((record.version >> 8) != 0xfe) return std::nullopt;
    record.epoch = static_cast<std::uint16_t>(read_be(datagram, at + 3, 2));
    record.sequence = read_be(datagram, at + 5, 6);
    const std::size_t length = read_be(datagram, at + 11, 2);
    at += kRecordHeader;
    if (datagram.size() - at < length) return std::nullopt;
    record.fragment.assign(datagram.begin() + static_cast<std::ptrdiff_t>(at), datagram.begin() + static_cast<std::ptrdiff_t>(at + length));
    at += length;
    records.push_back(std::move(record));
  }
  return records;
}

std::optional<ClientHelloFragment> client_hello_fragment(const DtlsRecord& record) {
  const Bytes& f = record.fragment;
  if (record.content_type != kHandshake || record.epoch != 0 || f.size() < kHandshakeHeader || f[0] != kClientHello)
    return std::nullopt;
  ClientHelloFragment hello;
  hello.message_length = static_cast<std::uint32_t>(read_be(f, 1, 3));
  hello.fragment_offset = static_cast<std::uint32_t>(read_be(f, 6, 3));
  hello.fragment_length = static_cast<std::uint32_t>(read_be(f, 9, 3));
  if (hello.fragment_length > f.size() - kHandshakeHeader) return std::nullopt;
  if (hello.fragment_offset == 0) {
    // client_version (2), random (32), session_id <0..32>, cookie <0..255>
    const std::size_t session_id_at = kHandshakeHeader + 2 + 32;
    if (f.size() > session_id_at) {
      hello.random = Bytes(f.begin() + kHandshakeHeader + 2, f.begin() + static_cast<std::ptrdiff_t>(session_id_at));
      const std::size_t cookie_at = session_id_at + 1 + f[session_id_at];
      if (cookie_at < kHandshakeHeader + hello.fragment_length) {
        hello.has_cookie = f[cookie_at] != 0;
        const std::size_t cookie_end = cookie_at + 1 + f[cookie_at];
        if (cookie_end <= kHandshakeHeader + hello.fragment_length)
          hello.cookie = Bytes(f.begin() + static_cast<std::ptrdiff_t>(cookie_at + 1), f.begin() + static_cast<std::ptrdiff_t>(cookie_end));
      }
    }
  }
  return hello;
}

std::vector<DtlsRecord> split_client_hello(const DtlsRecord& record) {
  auto hello = client_hello_fragment(record);
  if (!hello || !hello->whole() || hello->message_length < 2) return {record};
  const ByteView header(record.fragment.data(), kHandshakeHeader);
  const ByteView body(record.fragment.data() + kHandshakeHeader, hello->message_length);
  const std::size_t half = body.size() / 2;
  std::vector<DtlsRecord> parts;
  for (const auto& [offset, length] : {std::pair<std::size_t, std::size_t>{0, half}, {half, body.size() - half}}) {
    DtlsRecord part = record;
    part.sequence = record.sequence + parts.size();
    part.fragment.assign(header.begin(), header.begin() + 6);  // type, length, message_seq
    write_be(part.fragment, offset, 3);
    write_be(part.fragment, length, 3);
    part.fragment.insert(part.fragment.end(), body.begin() + static_cast<std::ptrdiff_t>(offset),
                         body.begin() + static_cast<std::ptrdiff_t>(offset + length));
    parts.push_back(std::move(part));
  }
  return parts;
}

DtlsRecord hello_verify_request(const DtlsRecord& client_hello, ByteView cookie) {
  const std::size_t cookie_size = std::min<std::size_t>(cookie.size(), 255);
  const std::size_t body = 2 + 1 + cookie_size;  // server_version, cookie<0..2^8-1>
  DtlsRecord record;
  record.content_type = kHandshake;
  record.version = kDtls1_0;
  record.epoch = 0;
  record.sequence = client_hello.sequence;
  Bytes& f = record.fragment;
  f.push_back(kHelloVerifyRequest);
  write_be(f, body, 3);
  write_be(f, 0, 2);     // message_seq
  write_be(f, 0, 3);     // fragment_offset
  write_be(f, body, 3);  // fragment_length: never fragmented
  write_be(f, kDtls1_0, 2);
  f.push_back(static_cast<std::uint8_t>(cookie_size));
  f.insert(f.end(), cookie.begin(), cookie.begin() + static_cast<std::ptrdiff_t>(cookie_size));
  return record;
}

}  // namespace estlab::network
