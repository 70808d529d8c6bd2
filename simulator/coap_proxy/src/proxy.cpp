#include "estlab/coap_proxy/proxy.hpp"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

#include "estlab/ca/ca.hpp"
#include "estlab/coap_proxy/forwarding.hpp"
#include "estlab/coap_proxy/rehandshake.hpp"
#include "estlab/core/base64.hpp"
#include "estlab/core/coap_handles.hpp"
#include "estlab/core/oids.hpp"
#include "estlab/core/ossl.hpp"
#include "estlab/core/tls.hpp"
#include "estlab/network/relay.hpp"

namespace estlab::coap_proxy {

LogSink stderr_log_sink() {
  auto mutex = std::make_shared<std::mutex>();
  return [mutex](const std::string& line) {
    std::lock_guard lock(*mutex);
    std::cerr << line << std::endl;
  };
}

namespace {

std::string quote_value(const std::string& value) {
  std::string out = "\"";
  for (char ch : value) {
    if (ch == '"' || ch == '\\') out.push_back('\\');
    out.push_back(ch);
  }
  return out + "\"";
}

std::optional<std::uint16_t> uint16_option(const coap_pdu_t* pdu, coap_option_num_t number) {
  coap_opt_iterator_t iterator;
  coap_opt_t* option = coap_check_option(pdu, number, &iterator);
  if (option == nullptr) return std::nullopt;
  const unsigned value = coap_decode_var_bytes(coap_opt_value(option), coap_opt_length(option));
  if (value > 0xffff) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

// An answer the proxy gives itself, with a diagnostic payload (no Content-Format, RFC 7252 5.5.2).
CoapAnswer local_refusal(CoapCode code, std::string_view text, std::string rule) {
  CoapAnswer answer;
  answer.code = code;
  answer.payload.assign(text.begin(), text.end());
  answer.rule = std::move(rule);
  return answer;
}

// A Block option's value (RFC 7959 2.2), if the request has one.
std::optional<std::uint32_t> block_value(const coap_pdu_t* pdu, coap_option_num_t number) {
  coap_opt_iterator_t iterator;
  coap_opt_t* option = coap_check_option(pdu, number, &iterator);
  if (option == nullptr) return std::nullopt;
  return coap_decode_var_bytes(coap_opt_value(option), coap_opt_length(option));
}

// Where each registered resource routes to; owned by the proxy, borrowed by libcoap.
struct Route {
  CoapProxy::Impl* proxy = nullptr;
  EstOperation operation = EstOperation::cacerts;
  std::string label;
};

void release_body(coap_session_t*, void* body) {
  // Ownership came from handle() below (unique_ptr::release at coap_add_data_large_response).
  std::unique_ptr<Bytes> owned(static_cast<Bytes*>(body));
}

}  // namespace

struct CoapProxy::Impl {
  CoapProxyConfig config;
  LogSink log;
  Upstream upstream;                                // a test's; empty = core's HTTPS client below
  // The officer's TLS connections to the EST server, kept alive: a full handshake (two chain
  // verifications and a signature) per forwarded request halved what the proxy could carry.
  std::optional<HttpsConnectionPool> https_upstream;
  static constexpr std::chrono::seconds kUpstreamIdleReuse{5};
  ForwardObserver observer;
  UpstreamUrl url;
  ForwardingLimits limits;
  TlsIdentity dtls_identity;
  std::vector<Certificate> truststore;
  std::vector<std::string> notes;
  std::string certificate_pem;
  std::string key_pem;
  ossl::X509Store verify_store;
  std::vector<std::unique_ptr<Route>> routes;  // outlive the context that points at them
  coap::Context context;                       // destroyed first: resources and sessions go with it
  std::uint16_t port = 0;
  // drop-fragmented-client-hello: devices reach libcoap through this filter, which drops what the
  // buggy stacks of FB-37 cannot reassemble.
  std::unique_ptr<network::ImpairedRelay> fault_filter;
  std::optional<RehandshakeGuard> rehandshake;  // loop thread only
  std::thread thread;
  std::atomic<bool> stopping{false};
  mutable std::mutex stats_mutex;
  ProxyStats stats;

  // One request forwarded upstream. The loop never waits for the gateway: a worker makes the HTTPS
  // exchange while the loop serves others. An answer ready within kEmptyAckAfter is piggybacked on
  // the ACK; a slower one gets an empty ACK first (at that time, or at once when the device
  // retransmits) and then a separate CON response (RFC 7252 5.2.2). Copies of a request in flight
  // are acknowledged, never forwarded again (RFC 7252 4.5).
  struct Job {
    CoapExchange exchange;
    HttpRequest http;
    CoapAnswer answer;                   // written by a worker before it hands the job back
    // Loop thread only:
    coap_session_t* session = nullptr;   // referenced while the job lives
    coap::Pdu request;                   // the request's options, for the answer's async trigger
    coap_mid_t mid = 0;
    std::string token;
    bool confirmable = false;
    bool acknowledged = false;           // an empty ACK went out: the answer is a separate response
    std::chrono::steady_clock::time_point received;
  };
  static constexpr std::chrono::milliseconds kEmptyAckAfter{1000};  // below ACK_TIMEOUT (2 s)
  static constexpr std::size_t kWorkers = 8;         // devices served while others wait on the gateway
  static constexpr std::size_t kMaxInFlight = 256;   // beyond this: 5.03 + Max-Age, nothing queued
  std::map<const Job*, std::shared_ptr<Job>> in_flight;  // loop thread only
  std::map<std::pair<const coap_session_t*, std::string>, Job*> pending;  // by session and token; loop only
  std::mutex jobs_mutex;
  std::condition_variable jobs_cv;
  std::deque<std::shared_ptr<Job>> queued;  // waiting for a worker
  std::vector<std::shared_ptr<Job>> ready;  // answered, waiting for the loop
  bool workers_stopping = false;
  std::vector<std::thread> workers;
  int wake_fd = -1;  // eventfd: a worker tells the loop an answer is ready

