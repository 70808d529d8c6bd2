#include "estlab/core/extensions.hpp"

#include <arpa/inet.h>

#include <array>
#include <sstream>

#include "estlab/core/oids.hpp"

namespace estlab {
namespace {

ossl::Asn1Object object_of(const std::string& oid_text) {
  return ossl::Asn1Object(OBJ_txt2obj(oid_text.c_str(), 0));
}

std::string dotted(const ASN1_OBJECT* obj) {
  char buffer[128];
  int n = OBJ_obj2txt(buffer, sizeof buffer, obj, 1);
  return n > 0 ? std::string(buffer) : std::string();
}

std::string ip_to_text(const ASN1_OCTET_STRING* ip) {
  const unsigned char* data = ASN1_STRING_get0_data(ip);
  int len = ASN1_STRING_length(ip);
  std::array<char, INET6_ADDRSTRLEN> buffer{};
  if (len == 4) inet_ntop(AF_INET, data, buffer.data(), buffer.size());
  else if (len == 16) inet_ntop(AF_INET6, data, buffer.data(), buffer.size());
  else return "invalid-ip(" + std::to_string(len) + " bytes)";
  return buffer.data();
}

std::string string_of(const ASN1_STRING* s) {
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), static_cast<std::size_t>(ASN1_STRING_length(s)));
}

Result<ossl::X509Extension> encode(int nid, bool critical, void* value, const std::string& what) {
  ossl::X509Extension ext(X509V3_EXT_i2d(nid, critical ? 1 : 0, value));
  if (!ext) return ossl::error(ErrorCode::invalid_input, "cannot encode the " + what + " extension");
  return ext;
}

}  // namespace

Result<SubjectAltName> SubjectAltName::parse(std::string_view text) {
  auto colon = text.find(':');
  if (colon == std::string_view::npos) {
    return make_error(ErrorCode::invalid_input, "SAN '" + std::string(text) + "': expected TYPE:value (DNS, IP, email, URI)");
  }
  std::string type(text.substr(0, colon));
  std::string value(text.substr(colon + 1));
  for (auto& c : type) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (type == "DNS") return dns(value);
  if (type == "IP") return ip(value);
  if (type == "EMAIL") return email(value);
  if (type == "URI") return uri(value);
  return make_error(ErrorCode::invalid_input, "SAN '" + std::string(text) + "': unknown type '" + type + "' (DNS, IP, email, URI)");
}

std::string SubjectAltName::to_string() const {
  switch (kind) {
    case Kind::dns: return "DNS:" + value;
    case Kind::ip: return "IP:" + value;
    case Kind::email: return "email:" + value;
    case Kind::uri: return "URI:" + value;
    case Kind::other: return "other:" + value;
  }
  return value;
}

namespace key_usage {
namespace {
constexpr std::array<std::pair<std::uint32_t, const char*>, 9> kNames = {{
    {KU_DIGITAL_SIGNATURE, "digitalSignature"}, {KU_NON_REPUDIATION, "nonRepudiation"},
    {KU_KEY_ENCIPHERMENT, "keyEncipherment"},   {KU_DATA_ENCIPHERMENT, "dataEncipherment"},
    {KU_KEY_AGREEMENT, "keyAgreement"},         {KU_KEY_CERT_SIGN, "keyCertSign"},
    {KU_CRL_SIGN, "cRLSign"},                   {KU_ENCIPHER_ONLY, "encipherOnly"},
    {KU_DECIPHER_ONLY, "decipherOnly"},
}};
}  // namespace

std::string to_string(std::uint32_t bits) {
  std::string out;
  for (auto [bit, name] : kNames) {
    if (bits & bit) out += (out.empty() ? "" : ",") + std::string(name);
  }
  return out;
}

Result<std::uint32_t> parse(std::string_view text) {
  std::uint32_t bits = 0;
  std::stringstream in{std::string(text)};
  std::string item;
  while (std::getline(in, item, ',')) {
    auto b = item.find_first_not_of(' ');
    auto e = item.find_last_not_of(' ');
    if (b == std::string::npos) continue;
    item = item.substr(b, e - b + 1);
    bool found = false;
    for (auto [bit, name] : kNames) {
      if (item == name) {
        bits |= bit;
        found = true;
      }
    }
    if (!found) return make_error(ErrorCode::invalid_input, "key usage: unknown bit '" + item + "'");
  }
  return bits;
}
}  // namespace key_usage

