#include "estlab/core/csrattrs.hpp"

#include <algorithm>
#include <charconv>
#include <limits>

#include "estlab/core/der.hpp"
#include "estlab/core/encoding.hpp"
#include "estlab/core/oids.hpp"

namespace estlab {
namespace {

Error invalid(std::string message) { return make_error(ErrorCode::invalid_input, std::move(message)); }

// --- names

// Names the spec syntax knows beyond OpenSSL's.
struct Alias {
  std::string_view name;
  std::string_view dotted;
};
// OpenSSL calls extensionRequest "extReq" / "Extension Request"; the RFCs' name reads better.
constexpr Alias kAliases[] = {{"macAddress", oid::mac_address}, {"extensionRequest", oid::extension_request}};

// Dotted form of a name or dotted OID; empty when unknown.
std::string resolve_oid(std::string_view name_or_oid) {
  for (const auto& alias : kAliases) {
    if (alias.name == name_or_oid) return std::string(alias.dotted);
  }
  if (name_or_oid.empty()) return {};
  if (std::all_of(name_or_oid.begin(), name_or_oid.end(), [](char c) { return (c >= '0' && c <= '9') || c == '.'; })) {
    return der::encode_oid(name_or_oid).empty() ? std::string{} : std::string(name_or_oid);
  }
  return oid::to_dotted(name_or_oid);
}

bool is_token_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
}

// The name to print for an OID: a short name only if it reads back as the same OID in the spec
// syntax, else the dotted form.
std::string oid_token(const std::string& dotted) {
  for (const auto& alias : kAliases) {
    if (alias.dotted == dotted) return std::string(alias.name);
  }
  std::string name = oid::short_name(dotted);
  if (name == dotted || name.empty()) return dotted;
  if (!std::all_of(name.begin(), name.end(), is_token_char) || resolve_oid(name) != dotted) return dotted;
  return name;
}

// --- values in the spec syntax

// extensions with empty extnValue and no critical flag: "ext(a b)"; nullopt when not that shape.
std::optional<std::string> extension_templates_text(ByteView content) {
  der::Reader reader(content);
  std::string out;
  while (!reader.empty()) {
    auto ext = reader.expect(der::kSequence, "Extension");
    if (!ext.ok()) return std::nullopt;
    der::Reader fields(ext->content);
    auto id = fields.next("extnID");
    if (!id.ok()) return std::nullopt;
    auto dotted = der::decode_oid(*id, "extnID");
    auto value = fields.expect(der::kOctetString, "extnValue");
    if (!dotted.ok() || !value.ok() || !value->content.empty() || !fields.empty()) return std::nullopt;
    out += (out.empty() ? "" : " ") + oid_token(*dotted);
  }
  if (out.empty()) return std::nullopt;
  return "ext(" + out + ")";
}

std::string value_text(ByteView der) {
  der::Reader reader(der);
  auto value = reader.next("value");
  if (value.ok() && reader.empty()) {
    if (value->tag == der::kOid) {
      auto dotted = der::decode_oid(*value, "value");
      if (dotted.ok()) return oid_token(*dotted);
    } else if (value->tag == der::kInteger) {
      if (auto n = der::decode_integer(*value)) return std::to_string(*n);
    } else if (value->tag == der::kUtf8String) {
      std::string_view text = as_chars(value->content);
      // Printable ASCII only: anything else goes out as der: so the text form stays one line.
      if (std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c < 0x7f; })) {
        std::string out = "\"";
        for (char c : text) {
          if (c == '"' || c == '\\') out += '\\';
          out += c;
        }
        return out + "\"";
      }
    } else if (value->tag == der::kSequence) {
      if (auto ext = extension_templates_text(value->content)) return *ext;
    }
  }
  return "der:" + to_hex(der);
}

std::string entry_text(const CsrAttrEntry& entry) {
  std::string out = oid_token(entry.oid);
  if (!entry.values) return out;
  out += "=";
  for (std::size_t i = 0; i < entry.values->size(); ++i) out += (i == 0 ? "" : "+") + value_text((*entry.values)[i]);
  return out;
}