  // RFC 7252 4.5: a duplicate Confirmable request is acknowledged but processed only once, and
  // each copy gets the same Acknowledgement. A late copy (the device never saw our ACK: it was
  // lost) must not be forwarded again, which would issue twice. When the answer rode on that ACK,
  // the copy gets the same answer again, or under loss the answer would be lost for good; when it
  // came as a separate response (which libcoap retransmits itself), the copy gets an empty ACK.
  // The last requests answered, by session, message ID and token, are remembered.
  struct AnsweredRequest {
    const coap_session_t* session = nullptr;
    coap_mid_t mid = 0;
    std::string token;
    std::shared_ptr<const CoapAnswer> piggybacked;  // the answer sent on the ACK; null: separate
  };
  std::deque<AnsweredRequest> answered;
  static constexpr std::size_t kAnsweredKept = 64;

  const AnsweredRequest* already_answered(const coap_session_t* session, coap_mid_t mid, const std::string& token) const {
    auto it = std::find_if(answered.begin(), answered.end(),
                           [&](const AnsweredRequest& a) { return a.session == session && a.mid == mid && a.token == token; });
    return it == answered.end() ? nullptr : &*it;
  }
  void remember(const coap_session_t* session, coap_mid_t mid, std::string token, std::shared_ptr<const CoapAnswer> piggybacked) {
    if (answered.size() == kAnsweredKept) answered.pop_front();
    answered.push_back({session, mid, std::move(token), std::move(piggybacked)});
  }

  ~Impl() {
    if (wake_fd >= 0) ::close(wake_fd);
    if (!context) return;
    coap_set_app_data(context.get(), nullptr);  // no event reaches a proxy being destroyed
  }

  // libcoap 4.3.1 keeps the blocks of a large answer for only 8 s after the last one went out.
  // Under loss a device asks for a later block again after that (CoAP backs off for up to 93 s,
  // MAX_TRANSMIT_WAIT), and libcoap hands the request to us as a new one without a body: a POST
  // would be refused (no Content-Format) or, worse, forwarded again. So the last answer of each
  // POST resource is kept per session for EXCHANGE_LIFETIME, and such a request gets its block
  // from it. GETs are forwarded again instead: that is safe and their answer is current.
  struct KeptAnswer {
    std::shared_ptr<const CoapAnswer> answer;
    std::chrono::steady_clock::time_point at;
  };
  std::map<std::pair<const coap_session_t*, const coap_resource_t*>, KeptAnswer> kept_answers;  // loop only
  static constexpr std::chrono::seconds kExchangeLifetime{247};  // RFC 7252 4.8.2

  void keep_answer(const coap_session_t* session, const coap_resource_t* resource, const CoapAnswer& answer) {
    const auto now = std::chrono::steady_clock::now();
    std::erase_if(kept_answers, [&](const auto& entry) { return now - entry.second.at > kExchangeLifetime; });
    kept_answers[{session, resource}] = {std::make_shared<const CoapAnswer>(answer), now};
  }
  const CoapAnswer* kept_answer(const coap_session_t* session, const coap_resource_t* resource) const {
    auto it = kept_answers.find({session, resource});
    if (it == kept_answers.end() || std::chrono::steady_clock::now() - it->second.at > kExchangeLifetime) return nullptr;
    return it->second.answer.get();
  }
  // A session's memory goes with it: libcoap may reuse its address for another device.
  void forget_session(const coap_session_t* session) {
    std::erase_if(kept_answers, [&](const auto& entry) { return entry.first.first == session; });
    std::erase_if(answered, [&](const AnsweredRequest& a) { return a.session == session; });
  }

  bool has(ProxyFault fault) const { return config.faults.count(fault) != 0; }

  void note(const std::string& line) {
    notes.push_back(line);
    if (log) log("coap-proxy: " + line);
  }
  void count(std::uint64_t ProxyStats::*field) {
    std::lock_guard lock(stats_mutex);
    ++(stats.*field);
  }

  // The chain sent after the leaf and the truststore, set on each server SSL (never throws).
  static int tls_setup(void* tls_session, coap_dtls_pki_t* setup) noexcept {
    auto* self = static_cast<Impl*>(setup->cn_call_back_arg);
    SSL* ssl = static_cast<SSL*>(tls_session);
    if (self == nullptr || ssl == nullptr) return 0;
    for (const auto& certificate : self->dtls_identity.chain)
      if (SSL_add1_chain_cert(ssl, certificate.native()) != 1) return 0;
    if (SSL_set1_verify_cert_store(ssl, self->verify_store.get()) != 1) return 0;
    // A client without a certificate is refused at the handshake (9148-3-e).
    int mode = SSL_get_verify_mode(ssl) | SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_verify_cb callback = SSL_get_verify_callback(ssl);
    if (self->has(ProxyFault::accept_no_certificate)) mode &= ~SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    if (self->has(ProxyFault::accept_unknown_ca)) callback = [](int, X509_STORE_CTX*) { return 1; };
    SSL_set_verify(ssl, mode, callback);
    return 1;
  }

