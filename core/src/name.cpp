#include "estlab/core/name.hpp"

#include <openssl/objects.h>

#include "estlab/core/oids.hpp"

namespace estlab {
namespace oid {

std::string to_dotted(std::string_view name_or_oid) {
  ossl::Asn1Object obj(OBJ_txt2obj(std::string(name_or_oid).c_str(), 0));
  ERR_clear_error();
  if (!obj) return {};
  char buffer[128];
  int n = OBJ_obj2txt(buffer, sizeof buffer, obj.get(), 1);
  if (n <= 0 || n >= static_cast<int>(sizeof buffer)) return {};
  return buffer;
}

std::string short_name(std::string_view dotted) {
  ossl::Asn1Object obj(OBJ_txt2obj(std::string(dotted).c_str(), 1));
  ERR_clear_error();
  if (!obj) return std::string(dotted);
  int nid = OBJ_obj2nid(obj.get());
  if (nid == NID_undef) return std::string(dotted);
  return OBJ_nid2sn(nid);
}

}  // namespace oid

namespace {

std::string attribute_type_name(const ASN1_OBJECT* obj) {
  int nid = OBJ_obj2nid(obj);
  if (nid != NID_undef) return OBJ_nid2sn(nid);
  char buffer[128];
  OBJ_obj2txt(buffer, sizeof buffer, obj, 1);
  return buffer;
}

Result<Bytes> encode_name(const X509_NAME* name) {
  Bytes der = ossl::i2d_bytes(i2d_X509_NAME, name);
  if (der.empty()) return ossl::error(ErrorCode::internal, "cannot DER-encode the name");
  return der;
}

}  // namespace

DistinguishedName::DistinguishedName() {
  ossl::X509Name empty(X509_NAME_new());
  if (empty) {
    auto der = encode_name(empty.get());
    if (der.ok()) der_ = std::move(der).value();
  }
}

Result<DistinguishedName> DistinguishedName::from_native(const X509_NAME* name) {
  if (name == nullptr) return make_error(ErrorCode::invalid_input, "name: missing");
  DistinguishedName dn;
  int count = X509_NAME_entry_count(name);
  for (int i = 0; i < count; ++i) {
    const X509_NAME_ENTRY* entry = X509_NAME_get_entry(name, i);
    const ASN1_STRING* data = X509_NAME_ENTRY_get_data(entry);
    unsigned char* utf8 = nullptr;
    int len = ASN1_STRING_to_UTF8(&utf8, data);
    if (len < 0) return ossl::error(ErrorCode::invalid_input, "name: attribute " + std::to_string(i + 1) + " is not a string");
    std::string value(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(len));
    OPENSSL_free(utf8);
    dn.attributes_.push_back({attribute_type_name(X509_NAME_ENTRY_get_object(entry)), std::move(value)});
  }
  auto der = encode_name(name);
  if (!der.ok()) return der.error();
  dn.der_ = std::move(der).value();
  return dn;
}

Result<DistinguishedName> DistinguishedName::from_der(ByteView der) {
  const unsigned char* p = der.data();
  ossl::X509Name name(d2i_X509_NAME(nullptr, &p, static_cast<long>(der.size())));
  if (!name) return ossl::error(ErrorCode::invalid_input, "name: not a DER Name");
  if (p != der.data() + der.size()) {
    return make_error(ErrorCode::invalid_input,
                      "name: " + std::to_string(der.data() + der.size() - p) + " trailing bytes after the DER Name");
  }
  return from_native(name.get());
}

Result<DistinguishedName> DistinguishedName::parse(std::string_view text) {
  ossl::ErrorQueueGuard guard;
  bool slash_form = !text.empty() && text.front() == '/';
  char separator = slash_form ? '/' : ',';
  // Split on unescaped separators; keep escapes so trimming can tell "\ " (a space in the value)
  // from padding around the separator.
  std::vector<std::string> parts;
  std::string current;
  for (std::size_t i = slash_form ? 1 : 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\\' && i + 1 < text.size()) {
      current += c;
      current += text[++i];
      continue;
    }
    if (c == separator) {
      parts.push_back(current);
      current.clear();
      continue;
    }
    current += c;
  }
  if (!current.empty() || !parts.empty()) parts.push_back(current);

  auto trim_unescaped = [](const std::string& s) {
    std::size_t b = 0;
    while (b < s.size() && (s[b] == ' ' || s[b] == '\t')) ++b;
    std::size_t e = s.size();
    while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) {
      std::size_t backslashes = 0;
      for (std::size_t k = e - 1; k > b && s[k - 1] == '\\'; --k) ++backslashes;
      if (backslashes % 2 == 1) break;  // escaped: part of the value
      --e;
    }
    return s.substr(b, e - b);
  };
  auto unescape = [](const std::string& s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '\\' && i + 1 < s.size()) ++i;
      out += s[i];
    }
    return out;
  };

  ossl::X509Name name(X509_NAME_new());
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const std::string& part = parts[i];
    auto eq = part.find('=');
    if (eq == std::string::npos) {
      return make_error(ErrorCode::invalid_input, "name '" + std::string(text) + "': attribute " + std::to_string(i + 1) +
                                                      " ('" + unescape(part) + "') has no '='");
    }
    std::string type = unescape(trim_unescaped(part.substr(0, eq)));
    std::string value = unescape(trim_unescaped(part.substr(eq + 1)));
    if (type.empty()) {
      return make_error(ErrorCode::invalid_input, "name '" + std::string(text) + "': attribute " + std::to_string(i + 1) + " has no type");
    }
    if (X509_NAME_add_entry_by_txt(name.get(), type.c_str(), MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(value.data()),
                                   static_cast<int>(value.size()), -1, 0) != 1) {
      return ossl::error(ErrorCode::invalid_input,
                         "name '" + std::string(text) + "': attribute '" + type + "=" + value + "' is not valid");
    }
  }
  return from_native(name.get());
}

std::optional<std::string> DistinguishedName::common_name() const {
  for (const auto& a : attributes_) {
    if (a.type == "CN") return a.value;
  }
  return std::nullopt;
}

std::string DistinguishedName::to_string() const {
  std::string out;
  for (const auto& a : attributes_) {
    if (!out.empty()) out += ',';
    out += a.type;
    out += '=';
    for (std::size_t i = 0; i < a.value.size(); ++i) {
      char c = a.value[i];
      // Leading and trailing spaces are escaped so parse() keeps them (RFC 4514 2.4).
      bool edge_space = (c == ' ' || c == '\t') && (i == 0 || i + 1 == a.value.size());
      if (c == ',' || c == '+' || c == '=' || c == '\\' || c == '/' || edge_space) out += '\\';
      out += c;
    }
  }
  return out;
}

ossl::X509Name DistinguishedName::to_native() const {
  const unsigned char* p = der_.data();
  return ossl::X509Name(d2i_X509_NAME(nullptr, &p, static_cast<long>(der_.size())));
}

bool DistinguishedName::operator==(const DistinguishedName& other) const {
  auto a = to_native();
  auto b = other.to_native();
  if (!a || !b) return der_ == other.der_;
  return X509_NAME_cmp(a.get(), b.get()) == 0;
}

}  // namespace estlab