Bytes encode_entries(const std::vector<CsrAttrEntry>& entries) {
  Bytes content;
  for (const auto& entry : entries) {
    Bytes oid = der::encode_oid(entry.oid);
    if (!entry.values) {
      der::append(content, oid);
      continue;
    }
    Bytes attribute = oid;
    der::append(attribute, der::encode_set_of(*entry.values));
    der::append(content, der::encode_sequence(attribute));
  }
  return der::encode_sequence(content);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// Splits at `separator` outside double quotes and parentheses.
Result<std::vector<std::string_view>> split_top(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  bool quoted = false;
  int depth = 0;
  std::size_t start = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '\\') ++i;
      else if (c == '"') quoted = false;
      continue;
    }
    if (c == '"') quoted = true;
    else if (c == '(') ++depth;
    else if (c == ')' && --depth < 0) return invalid("')' without '('");
    else if (c == separator && depth == 0) {
      parts.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  if (quoted) return invalid("unterminated quoted string");
  if (depth != 0) return invalid("'(' without ')'");
  parts.push_back(text.substr(start));
  return parts;
}

Result<Bytes> parse_value(std::string_view text) {
  if (text.empty()) return invalid("empty value");
  if (text.front() == '"') {
    if (text.size() < 2 || text.back() != '"') return invalid("quoted string must end with '\"'");
    std::string out;
    std::string_view inner = text.substr(1, text.size() - 2);
    for (std::size_t i = 0; i < inner.size(); ++i) {
      if (inner[i] == '\\') {
        if (++i == inner.size()) return invalid("'\\' at the end of a quoted string");
      } else if (inner[i] == '"') {
        return invalid("unescaped '\"' inside a quoted string");
      }
      out += inner[i];
    }
    return der::encode_utf8_string(out);
  }
  if (text.starts_with("der:")) {
    auto der = from_hex(text.substr(4));
    if (!der.ok()) return der.error();
    auto checked = der::check_one_element(*der);
    if (!checked.ok()) return checked.error().within("der:");
    return der;
  }
  if (text.starts_with("ext(")) {
    if (text.back() != ')') return invalid("ext( must end with ')'");
    std::string_view inner = text.substr(4, text.size() - 5);
    Bytes extensions;
    std::size_t pos = 0;
    while (pos < inner.size()) {
      std::size_t end = inner.find_first_of(" \t", pos);
      if (end == std::string_view::npos) end = inner.size();
      std::string_view name = inner.substr(pos, end - pos);
      pos = end + 1;
      if (name.empty()) continue;
      std::string dotted = resolve_oid(name);
      if (dotted.empty()) return invalid("unknown extension OID or name \"" + std::string(name) + "\"");
      Bytes extension = der::encode_oid(dotted);
      der::append(extension, der::encode_octet_string({}));
      der::append(extensions, der::encode_sequence(extension));
    }
    if (extensions.empty()) return invalid("ext() names no extension");
    return der::encode_sequence(extensions);
  }
  std::string_view digits = text.front() == '-' ? text.substr(1) : text;
  if (!digits.empty() && std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    std::int64_t n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc{} || end != text.data() + text.size()) return invalid("integer out of range");
    return der::encode_integer(n);
  }
  std::string dotted = resolve_oid(text);
  if (dotted.empty()) return invalid("unknown OID or name \"" + std::string(text) + "\"");
  return der::encode_oid(dotted);
}

// A rendered item name for errors: "item 3 (\"foo=bar\")".
std::string item_label(std::size_t index, std::string_view item) {
  return "item " + std::to_string(index) + " \"" + std::string(item) + "\"";
}

}  // namespace

// --- CsrAttrs