  static int on_event(coap_session_t* session, const coap_event_t event) noexcept {
    coap::event_seen();
    auto* self = static_cast<Impl*>(coap_get_app_data(coap_session_get_context(session)));
    if (self == nullptr) return 0;
    if (event == COAP_EVENT_SERVER_SESSION_NEW) coap_session_set_max_retransmit(session, coap::kDtlsHandshakeRetransmissions);
    if (event == COAP_EVENT_DTLS_CONNECTED) {
      coap_session_set_max_retransmit(session, coap::kCoapMaxRetransmit);
      if (self->rehandshake) self->rehandshake->established(&coap_session_get_addr_remote(session)->addr.sa, session);
    }
    if (event == COAP_EVENT_SERVER_SESSION_DEL) {
      self->forget_session(session);
      if (self->rehandshake) self->rehandshake->deleted(&coap_session_get_addr_remote(session)->addr.sa, session);
    }
    if (event == COAP_EVENT_DTLS_ERROR) {
      self->count(&ProxyStats::dtls_failures);
      char address[INET6_ADDRSTRLEN + 8] = {};
      coap_print_addr(coap_session_get_addr_remote(session), reinterpret_cast<std::uint8_t*>(address), sizeof address - 1);
      try {
        const bool established = coap_session_get_state(session) == COAP_SESSION_STATE_ESTABLISHED;
        if (self->log)
          self->log(std::string(established ? "coap-proxy: dtls error ended an established session remote=" : "coap-proxy: dtls handshake failed remote=") +
                    address);
      } catch (...) {
      }
    }
    return 0;
  }

  static void handle(coap_resource_t* resource, coap_session_t* session, const coap_pdu_t* request,
                     const coap_string_t* query, coap_pdu_t* response) noexcept {
    auto* route = static_cast<Route*>(coap_resource_get_userdata(resource));
    if (route == nullptr) {
      coap_pdu_set_code(response, COAP_RESPONSE_CODE_INTERNAL_ERROR);
      return;
    }
    try {
      route->proxy->serve(*route, resource, session, request, query, response);
    } catch (const std::exception& e) {
      coap_pdu_set_code(response, COAP_RESPONSE_CODE_INTERNAL_ERROR);
      try {
        if (route->proxy->log) route->proxy->log(std::string("coap-proxy: internal error: ") + e.what());
      } catch (...) {
      }
    } catch (...) {
      coap_pdu_set_code(response, COAP_RESPONSE_CODE_INTERNAL_ERROR);
    }
  }

  void serve(const Route& route, coap_resource_t* resource, coap_session_t* session, const coap_pdu_t* request,
             const coap_string_t* query, coap_pdu_t* response) {
    const coap_bin_const_t raw_token = coap_pdu_get_token(request);
    const coap_mid_t mid = coap_pdu_get_mid(request);
    const std::string token(reinterpret_cast<const char*>(raw_token.s), raw_token.length);
    // The upstream answer is in and the loop triggered the request again (coap_async_trigger).
    if (coap_async_t* async = coap_find_async(session, raw_token)) {
      auto it = in_flight.find(static_cast<const Job*>(coap_async_get_app_data(async)));
      if (it == in_flight.end()) {
        // Answered already (a device's copy came in just before the trigger fired): say nothing.
        coap_pdu_set_type(response, COAP_MESSAGE_NON);
        return;
      }
      std::shared_ptr<Job> job = it->second;
      finish(*job);
      log_answer(job->exchange, job->answer);
      if (job->confirmable) {
        remember(session, job->mid, job->token, job->acknowledged ? nullptr : std::make_shared<const CoapAnswer>(job->answer));
        if (!job->acknowledged) {
          // Still unacknowledged: piggybacked on the ACK of the device's message.
          coap_pdu_set_type(response, COAP_MESSAGE_ACK);
          coap_pdu_set_mid(response, job->mid);
        }
      }
      send_answer(std::move(job->answer), resource, session, request, query, response);
      return;
    }
    if (auto it = pending.find({session, token}); it != pending.end() && it->second->mid == mid) {
      // A copy of a request in flight: the device waits, so acknowledge (no response code set:
      // libcoap sends an empty ACK); the answer follows as a separate response.
      it->second->acknowledged = true;
      count(&ProxyStats::duplicates);
      return;
    }
    if (const AnsweredRequest* earlier = already_answered(session, mid, token)) {
      // A late copy of a request already answered: the same ACK again, never forwarded again.
      count(&ProxyStats::duplicates);
      if (earlier->piggybacked) {
        count(&ProxyStats::answers_resent);
        if (log) log("coap-proxy: duplicate of message " + std::to_string(mid) + " answered again from the last answer, not forwarded again");
        send_answer(*earlier->piggybacked, resource, session, request, query, response);
      } else if (log) {
        log("coap-proxy: duplicate of message " + std::to_string(mid) + " acknowledged, not forwarded again");
      }
      return;
    }
    if (auto block2 = block_value(request, COAP_OPTION_BLOCK2);
        block2 && (*block2 >> 4) > 0 && coap_pdu_get_code(request) == COAP_REQUEST_CODE_POST) {
      if (const CoapAnswer* kept = kept_answer(session, resource)) {
        count(&ProxyStats::answers_resent);
        if (log) log("coap-proxy: block " + std::to_string(*block2 >> 4) + " of an answer libcoap no longer held, sent from the kept answer");
        send_answer(*kept, resource, session, request, query, response);
        return;
      }
    }
    count(&ProxyStats::requests);
    CoapExchange exchange;
    exchange.operation = route.operation;
    exchange.label = route.label;
    exchange.content_format = uint16_option(request, COAP_OPTION_CONTENT_FORMAT);
    exchange.accept = uint16_option(request, COAP_OPTION_ACCEPT);
    std::size_t length = 0, offset = 0, total = 0;
    const std::uint8_t* data = nullptr;
    if (coap_get_data_large(request, &length, &data, &offset, &total)) {
      if (total > limits.max_request_body || length > limits.max_request_body) {
        // Larger than we take: never copied, never forwarded.
        exchange.payload.assign(limits.max_request_body + 1, 0);
      } else {
        exchange.payload.assign(data, data + length);
      }
    }
    coap_tls_library_t library;
    if (auto* ssl = static_cast<SSL*>(coap_session_get_tls(session, &library)); ssl && library == COAP_TLS_LIBRARY_OPENSSL)
      exchange.device_chain = describe_tls_connection(ssl, true).peer_chain;

    // libcoap 4.3.1 hands some incomplete Block1 transfers to the handler as if they were whole
    // bodies (a first block with M set, SZX 7); only a complete body may reach the gateway.
    std::optional<CoapAnswer> answer;
    if (auto block1 = block_value(request, COAP_OPTION_BLOCK1)) {
      const unsigned szx = *block1 & 0x07u;
      const bool more = (*block1 & 0x08u) != 0;
      if (szx == 7) {
        answer = local_refusal(CoapCode::make(4, 0), "Block1 SZX 7 is reserved (RFC 7959 2.2)", "RFC7959-2.2");
      } else if (more || offset != 0 || (total != 0 && offset + length < total)) {
        answer = local_refusal(CoapCode::make(4, 8), "incomplete Block1 transfer (RFC 7959 2.9.2)", "RFC7959-2.9.2");
      }
    } else if (offset != 0 || (total != 0 && offset + length < total)) {
      answer = local_refusal(CoapCode::make(4, 8), "incomplete request body", "RFC7959-2.9.2");
    }
    if (!answer && !(has(ProxyFault::accept_no_certificate) && exchange.device_chain.empty()))
      answer = check_request(exchange, limits);
    if (!answer && in_flight.size() >= kMaxInFlight) {
      answer = local_refusal(CoapCode::make(5, 3), "too many requests waiting for the EST service", "RFC7252-5.9.3.4");
      answer->max_age = 5;
    }
    if (answer) {
      count(&ProxyStats::answered_locally);
      log_answer(exchange, *answer);
      if (coap_pdu_get_type(request) == COAP_MESSAGE_CON) remember(session, mid, token, std::make_shared<const CoapAnswer>(*answer));
      send_answer(std::move(*answer), resource, session, request, query, response);
      return;
    }

    auto job = std::make_shared<Job>();
    job->exchange = std::move(exchange);
    job->http = upstream_request(job->exchange);
    job->mid = mid;
    job->token = token;
    job->confirmable = coap_pdu_get_type(request) == COAP_MESSAGE_CON;
    job->received = std::chrono::steady_clock::now();
    job->request.reset(coap_pdu_duplicate(request, session, raw_token.length, raw_token.s, nullptr));
    if (!job->request) {
      coap_pdu_set_code(response, COAP_RESPONSE_CODE_INTERNAL_ERROR);
      return;
    }
    coap_pdu_set_mid(job->request.get(), mid);  // the duplicate got a new one; the ACK needs this
    job->session = coap_session_reference(session);
    pending[{session, token}] = job.get();
    in_flight.emplace(job.get(), job);
    {
      std::lock_guard lock(jobs_mutex);
      queued.push_back(std::move(job));
    }
    jobs_cv.notify_one();
    // Nothing yet: an empty response of type NON is dropped by libcoap, so the ACK can still carry
    // the answer if it comes soon.
    coap_pdu_set_type(response, COAP_MESSAGE_NON);
  }