namespace ext {

Result<ossl::X509Extension> subject_alt_name(const std::vector<SubjectAltName>& names, bool critical) {
  ossl::GeneralNames gens(sk_GENERAL_NAME_new_null());
  for (const auto& san : names) {
    ossl::GeneralName gen(GENERAL_NAME_new());
    switch (san.kind) {
      case SubjectAltName::Kind::dns:
      case SubjectAltName::Kind::email:
      case SubjectAltName::Kind::uri: {
        ossl::Asn1String ia5(ASN1_IA5STRING_new());
        ASN1_STRING_set(ia5.get(), san.value.data(), static_cast<int>(san.value.size()));
        int type = san.kind == SubjectAltName::Kind::dns ? GEN_DNS : san.kind == SubjectAltName::Kind::email ? GEN_EMAIL : GEN_URI;
        GENERAL_NAME_set0_value(gen.get(), type, ia5.release());  // gen owns it now
        break;
      }
      case SubjectAltName::Kind::ip: {
        ossl::Asn1OctetString ip(a2i_IPADDRESS(san.value.c_str()));
        if (!ip) return ossl::error(ErrorCode::invalid_input, "SAN IP '" + san.value + "' is not an IPv4 or IPv6 address");
        GENERAL_NAME_set0_value(gen.get(), GEN_IPADD, ip.release());  // gen owns it now
        break;
      }
      case SubjectAltName::Kind::other:
        return make_error(ErrorCode::unsupported, "SAN otherName cannot be built from text");
    }
    sk_GENERAL_NAME_push(gens.get(), gen.release());  // the stack owns it now
  }
  return encode(NID_subject_alt_name, critical, gens.get(), "subjectAltName");
}

Result<ossl::X509Extension> extended_key_usage(const std::vector<std::string>& oids, bool critical) {
  ossl::ExtKeyUsage eku(sk_ASN1_OBJECT_new_null());
  for (const auto& o : oids) {
    ossl::Asn1Object obj = object_of(o);
    if (!obj) return ossl::error(ErrorCode::invalid_input, "extended key usage '" + o + "' is not an OID or known name");
    sk_ASN1_OBJECT_push(eku.get(), obj.release());  // the stack owns it now
  }
  return encode(NID_ext_key_usage, critical, eku.get(), "extendedKeyUsage");
}

Result<ossl::X509Extension> key_usage(std::uint32_t bits, bool critical) {
  ossl::Asn1BitString bs(ASN1_BIT_STRING_new());
  // Bit numbers of RFC 5280 KeyUsage, in the order of the key_usage constants' names.
  constexpr std::array<std::pair<std::uint32_t, int>, 9> positions = {{
      {KU_DIGITAL_SIGNATURE, 0}, {KU_NON_REPUDIATION, 1}, {KU_KEY_ENCIPHERMENT, 2}, {KU_DATA_ENCIPHERMENT, 3},
      {KU_KEY_AGREEMENT, 4},     {KU_KEY_CERT_SIGN, 5},   {KU_CRL_SIGN, 6},         {KU_ENCIPHER_ONLY, 7},
      {KU_DECIPHER_ONLY, 8},
  }};
  for (auto [bit, position] : positions) {
    if (bits & bit) ASN1_BIT_STRING_set_bit(bs.get(), position, 1);
  }
  return encode(NID_key_usage, critical, bs.get(), "keyUsage");
}

Result<ossl::X509Extension> basic_constraints(bool ca, std::optional<int> path_length, bool critical) {
  ossl::BasicConstraints bc(BASIC_CONSTRAINTS_new());
  bc->ca = ca ? 0xff : 0;
  if (ca && path_length) {
    bc->pathlen = ASN1_INTEGER_new();
    ASN1_INTEGER_set(bc->pathlen, *path_length);
  }
  return encode(NID_basic_constraints, critical, bc.get(), "basicConstraints");
}

Result<ossl::X509Extension> certificate_policies(const std::vector<std::string>& oids) {
  ossl::CertPolicies policies(sk_POLICYINFO_new_null());
  for (const auto& o : oids) {
    POLICYINFO* info = POLICYINFO_new();
    sk_POLICYINFO_push(policies.get(), info);  // the stack owns it now
    ASN1_OBJECT_free(info->policyid);
    info->policyid = OBJ_txt2obj(o.c_str(), 0);
    if (info->policyid == nullptr) return ossl::error(ErrorCode::invalid_input, "certificate policy '" + o + "' is not an OID");
  }
  return encode(NID_certificate_policies, false, policies.get(), "certificatePolicies");
}

Result<ossl::X509Extension> raw(const RawExtension& raw) {
  ossl::Asn1Object obj = object_of(raw.oid);
  if (!obj) return ossl::error(ErrorCode::invalid_input, "extension OID '" + raw.oid + "' is not valid");
  ossl::Asn1OctetString value(ASN1_OCTET_STRING_new());
  ASN1_OCTET_STRING_set(value.get(), raw.value_der.data(), static_cast<int>(raw.value_der.size()));
  ossl::X509Extension ext(X509_EXTENSION_create_by_OBJ(nullptr, obj.get(), raw.critical ? 1 : 0, value.get()));
  if (!ext) return ossl::error(ErrorCode::invalid_input, "cannot build extension " + raw.oid);
  return ext;
}

std::vector<SubjectAltName> read_subject_alt_names(const STACK_OF(X509_EXTENSION) * exts) {
  std::vector<SubjectAltName> out;
  ossl::GeneralNames gens(static_cast<GENERAL_NAMES*>(X509V3_get_d2i(exts, NID_subject_alt_name, nullptr, nullptr)));
  if (!gens) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(gens.get()); ++i) {
    const GENERAL_NAME* gen = sk_GENERAL_NAME_value(gens.get(), i);
    switch (gen->type) {
      case GEN_DNS: out.push_back(SubjectAltName::dns(string_of(gen->d.dNSName))); break;
      case GEN_EMAIL: out.push_back(SubjectAltName::email(string_of(gen->d.rfc822Name))); break;
      case GEN_URI: out.push_back(SubjectAltName::uri(string_of(gen->d.uniformResourceIdentifier))); break;
      case GEN_IPADD: out.push_back(SubjectAltName::ip(ip_to_text(gen->d.iPAddress))); break;
      default: out.push_back({SubjectAltName::Kind::other, "type " + std::to_string(gen->type)}); break;
    }
  }
  return out;
}