Result<CsrAttrs> CsrAttrs::from_der(ByteView der) {
  const std::string what = "CSR attributes";
  auto outer = der::read_single(der, der::kSequence, what);
  if (!outer.ok()) return outer.error();

  CsrAttrs attrs;
  der::Reader items(outer->content);
  for (std::size_t index = 1; !items.empty(); ++index) {
    const std::string entry_what = what + ": entry " + std::to_string(index);
    auto item = items.next(entry_what);
    if (!item.ok()) return item.error();
    if (item->tag == der::kOid) {
      auto dotted = der::decode_oid(*item, entry_what);
      if (!dotted.ok()) return dotted.error();
      attrs.entries_.push_back({std::move(dotted).value(), std::nullopt});
      continue;
    }
    if (item->tag != der::kSequence) {
      return invalid(entry_what + ": " + der::tag_name(item->tag) +
                     " is neither an OBJECT IDENTIFIER nor an Attribute SEQUENCE");
    }
    der::Reader fields(item->content);
    auto type = fields.next(entry_what + " type");
    if (!type.ok()) return type.error();
    auto dotted = der::decode_oid(*type, entry_what + " type");
    if (!dotted.ok()) return dotted.error();
    const std::string named = entry_what + " (" + oid_token(*dotted) + ")";
    auto set = fields.expect(der::kSet, named + " values");
    if (!set.ok()) return set.error();
    if (!fields.empty()) return invalid(named + ": unexpected element after the values SET");
    std::vector<Bytes> values;
    der::Reader elements(set->content);
    while (!elements.empty()) {
      auto value = elements.next(named + " value " + std::to_string(values.size() + 1));
      if (!value.ok()) return value.error();
      if (der::is_constructed(value->tag)) {
        auto checked = der::check_tree(value->content);
        if (!checked.ok()) return checked.error().within(named + " value " + std::to_string(values.size() + 1));
      }
      values.emplace_back(value->whole.begin(), value->whole.end());
    }
    // RFC 7030 4.5.2: values SET SIZE (1..MAX); an empty SET has no meaning.
    if (values.empty()) return invalid(named + ": the values SET is empty (SIZE (1..MAX))");
    attrs.entries_.push_back({std::move(dotted).value(), std::move(values)});
  }
  // Kept as received: a conformance report shows what the server sent, even an unsorted SET.
  attrs.der_.assign(der.begin(), der.end());
  return attrs;
}

Result<CsrAttrs> CsrAttrs::parse(ByteView data) {
  auto der = to_der(data, {"CSR ATTRIBUTES"}, "CSR attributes");
  if (!der.ok()) return der.error();
  return from_der(*der);
}

bool CsrAttrs::contains_oid(std::string_view oid_or_name) const {
  std::string dotted = resolve_oid(oid_or_name);
  return std::any_of(entries_.begin(), entries_.end(), [&](const CsrAttrEntry& e) { return e.oid == dotted; });
}

const CsrAttrEntry* CsrAttrs::find_attribute(std::string_view oid_or_name) const {
  std::string dotted = resolve_oid(oid_or_name);
  for (const auto& entry : entries_) {
    if (entry.is_attribute() && entry.oid == dotted) return &entry;
  }
  return nullptr;
}

std::optional<std::string> CsrAttrs::required_ec_curve() const {
  const CsrAttrEntry* entry = find_attribute(oid::id_ec_public_key);
  if (entry == nullptr) return std::nullopt;
  der::Reader reader(entry->values->front());
  auto value = reader.next("curve");
  if (!value.ok()) return std::nullopt;
  auto dotted = der::decode_oid(*value, "curve");
  if (!dotted.ok()) return std::nullopt;
  return std::move(dotted).value();
}

std::optional<int> CsrAttrs::required_rsa_bits() const {
  const CsrAttrEntry* entry = find_attribute(oid::rsa_encryption);
  if (entry == nullptr) return std::nullopt;
  der::Reader reader(entry->values->front());
  auto value = reader.next("size");
  if (!value.ok()) return std::nullopt;
  auto bits = der::decode_integer(*value);
  if (!bits || *bits <= 0 || *bits > std::numeric_limits<int>::max()) return std::nullopt;
  return static_cast<int>(*bits);
}

std::vector<std::string> CsrAttrs::extension_request_oids() const {
  std::vector<std::string> out;
  for (const auto& entry : entries_) {
    if (!entry.is_attribute() || entry.oid != oid::extension_request) continue;
    for (const auto& value_der : *entry.values) {
      der::Reader reader(value_der);
      auto value = reader.next("value");
      if (!value.ok()) continue;
      if (value->tag == der::kOid) {
        if (auto dotted = der::decode_oid(*value, "value"); dotted.ok()) out.push_back(std::move(dotted).value());
        continue;
      }
      if (value->tag != der::kSequence) continue;
      der::Reader extensions(value->content);
      while (!extensions.empty()) {
        auto ext = extensions.expect(der::kSequence, "Extension");
        if (!ext.ok()) break;
        der::Reader fields(ext->content);
        auto id = fields.next("extnID");
        if (!id.ok()) break;
        if (auto dotted = der::decode_oid(*id, "extnID"); dotted.ok()) out.push_back(std::move(dotted).value());
      }
    }
  }
  return out;
}