  // The job is answered (or the proxy stops): its loop-side resources go back to libcoap.
  void finish(Job& job) {
    pending.erase({job.session, job.token});
    in_flight.erase(&job);  // the caller holds its own reference
    job.request.reset();
    if (job.session) coap_session_release(job.session);
    job.session = nullptr;
  }

  // RFC 7252 5.2.2: a request still waiting for the gateway after kEmptyAckAfter gets its empty ACK.
  // Returns how long until the next one is due (at most a second).
  std::chrono::milliseconds acknowledge_slow_requests() {
    const auto now = std::chrono::steady_clock::now();
    std::chrono::milliseconds next{1000};
    for (auto& [key, job] : in_flight) {
      if (!job->confirmable || job->acknowledged || !job->request) continue;
      const auto due = job->received + kEmptyAckAfter;
      if (due <= now) {
        coap_send_ack(job->session, job->request.get());
        job->acknowledged = true;
      } else {
        next = std::min(next, std::chrono::duration_cast<std::chrono::milliseconds>(due - now) + std::chrono::milliseconds(1));
      }
    }
    return next;
  }

  // The request the gateway gets (PG-COAP-2: the device's chain beside the officer's TLS identity).
  HttpRequest upstream_request(const CoapExchange& exchange) const {
    const std::string host_header = (url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host) + ":" +
                                    std::to_string(url.port);
    HttpRequest http = to_http_request(exchange, url.base_path, host_header);
    if (has(ProxyFault::forward_as_officer) || has(ProxyFault::mangle_forwarded_chain) || exchange.device_chain.empty()) {
      auto& headers = http.headers;
      headers.erase(std::remove_if(headers.begin(), headers.end(), [](const auto& h) { return h.first == kForwardedClientCertHeader; }),
                    headers.end());
      if (has(ProxyFault::mangle_forwarded_chain) && !has(ProxyFault::forward_as_officer) && !exchange.device_chain.empty()) {
        Bytes leaf = exchange.device_chain.front().der();
        leaf.back() ^= 0x5a;  // the last byte of the leaf's signature
        std::string chain = base64_encode(leaf);
        for (std::size_t i = 1; i < exchange.device_chain.size(); ++i) chain += "," + base64_encode(exchange.device_chain[i].der());
        headers.emplace_back(kForwardedClientCertHeader, chain);
      }
    }
    return http;
  }

