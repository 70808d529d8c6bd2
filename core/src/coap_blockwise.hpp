// What both coaps clients (coaps_client.cpp, async_coaps.cpp) share to carry one request through
// Block1 and Block2 (RFC 7959) themselves, without libcoap's block mode: libcoap 4.3.1 drops a
// separate response that comes in Block2 blocks (it tracks Block2 only for a request still in its
// retransmission queue), and a client must take one (9148-4.7-a). Private to core.
#pragma once

#include <coap3/coap.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "estlab/core/coap_handles.hpp"
#include "estlab/core/coaps_client.hpp"

namespace estlab::coap {

// One CON message of a request: the request's own options, then these.
struct BlockMessage {
  std::optional<std::uint32_t> block1, block2, size1;
  bool with_format = true;  // Content-Format goes with the request body, not with Block2 follow-ups
  ByteView payload;
};

// What came back for one message.
struct BlockAnswer {
  CoapCode code;
  std::optional<std::uint16_t> content_format;
  std::optional<std::uint32_t> max_age, block1, block2, size2;
  bool separate = false;  // a CON response after an empty ACK (RFC 7252 5.2.2)
  Bytes payload;

  static BlockAnswer read(const coap_pdu_t* received);
};

// The message as a CON PDU with a new token (returned in `token`). Errors name what failed.
Result<Pdu> build_message(coap_session_t* session, const CoapRequest& request, const BlockMessage& message, std::string& token);

std::string token_of(const coap_pdu_t* pdu);

// One request through Block1 (every block but the last answered 2.31; the server may ask for
// smaller blocks, and the transfer goes on from the same byte offset: FB-40) and Block2 (the next
// block asked for at the size the server chose, until M is clear). message() is what to send now;
// take() its answer, true when the exchange is over and result() holds the response or an error.
class BlockwiseTransfer {
 public:
  // `szx`: the client's block size (0..6); the request must outlive the transfer.
  BlockwiseTransfer(const CoapRequest& request, unsigned szx, std::size_t max_response_body);

  BlockMessage message() const;
  bool take(BlockAnswer answer);
  Result<CoapResponse> result() const;

 private:
  bool finish(Result<CoapResponse> outcome);
  bool after_block(std::optional<std::uint32_t> block2);

  enum class Phase { single, block1, block2 } phase_;
  const CoapRequest& request_;
  std::size_t max_response_body_;
  std::optional<std::uint32_t> preferred_block2_;  // RFC 7959 2.4, when not the largest
  unsigned block1_szx_;
  std::size_t offset_ = 0;  // Block1: the first byte of the block in flight
  unsigned block2_szx_ = 0;
  CoapResponse response_;
  std::optional<Result<CoapResponse>> outcome_;
};

}  // namespace estlab::coap
