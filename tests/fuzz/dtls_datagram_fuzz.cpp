// libFuzzer target for the datagrams the lab reads before any DTLS library does: the impairment
// relay's record layer (parse, ClientHello fragments, the split of FB-37, HelloVerifyRequest) and
// the CoAP proxy's RehandshakeGuard decision, which looks at every datagram a device sends.
//
// First byte: bit 0 the address has an established session; bit 1 the guard knows its handshake;
// bit 2 that handshake's cookie is the one in the input's ClientHello, bit 3 its random too.
// Besides crashes, a finding is a broken invariant: parsed records that do not encode back to the
// datagram, a split whose halves do not rebuild the ClientHello, a HelloVerifyRequest that does
// not parse, or a guard decision its own rules forbid.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>

#include "estlab/coap_proxy/rehandshake.hpp"
#include "estlab/network/dtls_records.hpp"

using namespace estlab;

namespace {

constexpr std::size_t kHandshakeHeader = 12;  // msg_type, length, message_seq, fragment offset and length

void require(bool holds) {
  if (!holds) std::abort();
}

void check_client_hello(const network::DtlsRecord& record, const network::ClientHelloFragment& hello) {
  require(hello.fragment_length <= record.fragment.size());
  if (hello.cookie) require(hello.cookie->size() <= 255 && hello.has_cookie == !hello.cookie->empty());
  if (hello.random) require(hello.random->size() == 32);

  const auto parts = network::split_client_hello(record);
  if (parts.size() == 2) {
    require(hello.whole());
    Bytes rebuilt;
    std::uint32_t next_offset = 0;
    for (std::size_t i = 0; i < parts.size(); ++i) {
      const auto part = network::client_hello_fragment(parts[i]);
      require(part.has_value() && part->message_length == hello.message_length && part->fragment_offset == next_offset);
      require(parts[i].sequence == record.sequence + i);
      next_offset += part->fragment_length;
      rebuilt.insert(rebuilt.end(), parts[i].fragment.begin() + kHandshakeHeader,
                     parts[i].fragment.begin() + kHandshakeHeader + part->fragment_length);
    }
    require(next_offset == hello.message_length);
    require(rebuilt == Bytes(record.fragment.begin() + kHandshakeHeader, record.fragment.begin() + kHandshakeHeader + hello.message_length));
  } else {
    require(parts.size() == 1 && parts[0].encode() == record.encode());
  }

  const ByteView cookie = hello.cookie ? ByteView(*hello.cookie) : ByteView(record.fragment);
  const auto answer = network::parse_dtls_records(network::hello_verify_request(record, cookie).encode());
  require(answer.has_value() && answer->size() == 1 && answer->front().sequence == record.sequence);
  require(network::client_hello_fragment(answer->front()) == std::nullopt);  // a HelloVerifyRequest
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t selector = data[0];
  const ByteView datagram(data + 1, size - 1);

  std::optional<network::ClientHelloFragment> first_hello;
  if (auto records = network::parse_dtls_records(datagram)) {
    Bytes encoded;
    for (const auto& record : *records) {
      const Bytes bytes = record.encode();
      encoded.insert(encoded.end(), bytes.begin(), bytes.end());
      if (auto hello = network::client_hello_fragment(record)) {
        check_client_hello(record, *hello);
        if (!first_hello && &record == &records->front()) first_hello = hello;
      }
    }
    require(encoded == Bytes(datagram.begin(), datagram.end()));
  }

  std::optional<coap_proxy::SessionHandshake> handshake;
  if (selector & 2) {
    handshake.emplace();
    handshake->cookie = Bytes(32, 0xc0);
    handshake->random = Bytes(32, 0x5a);
    if ((selector & 4) && first_hello && first_hello->cookie) handshake->cookie = *first_hello->cookie;
    if ((selector & 8) && first_hello && first_hello->random) handshake->random = *first_hello->random;
  }
  const bool established = selector & 1;
  const auto decision = coap_proxy::decide_client_hello(datagram, established, handshake);
  if (decision.action != coap_proxy::HelloAction::pass) {
    // Only a ClientHello of a new handshake on an established, known session is the guard's.
    require(established && handshake && decision.client_hello && decision.cookie && decision.random);
    require(*decision.random != handshake->random);
    if (decision.action == coap_proxy::HelloAction::answer_cookie) require(decision.cookie->empty());
    if (decision.action == coap_proxy::HelloAction::replace_session) require(*decision.cookie == handshake->cookie);
  }
  return 0;
}