std::string CsrAttrs::to_text() const {
  std::string out;
  for (const auto& entry : entries_) out += entry_text(entry) + "\n";
  return out;
}

std::optional<KeyType> CsrAttrs::required_key_type() const {
  if (auto curve = required_ec_curve()) {
    if (*curve == "1.2.840.10045.3.1.7") return KeyType::ec_p256;
    if (*curve == "1.3.132.0.34") return KeyType::ec_p384;
    return std::nullopt;
  }
  if (auto bits = required_rsa_bits()) {
    if (*bits == 2048) return KeyType::rsa2048;
    if (*bits == 3072) return KeyType::rsa3072;
    if (*bits == 4096) return KeyType::rsa4096;
    return std::nullopt;
  }
  if (contains_oid("1.3.101.112")) return KeyType::ed25519;
  return std::nullopt;
}

std::string key_type_csrattrs_spec(KeyType type) {
  switch (type) {
    case KeyType::ec_p256: return "ecdsa-with-SHA256, id-ecPublicKey=prime256v1";
    case KeyType::ec_p384: return "ecdsa-with-SHA384, id-ecPublicKey=secp384r1";
    case KeyType::rsa2048: return "sha256WithRSAEncryption, rsaEncryption=2048";
    case KeyType::rsa3072: return "sha256WithRSAEncryption, rsaEncryption=3072";
    case KeyType::rsa4096: return "sha256WithRSAEncryption, rsaEncryption=4096";
    case KeyType::ed25519: return "ED25519";
  }
  return "";
}

std::string CsrAttrs::to_spec() const {
  std::string out;
  for (const auto& entry : entries_) out += (out.empty() ? "" : ", ") + entry_text(entry);
  return out;
}

// --- CsrAttrsBuilder

void CsrAttrsBuilder::fail(std::string message) {
  if (!error_) error_ = invalid("CSR attributes: entry " + std::to_string(entries_.size() + 1) + ": " + std::move(message));
}

CsrAttrsBuilder& CsrAttrsBuilder::add_oid(std::string_view oid_or_name) {
  std::string dotted = resolve_oid(oid_or_name);
  if (dotted.empty()) fail("unknown OID or name \"" + std::string(oid_or_name) + "\"");
  entries_.push_back({std::move(dotted), std::nullopt});
  return *this;
}

CsrAttrsBuilder& CsrAttrsBuilder::add_attribute(std::string_view oid_or_name, std::vector<Bytes> values_der) {
  std::string dotted = resolve_oid(oid_or_name);
  if (dotted.empty()) fail("unknown OID or name \"" + std::string(oid_or_name) + "\"");
  if (values_der.empty()) fail("an Attribute needs at least one value");
  for (std::size_t i = 0; i < values_der.size(); ++i) {
    auto checked = der::check_one_element(values_der[i]);
    if (!checked.ok()) fail("value " + std::to_string(i + 1) + ": " + checked.error().message);
  }
  entries_.push_back({std::move(dotted), std::move(values_der)});
  return *this;
}

CsrAttrsBuilder& CsrAttrsBuilder::require_ec_curve(std::string_view curve) {
  std::string dotted = resolve_oid(curve);
  if (dotted.empty()) {
    fail("unknown curve \"" + std::string(curve) + "\"");
    entries_.push_back({std::string(oid::id_ec_public_key), std::vector<Bytes>{}});
    return *this;
  }
  return add_attribute(oid::id_ec_public_key, {der::encode_oid(dotted)});
}

CsrAttrsBuilder& CsrAttrsBuilder::require_rsa_bits(int bits) {
  if (bits <= 0) fail("RSA key size " + std::to_string(bits) + " is not positive");
  return add_attribute(oid::rsa_encryption, {der::encode_integer(bits)});
}