  // On a worker: the HTTPS exchange (bounded by the upstream deadlines) and its CoAP answer.
  CoapAnswer forward(const Job& job) {
    if (config.upstream_delay.count() > 0) {
      std::unique_lock lock(jobs_mutex);  // a stop ends the wait
      jobs_cv.wait_for(lock, config.upstream_delay, [this] { return workers_stopping; });
    }
    count(&ProxyStats::forwarded);
    UpstreamConnection connection;
    Result<HttpResponse> upstream_response = make_error(ErrorCode::internal, "not forwarded");
    if (https_upstream) {
      connection.scheme = "https";
      auto sent = https_upstream->send(job.http);
      if (!sent.tls.cipher.empty()) {
        connection.tls_version = to_string(sent.tls.version);
        if (https_upstream->options().identity) connection.client_certificate = https_upstream->options().identity->certificate;
      }
      upstream_response = std::move(sent.response);
    } else {
      upstream_response = upstream(job.http);
    }
    if (observer) observer(job.http, upstream_response, connection);
    if (!upstream_response.ok()) {
      count(&ProxyStats::upstream_failures);
      return upstream_failure(upstream_response.error());
    }
    CoapAnswer answer = to_coap_answer(job.exchange.operation, *upstream_response, std::chrono::system_clock::now(), limits);
    if (answer.content_format) {
      if (has(ProxyFault::wrong_content_format) && job.exchange.operation == EstOperation::cacerts) answer.content_format = 280;
      if (has(ProxyFault::base64_downstream)) answer.payload.assign(upstream_response->body.begin(), upstream_response->body.end());
    }
    if (has(ProxyFault::no_max_age) && answer.code == CoapCode::make(5, 3)) answer.max_age.reset();
    if (has(ProxyFault::created_not_changed) && answer.code == CoapCode::make(2, 4)) answer.code = CoapCode::make(2, 1);
    return answer;
  }

  void work() noexcept {
    for (;;) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock lock(jobs_mutex);
        jobs_cv.wait(lock, [this] { return workers_stopping || !queued.empty(); });
        if (workers_stopping) return;
        job = std::move(queued.front());
        queued.pop_front();
      }
      try {
        job->answer = forward(*job);
      } catch (const std::exception& e) {
        job->answer = local_refusal(CoapCode::make(5, 0), std::string("internal error: ") + e.what(), "internal");
      } catch (...) {
        job->answer = local_refusal(CoapCode::make(5, 0), "internal error", "internal");
      }
      {
        std::lock_guard lock(jobs_mutex);
        ready.push_back(std::move(job));
      }
      wake();
    }
  }

  void wake() noexcept {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto written = ::write(wake_fd, &one, sizeof one);  // only fails when the counter is full: already awake
  }

  // On the loop: each answered job's request goes through its handler again (coap_async_trigger).
  void trigger_ready() {
    std::uint64_t counter = 0;
    [[maybe_unused]] auto drained = ::read(wake_fd, &counter, sizeof counter);
    std::vector<std::shared_ptr<Job>> done;
    {
      std::lock_guard lock(jobs_mutex);
      done.swap(ready);
    }
    for (const auto& job : done) {
      if (in_flight.count(job.get()) == 0 || !job->request) continue;
      coap_async_t* async = coap_register_async(job->session, job->request.get(), 0);
      if (async == nullptr) {  // the token is in use by another async request: the device must retry
        if (log) log("coap-proxy: cannot schedule the answer to message " + std::to_string(job->mid));
        finish(*job);
        continue;
      }
      coap_async_set_app_data(async, job.get());
      coap_async_trigger(async);
    }
  }

  void log_answer(const CoapExchange& exchange, const CoapAnswer& answer) {
    if (!log) return;
    const std::string client = exchange.device_chain.empty() ? "" : exchange.device_chain.front().subject().to_string();
    log("coap-proxy: op=" + std::string(coaps_short_name(exchange.operation).value_or(to_string(exchange.operation))) +
        " label=" + exchange.label + " client=" + quote_value(client) + " code=" + answer.code.to_string() + " rule=" + answer.rule +
        (answer.upstream_status ? " upstream=" + std::to_string(*answer.upstream_status) : std::string(" upstream=-")));
  }

  // The answer into libcoap's response: a large body through its Block2 machinery, else inline.
  void send_answer(CoapAnswer answer, coap_resource_t* resource, coap_session_t* session, const coap_pdu_t* request,
                   const coap_string_t* query, coap_pdu_t* response) {
    coap_pdu_set_code(response, static_cast<coap_pdu_code_t>(answer.code.value));
    std::uint8_t buffer[4];
    if (answer.content_format && !answer.payload.empty()) {
      if (coap_pdu_get_code(request) == COAP_REQUEST_CODE_POST) keep_answer(session, resource, answer);
      // FB-40 on purpose: the body is cut as if the device had asked for no Block2 size.
      coap::Pdu without_block2;
      if (has(ProxyFault::ignore_block_size)) {
        coap_opt_filter_t drop;
        coap_option_filter_clear(&drop);
        coap_option_filter_set(&drop, COAP_OPTION_BLOCK2);
        const coap_bin_const_t token = coap_pdu_get_token(request);
        without_block2.reset(coap_pdu_duplicate(request, session, token.length, token.s, &drop));
        if (without_block2) request = without_block2.get();
      }
      auto body = std::make_unique<Bytes>(std::move(answer.payload));
      const std::uint8_t* bytes = body->data();
      const std::size_t size = body->size();
      // libcoap owns the body from here until release_body (it may send it in many Block2 blocks).
      if (!coap_add_data_large_response(resource, session, request, response, query, *answer.content_format, -1, 0,
                                        size, bytes, release_body, body.get())) {
        coap_pdu_set_code(response, COAP_RESPONSE_CODE_INTERNAL_ERROR);
      } else {
        body.release();
      }
    } else {
      if (answer.max_age)
        coap_add_option(response, COAP_OPTION_MAXAGE, coap_encode_var_safe(buffer, sizeof buffer, *answer.max_age), buffer);
      if (answer.code == CoapCode::make(4, 13))
        coap_add_option(response, COAP_OPTION_SIZE1,
                        coap_encode_var_safe(buffer, sizeof buffer, static_cast<unsigned>(limits.max_request_body)), buffer);
      if (!answer.payload.empty()) coap_add_data(response, answer.payload.size(), answer.payload.data());
    }
  }

