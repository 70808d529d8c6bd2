// The simulated identity manager's HTTPS API, served by the gateway's server (GatewayServer with
// this RequestHandler). Three audiences:
//  - the gateway (PG-IDM-2): POST <gateway_path>/check|issued|lookup, JSON, over mutual TLS; only
//    the client certificate pinned in `gateway_fingerprints` (the handler's idm.tls.token) may call;
//  - operators: /idm/api/... JSON, with `Authorization: Bearer <operator token>`; POSTs also need
//    the header `X-IDM-Request: 1` and, when a browser sends Origin, the IDM's own origin: a page
//    on another site can neither set that header without a CORS preflight (never granted here) nor
//    ride on ambient credentials (there are no cookies);
//  - a person: GET /idm/ is one self-contained page that polls the operator API.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "estlab/gateway/service.hpp"
#include "estlab/idm/store.hpp"

namespace estlab::idm {

struct IdmOptions {
  gateway::GatewayConfig server;                  // listen host/port, TLS identity, limits, timeouts
  std::vector<std::string> gateway_fingerprints;  // SHA-256 of the client certificates allowed to call the gateway API
  std::string operator_token;                     // required for the operator API
  std::string gateway_path = "/idm/ws/processes/est-enroll";
  gateway::OperatorPolicy policy;                 // what the operator does unasked (fleet runs)
};

class IdmService final : public gateway::RequestHandler {
 public:
  IdmService(IdmOptions options, std::shared_ptr<IdmStore> store);
  const gateway::GatewayConfig& config() const override { return options_.server; }
  gateway::Handled handle(const gateway::EstRequest& request) override;
  IdmStore& store() { return *store_; }
  void set_policy(gateway::OperatorPolicy policy);

 private:
  gateway::Handled gateway_api(const gateway::EstRequest& request, const std::string& what);
  gateway::Handled operator_api(const gateway::EstRequest& request, const std::string& path);
  IdmOptions options_;
  std::shared_ptr<IdmStore> store_;
  std::mutex policy_mutex_;
};

// The operator page (HTML, CSS and JS in one file).
const std::string& operator_page();

// A random operator token (32 bytes, hex).
std::string make_token();

}  // namespace estlab::idm
