#include "estlab/core/encoding.hpp"

#include <algorithm>

#include "estlab/core/base64.hpp"

namespace estlab {

const char* to_string(Encoding encoding) {
  switch (encoding) {
    case Encoding::der: return "DER";
    case Encoding::pem: return "PEM";
    case Encoding::base64: return "base64";
    case Encoding::unknown: return "unknown";
  }
  return "unknown";
}

Result<std::size_t> der_element_length(ByteView data) {
  if (data.size() < 2) return make_error(ErrorCode::invalid_input, "DER: fewer than 2 bytes");
  if ((data[0] & 0x1f) == 0x1f) return make_error(ErrorCode::invalid_input, "DER: multi-byte tags are not expected here");
  std::size_t header = 2;
  std::size_t length = data[1];
  if (length == 0x80) return make_error(ErrorCode::invalid_input, "DER: indefinite length (BER) at offset 1");
  if (length > 0x80) {
    std::size_t count = length & 0x7f;
    if (count > 4) return make_error(ErrorCode::invalid_input, "DER: length of length " + std::to_string(count) + " is too large");
    if (data.size() < 2 + count) return make_error(ErrorCode::invalid_input, "DER: truncated length field");
    length = 0;
    for (std::size_t i = 0; i < count; ++i) length = (length << 8) | data[2 + i];
    if (data[2] == 0 || length < 0x80) return make_error(ErrorCode::invalid_input, "DER: non-minimal length encoding");
    header += count;
  }
  if (header + length > data.size()) {
    return make_error(ErrorCode::invalid_input, "DER: element says " + std::to_string(length) + " bytes but only " +
                                                    std::to_string(data.size() - header) + " follow");
  }
  return header + length;
}

Encoding detect_encoding(ByteView data) {
  if (data.empty()) return Encoding::unknown;
  if (data[0] == 0x30) {
    auto len = der_element_length(data);
    if (len.ok() && *len == data.size()) return Encoding::der;
  }
  std::string_view text = as_chars(data);
  if (text.find("-----BEGIN ") != std::string_view::npos) return Encoding::pem;
  bool any = false;
  for (char c : text) {
    bool b64 = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '=';
    bool ws = c == '\r' || c == '\n' || c == ' ' || c == '\t';
    if (!b64 && !ws) return Encoding::unknown;
    any = any || b64;
  }
  return any ? Encoding::base64 : Encoding::unknown;
}

std::string pem_encode(std::string_view label, ByteView der) {
  std::string out = "-----BEGIN " + std::string(label) + "-----\n";
  out += base64_encode(der, LineBreaks::every64_lf);
  out += "-----END " + std::string(label) + "-----\n";
  return out;
}

Result<std::vector<PemBlock>> pem_decode_all(std::string_view text) {
  std::vector<PemBlock> blocks;
  std::size_t pos = 0;
  auto line_of = [&](std::size_t offset) {
    return 1 + static_cast<std::size_t>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(offset), '\n'));
  };
  while (true) {
    std::size_t begin = text.find("-----BEGIN ", pos);
    if (begin == std::string_view::npos) break;
    std::size_t label_start = begin + 11;
    std::size_t label_end = text.find("-----", label_start);
    std::size_t eol = text.find('\n', label_start);
    std::string where = "PEM block " + std::to_string(blocks.size() + 1) + " at line " + std::to_string(line_of(begin));
    if (label_end == std::string_view::npos || (eol != std::string_view::npos && label_end > eol)) {
      return make_error(ErrorCode::invalid_input, where + ": malformed BEGIN line");
    }
    std::string label(text.substr(label_start, label_end - label_start));
    where = "PEM block " + std::to_string(blocks.size() + 1) + " (" + label + ") at line " + std::to_string(line_of(begin));
    std::string end_marker = "-----END " + label + "-----";
    std::size_t body_start = label_end + 5;
    std::size_t end = text.find(end_marker, body_start);
    if (end == std::string_view::npos) return make_error(ErrorCode::invalid_input, where + ": no matching END line");
    std::string_view body = text.substr(body_start, end - body_start);
    if (body.find("-----BEGIN ") != std::string_view::npos) {
      return make_error(ErrorCode::invalid_input, where + ": BEGIN inside the block");
    }
    if (body.find(':') != std::string_view::npos) {
      return make_error(ErrorCode::unsupported, where + ": encrypted or header-bearing PEM is not supported");
    }
    auto der = base64_decode(body);
    if (!der.ok()) return der.error().within(where);
    blocks.push_back(PemBlock{label, std::move(der).value()});
    pos = end + end_marker.size();
  }
  return blocks;
}

Result<Bytes> to_der(ByteView data, const std::vector<std::string_view>& labels, std::string_view what) {
  const std::string name(what);
  switch (detect_encoding(data)) {
    case Encoding::der: return Bytes(data.begin(), data.end());
    case Encoding::pem: {
      auto blocks = pem_decode_all(as_chars(data));
      if (!blocks.ok()) return blocks.error().within(name);
      for (auto& block : *blocks) {
        if (std::find(labels.begin(), labels.end(), block.label) != labels.end()) return std::move(block.der);
      }
      std::string expected;
      for (auto l : labels) expected += (expected.empty() ? "" : " or ") + std::string(l);
      return make_error(ErrorCode::invalid_input, name + ": no PEM block labelled " + expected);
    }
    case Encoding::base64: {
      auto der = base64_decode(as_chars(data));
      if (!der.ok()) return der.error().within(name);
      return der;
    }
    case Encoding::unknown: break;
  }
  if (!data.empty() && data[0] == 0x30) {
    auto len = der_element_length(data);
    if (!len.ok()) return len.error().within(name);
    return make_error(ErrorCode::invalid_input, name + ": " + std::to_string(data.size() - *len) +
                                                    " trailing bytes after the DER element");
  }
  return make_error(ErrorCode::invalid_input, name + ": neither DER, PEM nor base64");
}

}  // namespace estlab
