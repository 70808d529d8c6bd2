#include "serve.hpp"

#include <pthread.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <system_error>

#include <unistd.h>

namespace estlab::cli {

StopSignals::StopSignals() {
  sigemptyset(&signals_);
  sigaddset(&signals_, SIGINT);
  sigaddset(&signals_, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
}

int StopSignals::wait() {
  int signal_number = 0;
  sigwait(&signals_, &signal_number);
  return signal_number;
}

std::string write_port_file(const std::string& path, std::uint16_t port) {
  // A script polls for the file: renamed into place, it is either absent or complete.
  const std::string temporary = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << port << "\n";
    out.close();
    if (!out) {
      std::error_code ignored;
      std::filesystem::remove(temporary, ignored);
      return "cannot write the port file " + path;
    }
  }
  std::error_code ec;
  std::filesystem::rename(temporary, path, ec);
  if (ec) {
    std::filesystem::remove(temporary, ec);
    return "cannot write the port file " + path + ": " + ec.message();
  }
  return {};
}

}  // namespace estlab::cli
