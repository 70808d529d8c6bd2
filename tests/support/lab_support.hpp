// A fresh lab per test: a fixture set generated once per test process (about 0.3 s) and copied
// into a private directory for each TestLab, so tests that issue or revoke never see each other.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <string>

#include "estlab/ca/ca.hpp"
#include "estlab/core/certificate.hpp"
#include "estlab/core/tls.hpp"
#include "estlab/fixtures/fixture_set.hpp"

namespace estlab::test {

namespace lab_fs = std::filesystem;

inline const lab_fs::path& template_lab_dir() {
  static const lab_fs::path dir = [] {
    const lab_fs::path path = lab_fs::temp_directory_path() / ("estlab-test-template-" + std::to_string(::getpid()));
    lab_fs::remove_all(path);
    fixtures::GenerateOptions options;
    options.dir = path;
    auto set = fixtures::generate(options);
    if (!set.ok()) throw std::runtime_error("generating the test lab: " + set.error().message);
    std::atexit([] {
      std::error_code ec;
      lab_fs::remove_all(lab_fs::temp_directory_path() / ("estlab-test-template-" + std::to_string(::getpid())), ec);
    });
    return path;
  }();
  return dir;
}

class TestLab {
 public:
  TestLab() {
    static std::atomic<int> counter{0};
    dir_ = lab_fs::temp_directory_path() /
           ("estlab-test-lab-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    lab_fs::remove_all(dir_);
    lab_fs::copy(template_lab_dir(), dir_, lab_fs::copy_options::recursive);
  }
  ~TestLab() {
    std::error_code ec;
    lab_fs::remove_all(dir_, ec);
  }
  TestLab(const TestLab&) = delete;
  TestLab& operator=(const TestLab&) = delete;

  const lab_fs::path& dir() const { return dir_; }
  lab_fs::path path(const std::string& relative) const { return dir_ / relative; }
  lab_fs::path est_properties() const { return dir_ / "config" / "est.properties"; }

  // An identity by fixture item name ("device-factory", "ra-officer", ...): its chain file and key.
  TlsIdentity identity(const std::string& item) const {
    const auto* entry = set().find(item);
    if (entry == nullptr) throw std::runtime_error("no fixture item " + item);
    auto identity = TlsIdentity::load(dir_ / entry->chain, dir_ / entry->key);
    if (!identity.ok()) throw std::runtime_error(identity.error().message);
    return std::move(identity).value();
  }
  Certificate certificate(const std::string& item) const {
    const auto* entry = set().find(item);
    if (entry == nullptr) throw std::runtime_error("no fixture item " + item);
    auto bytes = read_file_bytes((dir_ / entry->certificate).string());
    if (!bytes.ok()) throw std::runtime_error(bytes.error().message);
    auto cert = Certificate::parse(*bytes);
    if (!cert.ok()) throw std::runtime_error(cert.error().message);
    return std::move(cert).value();
  }
  std::vector<Certificate> trust_anchors() const {
    auto bytes = read_file_bytes((dir_ / "trust" / "anchors.pem").string());
    return Certificate::parse_all(*bytes).value();
  }
  std::shared_ptr<ca::SimulatedCa> open_ca() const {
    auto ca = ca::SimulatedCa::open({dir_ / "lab.db"});
    if (!ca.ok()) throw std::runtime_error(ca.error().message);
    return std::shared_ptr<ca::SimulatedCa>(std::move(ca).value());
  }

 private:
  const fixtures::FixtureSet& set() const {
    std::call_once(loaded_once_, [this] {
      auto loaded = fixtures::load(dir_);
      if (!loaded.ok()) throw std::runtime_error(loaded.error().message);
      set_ = std::move(loaded).value();
    });
    return set_;
  }

  lab_fs::path dir_;
  mutable std::once_flag loaded_once_;
  mutable fixtures::FixtureSet set_;
};

}  // namespace estlab::test
