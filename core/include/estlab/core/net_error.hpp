// Readable text for a network error: OpenSSL's reason for TLS failures ("tlsv1 alert protocol
// version") rather than Asio's generic category text, and "timed out" for Beast's timer.
#pragma once

#include <boost/system/error_code.hpp>

#include <string>

namespace estlab {

std::string describe_network_error(const boost::system::error_code& ec);

}  // namespace estlab
