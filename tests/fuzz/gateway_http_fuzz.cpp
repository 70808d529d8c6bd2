// libFuzzer target for the reference gateway's request handling: HTTP bytes in, through the
// server's own parser and limits (gateway/http_request.hpp) into EstService::handle, in-process,
// against a fixture lab generated once. The first byte picks the profile, the client's TLS
// version and which fixture identity (if any) the client shows.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <vector>

#include "estlab/core/tls.hpp"
#include "estlab/fixtures/fixture_set.hpp"
#include "estlab/gateway/http_request.hpp"
#include "estlab/gateway/service.hpp"
#include "fuzz_support.hpp"

using namespace estlab;
using namespace estlab::gateway;

namespace {

struct Lab {
  std::filesystem::path dir;
  std::unique_ptr<EstService> services[2];  // rfc7030, protocol-gateway
  std::vector<ClientContext> clients;
};

Lab& lab() {
  static Lab the_lab = [] {
    Lab l;
    l.dir = fuzz::scratch_dir() / "lab";
    std::filesystem::remove_all(l.dir);
    fixtures::GenerateOptions options;
    options.dir = l.dir;
    auto set = fixtures::generate(options);
    if (!set.ok()) throw std::runtime_error("fixture lab: " + set.error().message);
    auto ca = ca::SimulatedCa::open({l.dir / "lab.db"});
    if (!ca.ok()) throw std::runtime_error("CA: " + ca.error().message);
    std::shared_ptr<ca::SimulatedCa> shared_ca(std::move(ca).value());
    const Profile profiles[2] = {Profile::rfc7030, Profile::protocol_gateway};
    for (int i = 0; i < 2; ++i) {
      l.services[i] = std::make_unique<EstService>(GatewayConfig::load(l.dir / "config" / "est.properties", profiles[i]), shared_ca);
    }
    l.clients.emplace_back();  // no client certificate
    for (const char* item : {"device-factory", "ra-officer", "device-revoked", "device-no-eku"}) {
      const auto* entry = set->find(item);
      if (entry == nullptr) continue;
      auto identity = TlsIdentity::load(l.dir / entry->chain, l.dir / entry->key);
      if (!identity.ok()) continue;
      ClientContext client;
      client.peer_chain.push_back(identity->certificate);
      for (const auto& c : identity->chain) client.peer_chain.push_back(c);
      client.bindings.tls_unique = Bytes(12, 0x42);
      client.bindings.tls_exporter = Bytes(32, 0x5a);
      l.clients.push_back(std::move(client));
    }
    for (const auto& entry : std::vector<std::string>{"gateway-tls"}) {
      if (const auto* item = set->find(entry)) {
        auto identity = TlsIdentity::load(l.dir / item->chain, l.dir / item->key);
        if (identity.ok())
          for (auto& s : l.services) s->set_ra_identity(*identity);
      }
    }
    return l;
  }();
  return the_lab;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  Lab& l = lab();
  const std::uint8_t selector = data[0];
  EstService& service = *l.services[selector & 1];
  ClientContext client = l.clients[(selector >> 1) % l.clients.size()];
  client.tls_version = (selector & 0x80) ? TlsVersion::tls1_2 : TlsVersion::tls1_3;
  const auto parsed = parse_http_request(fuzz::text_of(data + 1, size - 1), service.config().limits, client);
  if (!parsed.request) {
    if (parsed.refusal.status < 400 || parsed.refusal.status > 499 || parsed.refusal.reason.empty()) __builtin_trap();
    return 0;
  }
  const Handled handled = service.handle(*parsed.request);
  // ESTLAB_FUZZ_TRACE=1 prints each answer, to see what a corpus reaches.
  static const bool trace = std::getenv("ESTLAB_FUZZ_TRACE") != nullptr;
  if (trace) std::fprintf(stderr, "  -> %d %s: %s\n", handled.response.status, handled.decision.rule.c_str(), handled.decision.reason.c_str());
  // Every answer is a real HTTP status with a rule that says why.
  if (!handled.response.stall && (handled.response.status < 100 || handled.response.status > 599)) __builtin_trap();
  return 0;
}
