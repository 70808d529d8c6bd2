// HTTP bytes to the service's EstRequest. The HTTPS server and the gateway fuzzer (tests/fuzz)
// share these, so what is fuzzed is exactly what the network feeds the service.
#pragma once

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "estlab/gateway/config.hpp"
#include "estlab/gateway/service.hpp"

namespace estlab::gateway {

EstRequest est_request_from(boost::beast::http::request<boost::beast::http::string_body>&& message, const ClientContext& client);

// How the server answers a request it could not parse: 413 over the body limit, 431 over the
// header limit, 400 otherwise; the reason names the limit or the parse error.
struct HttpRefusal {
  int status = 400;
  std::string reason;
};
HttpRefusal http_refusal(const boost::beast::error_code& error, const Limits& limits);

// One request from a complete buffer under the server's limits: the request, or the refusal.
struct ParsedHttpRequest {
  std::optional<EstRequest> request;
  HttpRefusal refusal;
};
ParsedHttpRequest parse_http_request(std::string_view bytes, const Limits& limits, const ClientContext& client);

}  // namespace estlab::gateway