  Result<void> build_truststore() {
    if (config.ca_store.empty())
      return make_error(ErrorCode::invalid_input, config.source.string() + ": estlab.ca.store is not set (PG-COAP-4: the proxy fetches its truststore from the CA)");
    auto ca = ca::SimulatedCa::open({config.ca_store});
    if (!ca.ok()) return ca.error().within("CA store " + config.ca_store.string());
    auto cas = (*ca)->list();
    if (!cas.ok()) return cas.error().within("listing the CAs");
    std::map<std::string, std::string> first_with_subject;  // subject -> label
    for (const auto& info : *cas) {
      if (!info.open) continue;
      const std::string subject = info.certificate.subject().to_string();
      auto [it, inserted] = first_with_subject.emplace(subject, info.label);
      if (!inserted) {
        if (config.duplicate_ca_subjects == DuplicateCaSubjects::refuse)
          return make_error(ErrorCode::policy_refused,
                            "PG-COAP-5: the open CAs '" + it->second + "' and '" + info.label + "' share the subject '" +
                                subject + "'; the proxy does not allow several CA certificates with one subject "
                                "(estlab.duplicate-ca-subjects = refuse; ignore-later keeps the first instead)");
        note("PG-COAP-5: ignoring CA '" + info.label + "' (" + subject + "): same subject as CA '" + it->second +
             "', which is kept (estlab.duplicate-ca-subjects = ignore-later)");
        continue;
      }
      truststore.push_back(info.certificate);
    }
    if (truststore.empty()) return make_error(ErrorCode::not_found, "PG-COAP-4: the CA store has no open CA");
    verify_store.reset(X509_STORE_new());
    std::string labels;
    for (const auto& certificate : truststore) X509_STORE_add_cert(verify_store.get(), certificate.native());
    for (const auto& [subject, label] : first_with_subject) labels += (labels.empty() ? "" : ", ") + label;
    note("PG-COAP-4: DTLS truststore = " + std::to_string(truststore.size()) + " open CA certificates (" + labels + ")");
    return {};
  }

  Result<void> make_upstream() {
    if (upstream) return {};
    auto officer = TlsIdentity::load_pkcs12(config.officer_token, config.officer_password);
    if (!officer.ok()) return officer.error().within("officer.token " + config.officer_token.string());
    HttpsClientOptions options;
    options.host = url.host;
    options.port = url.port;
    options.server_name = config.est_server_name.empty() ? url.host : config.est_server_name;
    options.identity = std::move(officer).value();
    if (!config.est_trust_anchors.empty()) {
      auto bytes = read_file_bytes(config.est_trust_anchors.string());
      if (!bytes.ok()) return bytes.error().within("estlab.est.trust-anchors");
      auto anchors = Certificate::parse_all(*bytes);
      if (!anchors.ok()) return anchors.error().within("estlab.est.trust-anchors " + config.est_trust_anchors.string());
      options.trust_anchors = std::move(anchors).value();
    } else {
      options.trust_anchors = truststore;
    }
    options.connect_timeout = config.upstream_connect_timeout;
    options.handshake_timeout = config.upstream_handshake_timeout;
    options.io_timeout = config.upstream_io_timeout;
    options.max_response_body = config.max_response_body;
    https_upstream.emplace(std::move(options), kWorkers, kUpstreamIdleReuse);
    return {};
  }

  void add_resource(EstOperation operation, const std::string& label) {
    auto route = std::make_unique<Route>();
    route->proxy = this;
    route->operation = operation;
    route->label = label;
    // fullcmc has no short path; the forward-fullcmc fault serves it under its long name.
    const std::string path = coaps_est_path(label, operation)
                                 .value_or(std::string(coaps_est_root) + (label.empty() ? "" : "/" + label) + "/" +
                                           std::string(to_string(operation)))
                                 .substr(1);  // libcoap paths have no leading '/'
    coap_resource_t* resource = coap_resource_init(coap_new_str_const(reinterpret_cast<const std::uint8_t*>(path.data()), path.size()),
                                                   COAP_RESOURCE_FLAGS_RELEASE_URI);
    coap_register_handler(resource, http_method(operation) == "GET" ? COAP_REQUEST_GET : COAP_REQUEST_POST, &Impl::handle);
    coap_resource_set_userdata(resource, route.get());
    auto attr = [resource](const std::string& name, const std::string& value) {
      coap_add_attr(resource, coap_new_str_const(reinterpret_cast<const std::uint8_t*>(name.data()), name.size()),
                    coap_new_str_const(reinterpret_cast<const std::uint8_t*>(value.data()), value.size()),
                    COAP_ATTR_FLAGS_RELEASE_NAME | COAP_ATTR_FLAGS_RELEASE_VALUE);
    };
    if (auto type = coaps_resource_type(operation)) attr("rt", quote_value(*type));
    attr("ct", std::to_string(coaps_response_format(operation)));
    coap_add_resource(context.get(), resource);  // the context owns the resource from here
    routes.push_back(std::move(route));
  }

