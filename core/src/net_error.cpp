#include "estlab/core/net_error.hpp"

#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/error.hpp>
#include <openssl/err.h>

namespace estlab {

std::string describe_network_error(const boost::system::error_code& ec) {
  if (ec == boost::beast::error::timeout) return "timed out";
  if (ec.category() == boost::asio::error::get_ssl_category()) {
    char buffer[256];
    ERR_error_string_n(static_cast<unsigned long>(ec.value()), buffer, sizeof(buffer));
    return buffer;
  }
  return ec.message();
}

}  // namespace estlab
