// Shared helpers of the core unit tests: the openssl-made data under tests/data/core/ (see make.sh
// there), the values expected.txt records for them, keys generated once per test process, and a
// way to ask the openssl command for a second opinion.
#pragma once

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "estlab/core/bytes.hpp"
#include "estlab/core/clock.hpp"
#include "estlab/core/key.hpp"

namespace estlab::test {

inline std::string data_path(std::string_view name) {
  return std::string(ESTLAB_TEST_DATA_DIR) + "/core/" + std::string(name);
}

// The bytes of a data file; a missing file is a broken checkout, so it throws (the test errors).
inline Bytes read_data(std::string_view name) {
  auto bytes = read_file_bytes(data_path(name));
  if (!bytes.ok()) throw std::runtime_error(bytes.error().message + " (run tests/data/core/make.sh)");
  return std::move(bytes).value();
}

inline std::string read_text(std::string_view name) {
  Bytes b = read_data(name);
  return std::string(b.begin(), b.end());
}

// expected.txt as key -> value ("leaf.serial" -> "0a1b2c3d4e5f").
inline const std::map<std::string, std::string>& expected_values() {
  static const std::map<std::string, std::string> values = [] {
    std::map<std::string, std::string> out;
    std::istringstream in(read_text("expected.txt"));
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      auto eq = line.find('=');
      if (eq == std::string::npos) continue;
      out[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return out;
  }();
  return values;
}

inline std::string expected(const std::string& key) {
  const auto& values = expected_values();
  auto it = values.find(key);
  if (it == values.end()) throw std::runtime_error("expected.txt has no key '" + key + "' (run make.sh)");
  return it->second;
}

inline std::vector<std::string> split(std::string_view text, std::string_view separator) {
  std::vector<std::string> out;
  if (text.empty()) return out;
  std::size_t pos = 0;
  while (true) {
    auto next = text.find(separator, pos);
    out.emplace_back(text.substr(pos, next == std::string_view::npos ? std::string_view::npos : next - pos));
    if (next == std::string_view::npos) break;
    pos = next + separator.size();
  }
  return out;
}

// "2025-01-01T00:00:00Z" -> TimePoint.
inline TimePoint utc(const std::string& iso) {
  std::tm tm{};
  if (std::sscanf(iso.c_str(), "%d-%d-%dT%d:%d:%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                  &tm.tm_sec) != 6) {
    throw std::runtime_error("bad time '" + iso + "'");
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

inline std::string sha256_hex(ByteView data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return to_hex(ByteView(md, len));
}

// One key per type per test process. RSA keys come from the pool in tests/data/core (made by
// make.sh): RSA 4096 generation takes seconds and every test is a process of its own. Tests of
// generation itself call PrivateKey::generate.
inline const PrivateKey& cached_key(KeyType type) {
  static std::mutex mutex;
  static std::map<KeyType, PrivateKey> keys;
  std::lock_guard lock(mutex);
  auto it = keys.find(type);
  if (it == keys.end()) {
    const bool pooled = type == KeyType::rsa2048 || type == KeyType::rsa3072 || type == KeyType::rsa4096;
    auto key = pooled ? PrivateKey::parse(read_data("pool-" + std::string(to_string(type)) + ".key.pem")) : PrivateKey::generate(type);
    if (!key.ok()) throw std::runtime_error("cannot generate " + std::string(to_string(type)) + ": " + key.error().message);
    it = keys.emplace(type, std::move(key).value()).first;
  }
  return it->second;
}

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

inline CommandResult run_command(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) result.output.append(buffer, n);
  int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

inline bool openssl_available() {
  static const bool available = run_command("openssl version").exit_code == 0;
  return available;
}

#define ESTLAB_REQUIRE_OPENSSL_COMMAND() \
  if (!::estlab::test::openssl_available()) GTEST_SKIP() << "the openssl command is not installed"

// A test that shows a known bug in core/src: skipped so the suite stays green until the fix lands.
// ESTLAB_UNSKIP_CORE_BUGS=1 in the environment runs them anyway (to see them fail, or pass after a fix).
#define ESTLAB_SKIP_CORE_BUG(why)                             \
  if (std::getenv("ESTLAB_UNSKIP_CORE_BUGS") == nullptr) GTEST_SKIP() << "core bug: " << why

// A file in a private temporary directory, removed with the object.
class TempFile {
 public:
  explicit TempFile(std::string_view name) {
    static std::atomic<int> counter{0};
    dir_ = std::filesystem::temp_directory_path() /
           ("estlab-core-tests-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / std::string(name)).string();
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  const std::string& path() const { return path_; }
  void write(ByteView bytes) const {
    auto written = write_file_bytes(path_, bytes);
    if (!written.ok()) throw std::runtime_error(written.error().message);
  }
  void write(std::string_view text) const { write(as_bytes(text)); }

 private:
  std::filesystem::path dir_;
  std::string path_;
};

}  // namespace estlab::test
