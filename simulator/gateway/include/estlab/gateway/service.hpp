// The EST service: a plain function from (request, what TLS said about the client) to response,
// testable without sockets. Every refusal names the rule that decided it (a catalog or PG-* ID).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "estlab/ca/ca.hpp"
#include "estlab/core/est.hpp"
#include "estlab/core/https_client.hpp"
#include "estlab/core/tls.hpp"
#include "estlab/gateway/approval.hpp"
#include "estlab/gateway/config.hpp"

namespace estlab::gateway {

// What the transport knows about the peer.
struct ClientContext {
  bool over_tls = true;
  TlsVersion tls_version = TlsVersion::tls1_2;
  std::vector<Certificate> peer_chain;  // leaf first; empty without a client certificate
  ChannelBindings bindings;
  std::string remote;                   // "address:port"
  std::uint64_t connection_id = 0;
};

struct EstRequest {
  std::string method;
  std::string target;
  HttpHeaders headers;
  std::string body;
  ClientContext client;

  std::optional<std::string> header(std::string_view name) const;
};

struct EstResponse {
  int status = 200;
  HttpHeaders headers;
  std::string body;
  bool stall = false;  // fault stall-response: the transport never answers
};

// One line of the structured log; also the transcript's summary.
struct Decision {
  std::string operation;  // "" when the path named none
  std::string label;
  std::string client_subject;
  std::string rule;       // the requirement that decided: "PG-ENR-1", "7030-4.2.1-b", "ok"
  std::string reason;     // why, in words
  int status = 0;
  std::string issued_serial;
};

struct Handled {
  EstResponse response;
  Decision decision;
};

// What the gateway's HTTPS server serves: the EST service, or the identity manager's API
// (simulator/idm), so both share one server (TLS, deadlines, limits) rather than copies of it.
class RequestHandler {
 public:
  virtual ~RequestHandler() = default;
  // Listening address, TLS identity and versions, limits and timeouts.
  virtual const GatewayConfig& config() const = 0;
  virtual Handled handle(const EstRequest& request) = 0;
  // The server's TLS identity, once loaded (the EST service signs CMC responses with it).
  virtual void set_ra_identity(std::optional<TlsIdentity> identity) { (void)identity; }
};

class EstService : public RequestHandler {
 public:
  // Opens nothing itself: the CA and the approval gate are shared with the rest of the lab.
  // Throws ConfigError when the configuration cannot work (unknown CA label, bad csrattrs).
  EstService(GatewayConfig config, std::shared_ptr<ca::SimulatedCa> ca, std::shared_ptr<ApprovalGate> approval = nullptr);
  ~EstService() override;

  Handled handle(const EstRequest& request) override;

  const GatewayConfig& config() const override { return config_; }
  // The CA labels served under /.well-known/est/<label>/.
  const std::vector<std::string>& labels() const { return labels_; }
  // Signing identity for CMC responses (the gateway acts as the RA).
  void set_ra_identity(std::optional<TlsIdentity> identity) override { ra_identity_ = std::move(identity); }

 private:
  struct Impl;
  GatewayConfig config_;
  std::shared_ptr<ca::SimulatedCa> ca_;
  std::shared_ptr<ApprovalGate> approval_;
  std::vector<std::string> labels_;
  std::vector<Certificate> trust_anchors_;
  std::optional<TlsIdentity> ra_identity_;
  std::unique_ptr<Impl> impl_;
  friend struct Impl;
};

}  // namespace estlab::gateway