std::vector<std::string> read_extended_key_usages(const STACK_OF(X509_EXTENSION) * exts) {
  std::vector<std::string> out;
  ossl::ExtKeyUsage eku(static_cast<EXTENDED_KEY_USAGE*>(X509V3_get_d2i(exts, NID_ext_key_usage, nullptr, nullptr)));
  if (!eku) return out;
  for (int i = 0; i < sk_ASN1_OBJECT_num(eku.get()); ++i) out.push_back(dotted(sk_ASN1_OBJECT_value(eku.get(), i)));
  return out;
}

std::vector<RawExtension> read_all(const STACK_OF(X509_EXTENSION) * exts) {
  std::vector<RawExtension> out;
  for (int i = 0; i < sk_X509_EXTENSION_num(exts); ++i) {
    X509_EXTENSION* e = sk_X509_EXTENSION_value(exts, i);
    const ASN1_OCTET_STRING* data = X509_EXTENSION_get_data(e);
    const unsigned char* p = ASN1_STRING_get0_data(data);
    out.push_back({dotted(X509_EXTENSION_get_object(e)), X509_EXTENSION_get_critical(e) != 0,
                   Bytes(p, p + ASN1_STRING_length(data))});
  }
  return out;
}

}  // namespace ext
}  // namespace estlab
