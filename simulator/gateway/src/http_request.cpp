#include "estlab/gateway/http_request.hpp"

#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>

namespace estlab::gateway {

namespace http = boost::beast::http;

EstRequest est_request_from(http::request<http::string_body>&& message, const ClientContext& client) {
  EstRequest request;
  request.method = std::string(message.method_string());
  request.target = std::string(message.target());
  for (const auto& field : message) request.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  request.body = std::move(message.body());
  request.client = client;
  return request;
}

HttpRefusal http_refusal(const boost::beast::error_code& error, const Limits& limits) {
  if (error == http::error::body_limit)
    return {413, "request body larger than the limit of " + std::to_string(limits.max_body_bytes) + " bytes"};
  if (error == http::error::header_limit)
    return {431, "request header larger than the limit of " + std::to_string(limits.max_header_bytes) + " bytes"};
  return {400, "malformed HTTP request: " + error.message()};
}

ParsedHttpRequest parse_http_request(std::string_view bytes, const Limits& limits, const ClientContext& client) {
  http::request_parser<http::string_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
  parser.body_limit(limits.max_body_bytes);
  parser.eager(true);
  boost::beast::error_code error;
  std::size_t used = 0;
  while (used < bytes.size() && !parser.is_done()) {
    const std::size_t n = parser.put(boost::asio::buffer(bytes.data() + used, bytes.size() - used), error);
    if (error == http::error::need_more) break;
    if (error) return {std::nullopt, http_refusal(error, limits)};
    if (n == 0) break;
    used += n;
  }
  if (!parser.is_done()) {
    // The server would wait for the rest until its read deadline; a complete buffer has no rest.
    parser.put_eof(error);
    if (error || !parser.is_done()) return {std::nullopt, http_refusal(error ? error : make_error_code(http::error::partial_message), limits)};
  }
  return {est_request_from(parser.release(), client), {}};
}

}  // namespace estlab::gateway
