#include "coap_blockwise.hpp"

#include <algorithm>

namespace estlab::coap {

namespace {

std::uint32_t block_value(std::uint32_t num, bool more, unsigned szx) { return (num << 4) | (more ? 0x08u : 0u) | (szx & 0x07u); }

// The bytes of a block of size exponent `szx` (RFC 7959 2.2).
std::size_t block_bytes(unsigned szx) { return std::size_t{16} << szx; }

}  // namespace

BlockAnswer BlockAnswer::read(const coap_pdu_t* received) {
  BlockAnswer r;
  r.code = CoapCode{static_cast<std::uint8_t>(coap_pdu_get_code(received))};
  if (auto cf = uint_option(received, COAP_OPTION_CONTENT_FORMAT)) r.content_format = static_cast<std::uint16_t>(*cf);
  r.max_age = uint_option(received, COAP_OPTION_MAXAGE);
  r.block1 = uint_option(received, COAP_OPTION_BLOCK1);
  r.block2 = uint_option(received, COAP_OPTION_BLOCK2);
  r.separate = coap_pdu_get_type(received) == COAP_MESSAGE_CON;
  r.size2 = uint_option(received, COAP_OPTION_SIZE2);
  std::size_t length = 0;
  const std::uint8_t* data = nullptr;
  if (coap_get_data(received, &length, &data) && length > 0) r.payload.assign(data, data + length);
  return r;
}

std::string token_of(const coap_pdu_t* pdu) {
  const coap_bin_const_t token = coap_pdu_get_token(pdu);
  return std::string(reinterpret_cast<const char*>(token.s), token.length);
}

Result<Pdu> build_message(coap_session_t* session, const CoapRequest& request, const BlockMessage& message, std::string& token) {
  Pdu pdu(coap_new_pdu(COAP_MESSAGE_CON, static_cast<coap_pdu_code_t>(request.method), session));
  if (!pdu) return make_error(ErrorCode::internal, "coap_new_pdu failed");
  std::uint8_t token_bytes[8];
  std::size_t token_length = 0;
  coap_session_new_token(session, &token_length, token_bytes);
  coap_add_token(pdu.get(), token_length, token_bytes);
  token.assign(reinterpret_cast<const char*>(token_bytes), token_length);
  coap_optlist_t* raw = nullptr;
  auto add_segments = [&raw](const std::string& text, char separator, coap_option_num_t number) {
    for (std::size_t start = 0; start < text.size();) {
      const std::size_t end = std::min(text.find(separator, start), text.size());
      if (end > start) coap_insert_optlist(&raw, coap_new_optlist(number, end - start, reinterpret_cast<const std::uint8_t*>(text.data() + start)));
      start = end + 1;
    }
  };
  std::uint8_t buffer[4];
  auto add_uint = [&](coap_option_num_t number, std::uint32_t value) {
    coap_insert_optlist(&raw, coap_new_optlist(number, coap_encode_var_safe(buffer, sizeof buffer, value), buffer));
  };
  if (request.uri_host)
    coap_insert_optlist(&raw, coap_new_optlist(COAP_OPTION_URI_HOST, request.uri_host->size(),
                                               reinterpret_cast<const std::uint8_t*>(request.uri_host->data())));
  add_segments(request.path, '/', COAP_OPTION_URI_PATH);
  add_segments(request.query, '&', COAP_OPTION_URI_QUERY);
  if (request.content_format && message.with_format) add_uint(COAP_OPTION_CONTENT_FORMAT, *request.content_format);
  if (request.accept) add_uint(COAP_OPTION_ACCEPT, *request.accept);
  if (message.block1) add_uint(COAP_OPTION_BLOCK1, *message.block1);
  if (message.block2) add_uint(COAP_OPTION_BLOCK2, *message.block2);
  if (message.size1) add_uint(COAP_OPTION_SIZE1, *message.size1);
  if (request.size2) add_uint(COAP_OPTION_SIZE2, *request.size2);
  OptList options(raw);
  if (raw != nullptr && !coap_add_optlist_pdu(pdu.get(), &raw)) return make_error(ErrorCode::internal, "cannot add the request options");
  if (!message.payload.empty() && !coap_add_data(pdu.get(), message.payload.size(), message.payload.data()))
    return make_error(ErrorCode::internal, "cannot add the request body (larger than a datagram?)");
  return pdu;
}

BlockwiseTransfer::BlockwiseTransfer(const CoapRequest& request, unsigned szx, std::size_t max_response_body)
    : phase_(request.block1_fragment || request.payload.size() <= block_bytes(szx) ? Phase::single : Phase::block1),
      request_(request),
      max_response_body_(max_response_body),
      block1_szx_(szx) {
  if (szx < 6) preferred_block2_ = szx;
}

BlockMessage BlockwiseTransfer::message() const {
  const Bytes& body = request_.payload;
  BlockMessage m;
  switch (phase_) {
    case Phase::single:
      if (const auto& f = request_.block1_fragment) {
        m.block1 = block_value(f->num, f->more, f->szx);
        m.size1 = f->size1;
      } else {
        m.block2 = preferred_block2_;
      }
      m.payload = body;
      break;
    case Phase::block1: {
      const std::size_t size = block_bytes(block1_szx_);
      const bool more = offset_ + size < body.size();
      m.block1 = block_value(static_cast<std::uint32_t>(offset_ / size), more, block1_szx_);
      m.block2 = preferred_block2_;
      // Size1 (RFC 7959 4) on every block, as libcoap sends it: its server needs the total size.
      m.size1 = static_cast<std::uint32_t>(body.size());
      m.payload = ByteView(body.data() + offset_, std::min(size, body.size() - offset_));
      break;
    }
    case Phase::block2:
      m.block2 = block_value(static_cast<std::uint32_t>(response_.payload.size() >> (block2_szx_ + 4)), false, block2_szx_);
      m.with_format = false;
      break;
  }
  return m;
}

bool BlockwiseTransfer::finish(Result<CoapResponse> outcome) {
  outcome_ = std::move(outcome);
  return true;
}

Result<CoapResponse> BlockwiseTransfer::result() const {
  if (!outcome_) return make_error(ErrorCode::internal, "the block-wise exchange is not over");
  return *outcome_;
}

bool BlockwiseTransfer::take(BlockAnswer answer) {
  if (outcome_) return true;
  if (phase_ == Phase::block1) {
    const std::size_t size = block_bytes(block1_szx_);
    if (offset_ + size < request_.payload.size() && answer.code == CoapCode::make(2, 31)) {
      if (answer.block1 && (*answer.block1 & 0x07u) < block1_szx_) block1_szx_ = *answer.block1 & 0x07u;
      offset_ += size;
      return false;
    }
  }
  if (phase_ != Phase::block2) {  // the answer to the request (its last block)
    response_.code = answer.code;
    response_.content_format = answer.content_format;
    response_.max_age = answer.max_age;
    response_.separate = answer.separate;
    response_.size2 = answer.size2;
    response_.payload = std::move(answer.payload);
    return after_block(answer.block2);
  }
  // A later Block2 block: it must continue the same answer where the last one ended.
  const std::size_t next = response_.payload.size();
  if (answer.code != response_.code)
    return finish(make_error(ErrorCode::invalid_input, "a later Block2 block came with code " + answer.code.to_string() + " after " +
                                                           response_.code.to_string()));
  if (next + answer.payload.size() > max_response_body_)
    return finish(make_error(ErrorCode::limit_exceeded, "response body over the limit of " + std::to_string(max_response_body_) + " bytes"));
  response_.payload.insert(response_.payload.end(), answer.payload.begin(), answer.payload.end());
  if (!answer.block2) return finish(make_error(ErrorCode::invalid_input, "a later Block2 block came without its Block2 option"));
  if ((*answer.block2 >> 4) * block_bytes(*answer.block2 & 0x07u) != next)
    return finish(make_error(ErrorCode::invalid_input,
                             "the server answered Block2 block " + std::to_string(*answer.block2 >> 4) + " for offset " + std::to_string(next)));
  return after_block(answer.block2);
}

// After a block of the answer: done, or ask for the next block at the size the server chose.
bool BlockwiseTransfer::after_block(std::optional<std::uint32_t> block2) {
  if (block2) {
    const unsigned szx = *block2 & 0x07u;
    if (szx == 7) return finish(make_error(ErrorCode::invalid_input, "the server sent Block2 with the reserved SZX 7"));
    response_.block2_szx = std::max(response_.block2_szx.value_or(0), szx);
    if ((*block2 & 0x08u) != 0) {
      const std::size_t next = response_.payload.size();
      if (next % block_bytes(szx) != 0)
        return finish(make_error(ErrorCode::invalid_input, "Block2 blocks do not line up: " + std::to_string(next) +
                                                               " bytes so far, block size " + std::to_string(block_bytes(szx))));
      block2_szx_ = szx;
      phase_ = Phase::block2;
      return false;
    }
  }
  if (response_.payload.size() > max_response_body_)
    return finish(make_error(ErrorCode::limit_exceeded, "response body of " + std::to_string(response_.payload.size()) +
                                                            " bytes is over the limit of " + std::to_string(max_response_body_)));
  return finish(response_);
}

}  // namespace estlab::coap