CsrAttrsBuilder& CsrAttrsBuilder::add_extension_request(const std::vector<RawExtension>& extensions) {
  Bytes content;
  for (const auto& ext : extensions) {
    std::string dotted = resolve_oid(ext.oid);
    if (dotted.empty()) {
      fail("unknown extension OID or name \"" + ext.oid + "\"");
      continue;
    }
    Bytes extension = der::encode_oid(dotted);
    if (ext.critical) der::append(extension, Bytes{0x01, 0x01, 0xff});  // DEFAULT FALSE: only TRUE is encoded
    der::append(extension, der::encode_octet_string(ext.value_der));
    der::append(content, der::encode_sequence(extension));
  }
  if (extensions.empty()) fail("extensionRequest needs at least one extension");
  return add_attribute(oid::extension_request, {der::encode_sequence(content)});
}

Result<CsrAttrs> CsrAttrsBuilder::build() const {
  if (error_) return *error_;
  CsrAttrs attrs;
  attrs.entries_ = entries_;
  // Values as DER sorts them, so entries() matches what from_der(der()) gives back.
  for (auto& entry : attrs.entries_) {
    if (entry.values) der::sort_set_of(*entry.values);
  }
  attrs.der_ = encode_entries(attrs.entries_);
  return attrs;
}

// --- the spec syntax

Result<CsrAttrs> parse_csrattrs_spec(std::string_view spec) {
  const std::string what = "CSR attributes spec";
  CsrAttrsBuilder builder;
  if (trim(spec).empty()) return builder.build();
  auto items = split_top(spec, ',');
  if (!items.ok()) return items.error().within(what);
  for (std::size_t index = 1; index <= items->size(); ++index) {
    std::string_view item = trim((*items)[index - 1]);
    const std::string label = what + ": " + item_label(index, item);
    if (item.empty()) return invalid(what + ": item " + std::to_string(index) + " is empty");
    std::size_t eq = item.find('=');
    std::string_view name = trim(item.substr(0, eq));
    std::string dotted = resolve_oid(name);
    if (dotted.empty()) return invalid(label + ": unknown OID or name \"" + std::string(name) + "\"");
    if (eq == std::string_view::npos) {
      builder.add_oid(dotted);
      continue;
    }
    auto parts = split_top(item.substr(eq + 1), '+');
    if (!parts.ok()) return parts.error().within(label);
    std::vector<Bytes> values;
    for (std::string_view part : *parts) {
      auto value = parse_value(trim(part));
      if (!value.ok()) return value.error().within(label);
      values.push_back(std::move(value).value());
    }
    builder.add_attribute(dotted, std::move(values));
  }
  return builder.build();
}

namespace {

// Key algorithms whose requirement is an attribute (RFC 9908 3.2): EC with a curve, RSA with a size,
// and the parameterless EdDSA ones.
bool is_key_algorithm(std::string_view dotted) {
  return dotted == oid::id_ec_public_key || dotted == oid::rsa_encryption || dotted == "1.3.101.112" || dotted == "1.3.101.113";
}

// Named curves a legacy answer lists as bare OIDs (RFC 7030 A.2's brainpoolP384r1).
bool is_curve(std::string_view dotted) {
  return dotted == "1.2.840.10045.3.1.7" || dotted == "1.3.132.0.34" || dotted == "1.3.132.0.35" ||
         dotted.rfind("1.3.36.3.3.2.8.1.1.", 0) == 0;
}

// Signature algorithms: ecdsa-with-SHA*, sha*WithRSAEncryption, RSASSA-PSS, Ed25519/Ed448.
bool is_signature_algorithm(std::string_view dotted) {
  return dotted.rfind("1.2.840.10045.4.", 0) == 0 || dotted == "1.2.840.113549.1.1.5" || dotted == "1.2.840.113549.1.1.10" ||
         dotted == "1.2.840.113549.1.1.11" || dotted == "1.2.840.113549.1.1.12" || dotted == "1.2.840.113549.1.1.13" ||
         dotted == "1.3.101.112" || dotted == "1.3.101.113";
}

// X.509 certificate extensions (id-ce, id-pe): requested as bare OIDs, they belong in extensionRequest.
bool is_certificate_extension(std::string_view dotted) {
  return dotted.rfind("2.5.29.", 0) == 0 || dotted.rfind("1.3.6.1.5.5.7.1.", 0) == 0;
}

}  // namespace

