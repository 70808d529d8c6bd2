// --transcript DIR: one YAML file per exchange (request and response as sent, with the DER parts
// decoded to text), numbered in arrival order, so a field bug can be read and replayed.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <string>

#include "estlab/core/result.hpp"
#include "estlab/gateway/service.hpp"

namespace estlab::gateway {

class TranscriptWriter {
 public:
  // Creates the directory; an error names it when that fails.
  // Credentials in headers are redacted unless show_secrets (printable_header_value).
  static Result<std::unique_ptr<TranscriptWriter>> open(const std::filesystem::path& dir, bool show_secrets = false);

  // Returns the file written; errors are reported, never thrown (the exchange already happened).
  Result<std::filesystem::path> record(const EstRequest& request, const EstResponse& response, const Decision& decision,
                                       std::chrono::microseconds elapsed);

  TranscriptWriter(std::filesystem::path dir, bool show_secrets) : dir_(std::move(dir)), show_secrets_(show_secrets) {}

 private:
  std::filesystem::path dir_;
  bool show_secrets_ = false;
  std::atomic<std::uint64_t> sequence_{0};
};

// "time=... conn=... op=... status=..." for one handled request.
std::string log_line(const EstRequest& request, const Decision& decision, std::string_view profile,
                     std::chrono::microseconds elapsed);

}  // namespace estlab::gateway
