// The gateway's approver when est.properties names an identity manager (handler.<n>.idm.*,
// PG-IDM-2): each check is an HTTPS request over mutual TLS with the handler's PKCS#12 token, with
// deadlines on connect, handshake and I/O. An IDM that cannot be reached is an error the gateway
// answers with 503 + Retry-After; the device's retry asks again, so no request is lost.
#pragma once

#include <chrono>
#include <memory>

#include "estlab/core/https_client.hpp"
#include "estlab/gateway/approval.hpp"
#include "estlab/gateway/config.hpp"

namespace estlab::gateway {

struct IdmEndpoint {
  std::string host;
  std::uint16_t port = 443;
  std::string path;  // the request URL's path, no trailing '/'
};
// A JSON string literal (RFC 8259 7), for the JSON the gateway and the IDM exchange.
std::string json_string(std::string_view text);

// "https://host:port/path" (IPv6 literals in brackets); errors name what is wrong.
Result<IdmEndpoint> parse_idm_url(const std::string& url);

class IdmApprovalGate final : public ApprovalGate {
 public:
  // Loads the handler's token; `trust_anchors` validate the IDM's server certificate.
  static Result<std::shared_ptr<IdmApprovalGate>> create(const IdmHandler& handler, std::vector<Certificate> trust_anchors,
                                                         std::chrono::milliseconds timeout = std::chrono::milliseconds(3000));

  Result<ApprovalStatus> check(const ApprovalRequest& request) override;
  Result<void> record_issued(const std::string& id, const Certificate& certificate) override;
  Result<std::optional<Certificate>> issued_for(const std::string& id) override;

 private:
  IdmApprovalGate() = default;
  Result<std::string> post(const std::string& what, const std::string& json);
  IdmEndpoint endpoint_;
  HttpsClientOptions options_;
};

}  // namespace estlab::gateway
