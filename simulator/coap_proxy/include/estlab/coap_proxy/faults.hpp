// Faults make the CoAP proxy wrong in one named way, so the conformance suite can prove its coaps
// scenarios catch each mistake (as the gateway's faults do for HTTPS). A fault changes nothing but
// its one point.
#pragma once

#include <optional>
#include <set>
#include <string_view>
#include <vector>

namespace estlab::coap_proxy {

enum class ProxyFault {
  forward_as_officer,      // upstream requests carry no device chain: the gateway sees the officer (PG-COAP-2)
  mangle_forwarded_chain,  // the forwarded device certificate has a corrupted signature (PG-COAP-2)
  forward_fullcmc,         // /fullcmc is served and forwarded (PG-COAP-3)
  accept_unknown_ca,       // DTLS clients whose chain does not verify are accepted (PG-COAP-4)
  accept_no_certificate,   // DTLS clients without a certificate are accepted (9148-3-e)
  wrong_content_format,    // /crts answers carry Content-Format 280 instead of 281 (9148-5-f)
  no_max_age,              // 5.03 is sent without Max-Age (9148-4.7-b)
  created_not_changed,     // POST successes are 2.01 instead of 2.04 (9148-5-e)
  ignore_block_size,       // the device's Block2 size is ignored: FB-40 (9148-4.6-a)
  base64_downstream,       // success bodies go to the device as the upstream base64 text (9148-5-g)
  drop_fragmented_client_hello,  // a ClientHello in two fragments gets no answer: FB-37 (9148-3-a)
  keep_lost_sessions,      // a ClientHello from an established session's address goes to that session, which drops it (6347-4.2.8-a)
};

struct ProxyFaultInfo {
  ProxyFault fault;
  std::string_view name;         // the --fault spelling
  std::string_view description;
  std::string_view requirement;  // the requirement ID a coaps scenario must use to catch it
};

const std::vector<ProxyFaultInfo>& all_proxy_faults();
const ProxyFaultInfo& info(ProxyFault fault);
std::optional<ProxyFault> parse_proxy_fault(std::string_view name);
std::string_view to_string(ProxyFault fault);

using ProxyFaults = std::set<ProxyFault>;

}  // namespace estlab::coap_proxy
