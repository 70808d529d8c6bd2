#include "estlab/core/ossl.hpp"

#include <array>

namespace estlab::ossl {

std::string drain_errors() {
  std::string out;
  unsigned long code = 0;
  const char* file = nullptr;
  int line = 0;
  while ((code = ERR_get_error_all(&file, &line, nullptr, nullptr, nullptr)) != 0) {
    std::array<char, 256> buffer{};
    ERR_error_string_n(code, buffer.data(), buffer.size());
    if (!out.empty()) out += "; ";
    out += buffer.data();
  }
  return out;
}

Error error(ErrorCode code, const std::string& what) {
  std::string reasons = drain_errors();
  if (reasons.empty()) return Error{code, what};
  return Error{code, what + " (" + reasons + ")"};
}

std::string bio_to_string(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  if (len <= 0 || data == nullptr) return {};
  return std::string(data, static_cast<std::size_t>(len));
}

}  // namespace estlab::ossl
