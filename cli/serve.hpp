// What the long-running commands (gateway, coap-proxy, relay, idm) share: they serve until
// SIGINT/SIGTERM and tell scripts the port they listen on.
#pragma once

#include <csignal>
#include <cstdint>
#include <string>

namespace estlab::cli {

// Blocks SIGINT and SIGTERM for this thread and every thread started after it, so that only
// wait() sees them: construct it before the server starts its threads.
class StopSignals {
 public:
  StopSignals();
  // Returns the signal that asked to stop.
  int wait();

 private:
  sigset_t signals_;
};

// Writes "<port>\n" to `path` so that a reader never sees a partial file (a temporary file renamed
// into place). Returns "" or what went wrong, naming the file.
std::string write_port_file(const std::string& path, std::uint16_t port);

}  // namespace estlab::cli