  // RFC 6347 4.2.8: the device of this session came back from its address with a new handshake
  // and the cookie: the old session ends, quietly (its device is gone; a close_notify would reach
  // the new one), and with it what was in flight for it.
  void replace_session(const RehandshakeGuard::Replacement& replacement) {
    coap_address_t remote;
    coap_address_init(&remote);
    std::memcpy(&remote.addr, &replacement.remote, std::min<std::size_t>(replacement.remote_size, sizeof remote.addr));
    remote.size = replacement.remote_size;
    coap_session_t* session = coap_session_get_by_peer(context.get(), &remote, replacement.ifindex);
    if (session == nullptr || session != replacement.session) return;  // gone already
    std::vector<std::shared_ptr<Job>> orphans;
    for (const auto& [key, job] : in_flight)
      if (job->session == session) orphans.push_back(job);
    for (const auto& job : orphans) finish(*job);
    coap::end_quietly(session);
    if (log) {
      char address[INET6_ADDRSTRLEN + 8] = {};
      coap_print_addr(&remote, reinterpret_cast<std::uint8_t*>(address), sizeof address - 1);
      log(std::string("coap-proxy: remote=") + address + " came back with a new DTLS handshake (RFC 6347 4.2.8); its old session ends" +
          (orphans.empty() ? "" : ", " + std::to_string(orphans.size()) + " request(s) in flight dropped"));
    }
    coap_session_disconnected(session, COAP_NACK_TLS_FAILED);
  }

  // Returns whether the guard took datagrams off the socket (answered them itself).
  bool rehandshake_before_read() {
    if (!rehandshake) return false;
    const auto before = rehandshake->counters();
    if (auto replacement = rehandshake->before_read()) replace_session(*replacement);
    const auto& after = rehandshake->counters();
    if (after.cookies_sent != before.cookies_sent || after.sessions_replaced != before.sessions_replaced) {
      std::lock_guard lock(stats_mutex);
      stats.rehandshake_cookies = after.cookies_sent;
      stats.sessions_replaced = after.sessions_replaced;
    }
    return after.cookies_sent != before.cookies_sent;
  }

  // The loop sleeps until a datagram, a libcoap timer (its timerfd is in the epoll set behind
  // coap_fd) or a worker's answer wakes it; at least once a second regardless.
  //
  // libcoap reads only the sockets of the epoll snapshot taken here, after the guard looked at
  // them: coap_io_process would take a snapshot of its own, and a ClientHello arriving between
  // the guard's look (an empty socket) and that snapshot reached libcoap unseen (1 run in 6 of
  // ADeviceBackFromTheAddressOfALostSessionGetsANewHandshake under load).
  void run() noexcept {
    coap_context_t* ctx = context.get();
    const int coap_fd = coap_context_get_coap_fd(ctx);
    while (!stopping.load()) {
      ERR_clear_error();  // the ACKs below go through SSL_write: see coap::process_io
      const auto wait = acknowledge_slow_requests();
      pollfd fds[2] = {{wake_fd, POLLIN, 0}, {coap_fd, POLLIN, 0}};
      // Without epoll libcoap has no descriptor to wait on: poll it every 10 ms.
      ::poll(fds, coap_fd >= 0 ? 2 : 1, coap_fd >= 0 ? static_cast<int>(wait.count()) : 10);
      if (fds[0].revents & POLLIN) trigger_ready();
      if (coap_fd < 0) {  // a libcoap without epoll: the race above stays open
        rehandshake_before_read();
        coap::process_io(ctx, COAP_IO_NO_WAIT);
        continue;
      }
      std::array<epoll_event, 16> ready{};
      const int count = ::epoll_wait(coap_fd, ready.data(), static_cast<int>(ready.size()), 0);
      // A socket of the snapshot the guard emptied would have libcoap read what came after, unseen.
      const bool answered = count > 0 && rehandshake_before_read();
      // In coap_io_process's order: timers, triggered requests, and the release of a session
      // replace_session ended (else libcoap hands the new ClientHello to it), then the reads.
      coap::prepare_io(ctx);
      if (count > 0 && !answered) coap::do_io(ctx, ready.data(), static_cast<std::size_t>(count));
    }
  }
};

