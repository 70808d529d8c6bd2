#include "estlab/core/der.hpp"

#include <algorithm>
#include <utility>

#include "estlab/core/encoding.hpp"
#include "estlab/core/ossl.hpp"

namespace estlab::der {
namespace {

Error invalid(std::string message) { return make_error(ErrorCode::invalid_input, std::move(message)); }

Result<void> check_tree_at(ByteView data, int depth, int max_depth) {
  if (depth > max_depth) return invalid("DER nesting deeper than " + std::to_string(max_depth));
  Reader reader(data);
  while (!reader.empty()) {
    auto element = reader.next("DER element");
    if (!element.ok()) return element.error();
    if (is_constructed(element->tag)) {
      auto inner = check_tree_at(element->content, depth + 1, max_depth);
      if (!inner.ok()) return inner;
    }
  }
  return {};
}

}  // namespace

std::string tag_name(std::uint8_t tag) {
  switch (tag) {
    case kBoolean: return "BOOLEAN";
    case kInteger: return "INTEGER";
    case kBitString: return "BIT STRING";
    case kOctetString: return "OCTET STRING";
    case kNull: return "NULL";
    case kOid: return "OBJECT IDENTIFIER";
    case kUtf8String: return "UTF8String";
    case kPrintableString: return "PrintableString";
    case kIa5String: return "IA5String";
    case kSequence: return "SEQUENCE";
    case kSet: return "SET";
    default: break;
  }
  if ((tag & 0xc0) == 0x80) return "[" + std::to_string(tag & 0x1f) + "]";
  return "tag 0x" + to_hex(ByteView(&tag, 1));
}

std::optional<std::uint8_t> Reader::peek_tag() const {
  if (rest_.empty()) return std::nullopt;
  return rest_[0];
}

// der_element_length rejects indefinite, non-minimal and overlong lengths and multi-byte tags,
// so the header size below follows from the second octet and nothing can read past the buffer.
Result<Element> Reader::next(const std::string& what) {
  if (rest_.empty()) return invalid(what + " is missing");
  auto length = der_element_length(rest_);
  if (!length.ok()) return length.error().within(what);
  std::size_t header = rest_[1] < 0x80 ? 2 : 2 + (rest_[1] & 0x7f);
  Element element{rest_[0], rest_.subspan(header, *length - header), rest_.first(*length)};
  rest_ = rest_.subspan(*length);
  return element;
}

Result<Element> Reader::expect(std::uint8_t tag, const std::string& what) {
  auto element = next(what);
  if (!element.ok()) return element;
  if (element->tag != tag) return invalid(what + ": " + tag_name(element->tag) + " where " + tag_name(tag) + " was expected");
  return element;
}

Result<Element> read_single(ByteView data, std::uint8_t tag, const std::string& what) {
  Reader reader(data);
  auto element = reader.expect(tag, what);
  if (!element.ok()) return element;
  if (!reader.empty()) {
    return invalid(what + ": " + std::to_string(reader.remaining()) + " trailing bytes after the " + tag_name(tag));
  }
  return element;
}

Result<void> check_tree(ByteView data, int max_depth) { return check_tree_at(data, 0, max_depth); }

Result<void> check_one_element(ByteView data, int max_depth) {
  if (data.empty()) return invalid("empty value");
  auto length = der_element_length(data);
  if (!length.ok()) return length.error();
  if (*length != data.size()) return invalid(std::to_string(data.size() - *length) + " bytes after the DER element");
  return check_tree(data, max_depth);
}

Result<std::string> decode_oid(const Element& element, const std::string& what) {
  if (element.tag != kOid) return invalid(what + ": " + tag_name(element.tag) + " where OBJECT IDENTIFIER was expected");
  ossl::ErrorQueueGuard guard;
  const unsigned char* p = element.whole.data();
  ossl::Asn1Object obj(d2i_ASN1_OBJECT(nullptr, &p, static_cast<long>(element.whole.size())));
  if (!obj || p != element.whole.data() + element.whole.size()) return invalid(what + ": malformed OBJECT IDENTIFIER");
  int needed = OBJ_obj2txt(nullptr, 0, obj.get(), 1);
  if (needed <= 0) return invalid(what + ": malformed OBJECT IDENTIFIER");
  std::string text(static_cast<std::size_t>(needed) + 1, '\0');
  OBJ_obj2txt(text.data(), needed + 1, obj.get(), 1);
  text.resize(static_cast<std::size_t>(needed));
  return text;
}

std::optional<std::int64_t> decode_integer(const Element& element) {
  ByteView content = element.content;
  if (element.tag != kInteger || content.empty() || content.size() > 8) return std::nullopt;
  if (content.size() > 1 && ((content[0] == 0x00 && content[1] < 0x80) || (content[0] == 0xff && content[1] >= 0x80))) {
    return std::nullopt;  // not minimal: not DER
  }
  std::uint64_t value = (content[0] & 0x80) != 0 ? ~std::uint64_t{0} : 0;
  for (std::uint8_t b : content) value = (value << 8) | b;
  return static_cast<std::int64_t>(value);
}

Bytes encode_tlv(std::uint8_t tag, ByteView content) {
  Bytes out{tag};
  std::size_t n = content.size();
  if (n < 0x80) {
    out.push_back(static_cast<std::uint8_t>(n));
  } else {
    Bytes length;
    for (; n > 0; n >>= 8) length.insert(length.begin(), static_cast<std::uint8_t>(n & 0xff));
    out.push_back(static_cast<std::uint8_t>(0x80 | length.size()));
    append(out, length);
  }
  append(out, content);
  return out;
}

Bytes encode_integer(std::int64_t value) {
  Bytes content;
  // Two's complement, big-endian, minimal: drop leading octets that only repeat the sign.
  for (int shift = 56; shift >= 0; shift -= 8) content.push_back(static_cast<std::uint8_t>((value >> shift) & 0xff));
  std::size_t skip = 0;
  while (skip + 1 < content.size() &&
         ((content[skip] == 0x00 && content[skip + 1] < 0x80) || (content[skip] == 0xff && content[skip + 1] >= 0x80))) {
    ++skip;
  }
  return encode_tlv(kInteger, ByteView(content).subspan(skip));
}

// OpenSSL's parser is looser ("1..2" passes), so the syntax is checked before it sees the text.
bool is_dotted_oid(std::string_view text) {
  std::size_t arcs = 0;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t end = text.find('.', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view arc = text.substr(pos, end - pos);
    if (arc.empty() || arc.size() > 20 || (arc.size() > 1 && arc[0] == '0')) return false;
    if (!std::all_of(arc.begin(), arc.end(), [](char c) { return c >= '0' && c <= '9'; })) return false;
    if (arcs == 0 && (arc.size() > 1 || arc[0] > '2')) return false;
    ++arcs;
    pos = end + 1;
  }
  return arcs >= 2;
}

Bytes encode_oid(std::string_view dotted) {
  if (!is_dotted_oid(dotted)) return {};
  ossl::ErrorQueueGuard guard;
  ossl::Asn1Object obj(OBJ_txt2obj(std::string(dotted).c_str(), 1));
  if (!obj) return {};
  return ossl::i2d_bytes(i2d_ASN1_OBJECT, obj.get());
}

bool set_of_less(const Bytes& a, const Bytes& b) {
  std::size_t n = std::max(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    std::uint8_t x = i < a.size() ? a[i] : 0;
    std::uint8_t y = i < b.size() ? b[i] : 0;
    if (x != y) return x < y;
  }
  return false;
}

void sort_set_of(std::vector<Bytes>& elements) { std::stable_sort(elements.begin(), elements.end(), set_of_less); }

Bytes encode_set_of(std::vector<Bytes> elements) {
  sort_set_of(elements);
  Bytes content;
  for (const auto& element : elements) append(content, element);
  return encode_tlv(kSet, content);
}

}  // namespace estlab::der