std::vector<CsrAttrsFinding> lint_csrattrs(const CsrAttrs& attrs) {
  std::vector<CsrAttrsFinding> out;
  int extension_requests = 0;
  std::vector<std::string> key_types;
  for (const auto& entry : attrs.entries()) {
    if (!entry.is_attribute()) {
      if (is_curve(entry.oid))
        out.push_back({"csrattrs-3.2-b", true, "curve " + entry.oid + " is a bare OID; RFC 9908 puts it in an id-ecPublicKey attribute"});
      else if (is_key_algorithm(entry.oid) && entry.oid != "1.3.101.112" && entry.oid != "1.3.101.113")
        out.push_back({"7030-4.5.2-f", false, "key algorithm " + entry.oid + " is a bare OID; an attribute carries its parameters"});
      else if (is_certificate_extension(entry.oid))
        out.push_back({"7030-4.5.2-f", false, "extension " + entry.oid + " is a bare OID; extensions belong inside extensionRequest"});
      continue;
    }
    if (is_signature_algorithm(entry.oid) && !is_key_algorithm(entry.oid))
      out.push_back({"7030-4.5.2-f", false, "signature scheme " + entry.oid + " is an attribute; it is a bare OID"});
    if (entry.oid == oid::extension_request) {
      ++extension_requests;
      if (entry.values->size() != 1)
        out.push_back({"csrattrs-3.2-a", false, "extensionRequest holds " + std::to_string(entry.values->size()) + " values; exactly one Extensions"});
      for (const auto& value_der : *entry.values) {
        der::Reader reader(value_der);
        auto value = reader.next("extensionRequest value");
        if (!value.ok()) continue;
        if (value->tag == der::kOid) {
          out.push_back({"csrattrs-3.2-a", true, "extensionRequest holds a bare OID (RFC 7030 4.5.2 style), not an Extensions"});
          continue;
        }
        if (value->tag != der::kSequence) {
          out.push_back({"csrattrs-3.2-a", false, "extensionRequest value is a " + der::tag_name(value->tag) + ", not an Extensions SEQUENCE"});
          continue;
        }
        std::vector<std::string> ids;
        der::Reader extensions(value->content);
        while (!extensions.empty()) {
          auto ext = extensions.expect(der::kSequence, "Extension");
          if (!ext.ok()) {
            out.push_back({"csrattrs-3.2-a", false, "extensionRequest: " + ext.error().message});
            break;
          }
          der::Reader fields(ext->content);
          auto id = fields.expect(der::kOid, "extnID");
          auto dotted = id.ok() ? der::decode_oid(*id, "extnID") : Result<std::string>(id.error());
          if (!dotted.ok()) {
            out.push_back({"csrattrs-3.2-a", false, "extensionRequest: " + dotted.error().message});
            break;
          }
          if (std::find(ids.begin(), ids.end(), *dotted) != ids.end())
            out.push_back({"csrattrs-3.2-a", false, "extensionRequest repeats extnID " + *dotted});
          ids.push_back(*dotted);
        }
      }
    }
    if (is_key_algorithm(entry.oid)) {
      key_types.push_back(entry.oid);
      for (const auto& value_der : *entry.values) {
        der::Reader reader(value_der);
        auto value = reader.next("parameter");
        if (!value.ok()) continue;
        const bool fits = entry.oid == oid::id_ec_public_key ? value->tag == der::kOid
                          : entry.oid == oid::rsa_encryption ? value->tag == der::kInteger
                                                             : false;
        if (!fits)
          out.push_back({"csrattrs-3.2-b", false, "key type " + entry.oid + " carries a " + der::tag_name(value->tag) +
                                                       (entry.oid == oid::id_ec_public_key ? "; its parameter is a curve OID"
                                                        : entry.oid == oid::rsa_encryption ? "; its parameter is an INTEGER size"
                                                                                          : "; it takes no parameters")});
      }
    }
  }
  if (extension_requests > 1)
    out.push_back({"csrattrs-3.2-a", false, std::to_string(extension_requests) + " extensionRequest attributes; exactly one"});
  if (key_types.size() > 1)
    out.push_back({"csrattrs-3.2-b", false, std::to_string(key_types.size()) + " key-type attributes; exactly one"});
  return out;
}

}  // namespace estlab