CoapProxy::CoapProxy(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

CoapProxy::~CoapProxy() { stop(); }

Result<std::unique_ptr<CoapProxy>> CoapProxy::start(const CoapProxyConfig& config, LogSink log, Upstream upstream,
                                                    ForwardObserver observer) {
  coap::ensure_started();
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  impl->log = std::move(log);
  impl->upstream = std::move(upstream);
  impl->observer = std::move(observer);
  impl->limits.max_request_body = config.max_request_body;
  impl->limits.default_max_age = config.default_max_age;
  try {
    impl->url = parse_upstream_url(config.est_url);
  } catch (const ConfigError& e) {
    return make_error(ErrorCode::invalid_input, e.what());
  }

  // PG-COAP-6: the DTLS server certificate must carry serverAuth.
  auto identity = TlsIdentity::load_pkcs12(config.tls_token, config.tls_token_password);
  if (!identity.ok()) return identity.error().within("tlsToken " + config.tls_token.string());
  impl->dtls_identity = std::move(identity).value();
  if (!impl->dtls_identity.certificate.has_extended_key_usage(oid::server_auth))
    return make_error(ErrorCode::policy_refused,
                      "PG-COAP-6: tlsToken " + config.tls_token.string() + ": the DTLS server certificate '" +
                          impl->dtls_identity.certificate.subject().to_string() +
                          "' lacks the extended key usage serverAuth (1.3.6.1.5.5.7.3.1); refusing to start");
  impl->note(std::string("PG-COAP-5 reading: estlab.duplicate-ca-subjects = ") + to_string(config.duplicate_ca_subjects));
  if (auto r = impl->build_truststore(); !r.ok()) return r.error();
  if (auto r = impl->make_upstream(); !r.ok()) return r.error();

  impl->context.reset(coap_new_context(nullptr));
  if (!impl->context) return make_error(ErrorCode::internal, "coap_new_context failed");
  coap_context_t* ctx = impl->context.get();
  coap_set_app_data(ctx, impl.get());  // the event handler finds its proxy here
  coap_context_set_block_mode(ctx, COAP_BLOCK_USE_LIBCOAP | COAP_BLOCK_SINGLE_BODY);
  coap_context_set_session_timeout(ctx, static_cast<unsigned>(config.session_idle_timeout.count()));
  // libcoap 4.3.1 keeps a session for each address that sent a ClientHello, before any cookie,
  // and ignores every new device once more than this many are unfinished (for 30 s each): with 64,
  // two spoofed ClientHellos a second lock all devices out. A few thousand cost ~1 KiB each.
  coap_context_set_max_handshake_sessions(ctx, 4096);
  coap_context_set_max_idle_sessions(ctx, 256);
  coap_register_event_handler(ctx, &Impl::on_event);

  impl->certificate_pem = impl->dtls_identity.certificate.pem();
  impl->key_pem = impl->dtls_identity.key.pkcs8_pem();
  coap_dtls_pki_t pki = coap::pki_setup(true, &Impl::tls_setup, impl.get());
  coap::set_pem_identity(pki, impl->certificate_pem, impl->key_pem);
  if (!coap_context_set_pki(ctx, &pki)) return make_error(ErrorCode::internal, "libcoap refused the DTLS PKI setup");

  const bool filtered = impl->has(ProxyFault::drop_fragmented_client_hello);
  auto address = filtered ? coap::resolve_udp("127.0.0.1", 0) : coap::resolve_udp(config.listen_host, config.port);
  if (!address.ok()) return address.error();
  coap_endpoint_t* endpoint = coap_new_endpoint(ctx, &*address, COAP_PROTO_DTLS);
  if (endpoint == nullptr)
    return make_error(ErrorCode::io, "cannot listen on udp " + config.listen_host + ":" + std::to_string(config.port) + " (in use?)");
  // "127.0.0.1:5684 DTLS" or "[::1]:5684 DTLS": the bound port, also when 0 was asked for.
  const std::string bound = coap_endpoint_str(endpoint);
  const std::size_t space = bound.rfind(' ');
  const std::size_t colon = bound.rfind(':', space);
  impl->port = static_cast<std::uint16_t>(std::stoi(bound.substr(colon + 1, space - colon - 1)));
  if (impl->has(ProxyFault::keep_lost_sessions)) {
    // The fault: libcoap 4.3.1 on its own.
  } else if (const int fd = RehandshakeGuard::find_endpoint_socket(impl->port); fd >= 0)
    impl->rehandshake.emplace(fd);
  else
    impl->note("cannot find the endpoint's socket: a device back from the address of a session it lost waits for that session to "
               "expire (RFC 6347 4.2.8 not served)");
  if (filtered) {
    network::Impairment bug;
    bug.drop_fragmented_client_hello = true;
    auto filter = network::ImpairedRelay::start("127.0.0.1", impl->port, bug, config.listen_host, config.port);
    if (!filter.ok()) return filter.error();
    impl->fault_filter = std::move(filter).value();
    impl->port = impl->fault_filter->port();
  }

  for (auto operation : all_est_operations) {
    // PG-COAP-3: no resource, so 4.04 and never forwarded.
    if (operation == EstOperation::fullcmc && !impl->has(ProxyFault::forward_fullcmc)) continue;
    impl->add_resource(operation, "");
    for (const auto& label : config.labels) impl->add_resource(operation, label);
  }
  impl->note("listening on coaps://" + config.listen_host + ":" + std::to_string(impl->port) + " -> " + config.est_url +
             " (PG-COAP-3: no fullcmc)");
  if (!config.faults.empty()) {
    std::string names;
    for (auto fault : config.faults) names += (names.empty() ? "" : ", ") + std::string(to_string(fault));
    impl->note("FAULTS (wrong on purpose): " + names);
  }
  impl->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (impl->wake_fd < 0) return make_error(ErrorCode::internal, "eventfd failed");
  Impl* self = impl.get();
  for (std::size_t i = 0; i < Impl::kWorkers; ++i) impl->workers.emplace_back([self] { self->work(); });
  impl->thread = std::thread([self] { self->run(); });
  return std::unique_ptr<CoapProxy>(new CoapProxy(std::move(impl)));
}

std::uint16_t CoapProxy::port() const { return impl_->port; }
const std::vector<Certificate>& CoapProxy::truststore() const { return impl_->truststore; }
const std::vector<std::string>& CoapProxy::startup_notes() const { return impl_->notes; }

ProxyStats CoapProxy::stats() const {
  std::lock_guard lock(impl_->stats_mutex);
  ProxyStats stats = impl_->stats;
  if (impl_->https_upstream) {
    stats.upstream_connections = impl_->https_upstream->connections_opened();
    stats.upstream_resumed = impl_->https_upstream->sessions_resumed();
    stats.upstream_resends = impl_->https_upstream->resends();
  }
  return stats;
}

void CoapProxy::stop() {
  if (!impl_) return;
  impl_->stopping.store(true);
  if (impl_->fault_filter) impl_->fault_filter->stop();
  if (impl_->wake_fd >= 0) impl_->wake();
  if (impl_->thread.joinable()) impl_->thread.join();
  {
    std::lock_guard lock(impl_->jobs_mutex);
    impl_->workers_stopping = true;
  }
  impl_->jobs_cv.notify_all();
  // A worker in an HTTPS exchange finishes it first: bounded by the upstream deadlines.
  for (auto& worker : impl_->workers)
    if (worker.joinable()) worker.join();
  while (!impl_->in_flight.empty()) {
    std::shared_ptr<Impl::Job> job = impl_->in_flight.begin()->second;
    impl_->finish(*job);
  }
  if (impl_->context) coap_set_app_data(impl_->context.get(), nullptr);
  impl_->context.reset();  // after the loop thread is gone: libcoap is used by one thread at a time
}

}  // namespace estlab::coap_proxy
