#include "estlab/ca/profile.hpp"

#include "estlab/core/extensions.hpp"
#include "estlab/core/oids.hpp"

namespace estlab::ca {

CertificateProfile CertificateProfile::device() {
  CertificateProfile p;
  p.name = "device";
  p.extended_key_usages = {std::string(oid::client_auth)};
  return p;
}

CertificateProfile CertificateProfile::tls_server() {
  CertificateProfile p;
  p.name = "tls-server";
  p.extended_key_usages = {std::string(oid::server_auth)};
  return p;
}

CertificateProfile CertificateProfile::officer() {
  CertificateProfile p;
  p.name = "officer";
  p.extended_key_usages = {std::string(oid::client_auth)};
  p.policies = {std::string(oid::estlab_officer_role)};
  return p;
}

CertificateProfile CertificateProfile::cmc_ra() {
  CertificateProfile p;
  p.name = "cmc-ra";
  p.extended_key_usages = {std::string(oid::cmc_ra)};
  return p;
}

CertificateProfile CertificateProfile::no_eku() {
  CertificateProfile p;
  p.name = "no-eku";
  return p;
}

CertificateProfile CertificateProfile::sub_ca(std::optional<int> path_length) {
  CertificateProfile p;
  p.name = "sub-ca";
  p.ca = true;
  p.path_length = path_length;
  p.key_usage = key_usage::key_cert_sign | key_usage::crl_sign | key_usage::digital_signature;
  p.copy_requested_san = false;
  return p;
}

}  // namespace estlab::ca
