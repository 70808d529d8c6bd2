#include "estlab/coap_proxy/faults.hpp"

#include <stdexcept>

namespace estlab::coap_proxy {

const std::vector<ProxyFaultInfo>& all_proxy_faults() {
  static const std::vector<ProxyFaultInfo> faults = {
      {ProxyFault::forward_as_officer, "forward-as-officer", "requests go upstream as the officer alone, without the device's chain", "PG-COAP-2"},
      {ProxyFault::mangle_forwarded_chain, "mangle-forwarded-chain", "the forwarded device certificate has a corrupted signature", "PG-COAP-2"},
      {ProxyFault::forward_fullcmc, "forward-fullcmc", "/fullcmc is served and forwarded to the gateway", "PG-COAP-3"},
      {ProxyFault::accept_unknown_ca, "accept-unknown-ca", "DTLS clients whose chain does not verify against the open CAs are accepted", "PG-COAP-4"},
      {ProxyFault::accept_no_certificate, "accept-no-certificate", "DTLS clients without a certificate are accepted and forwarded as the officer", "9148-3-e"},
      {ProxyFault::wrong_content_format, "wrong-content-format", "/crts answers carry Content-Format 280 instead of 281", "9148-5-f"},
      {ProxyFault::no_max_age, "no-max-age", "5.03 is sent without Max-Age, also when the gateway gave Retry-After", "9148-4.7-b"},
      {ProxyFault::created_not_changed, "created-not-changed", "POST successes are answered 2.01 instead of 2.04", "9148-5-e"},
      {ProxyFault::ignore_block_size, "ignore-block-size", "the Block2 size the device asks for is ignored (FB-40)", "9148-4.6-a"},
      {ProxyFault::base64_downstream, "base64-downstream", "success bodies reach the device as the gateway's base64 text, not binary", "9148-5-g"},
      {ProxyFault::drop_fragmented_client_hello, "drop-fragmented-client-hello",
       "a DTLS ClientHello split into fragments is dropped, never answered (FB-37)", "9148-3-a"},
      {ProxyFault::keep_lost_sessions, "keep-lost-sessions",
       "a device back from the address of a session it lost gets no answer until that session expires (libcoap 4.3.1 alone)", "6347-4.2.8-a"},
  };
  return faults;
}

const ProxyFaultInfo& info(ProxyFault fault) {
  for (const auto& entry : all_proxy_faults())
    if (entry.fault == fault) return entry;
  throw std::logic_error("proxy fault without an entry in all_proxy_faults()");
}

std::optional<ProxyFault> parse_proxy_fault(std::string_view name) {
  for (const auto& entry : all_proxy_faults())
    if (entry.name == name) return entry.fault;
  return std::nullopt;
}

std::string_view to_string(ProxyFault fault) { return info(fault).name; }

}  // namespace estlab::coap_proxy
