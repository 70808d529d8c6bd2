// `estlab ca`: the simulated CA from the shell, also the control hook a target file can call
// (revoke a serial, publish a CRL) when the suite drives a lab started elsewhere.
#include <fstream>
#include <iostream>

#include "commands.hpp"
#include "estlab/ca/ca.hpp"
#include "estlab/core/bytes.hpp"

namespace estlab::cli {
namespace {

struct CaOptions {
  std::string store = "lab.db";
  std::string ca_label = "issuing";
  std::string csr_file;
  std::string profile = "device";
  std::string out;
  std::string serial;
  std::string reason = "unspecified";
  std::string subject;
};

int fail(const std::string& what, const Error& error) {
  std::cerr << "estlab ca " << what << ": " << error.message << "\n";
  return error.code == ErrorCode::invalid_input || error.code == ErrorCode::not_found ? kExitUsage : kExitFailed;
}

Result<ca::CertificateProfile> profile_named(const std::string& name) {
  if (name == "device") return ca::CertificateProfile::device();
  if (name == "tls-server") return ca::CertificateProfile::tls_server();
  if (name == "officer") return ca::CertificateProfile::officer();
  if (name == "cmc-ra") return ca::CertificateProfile::cmc_ra();
  if (name == "no-eku") return ca::CertificateProfile::no_eku();
  return make_error(ErrorCode::invalid_input,
                    "unknown profile '" + name + "' (valid: device, tls-server, officer, cmc-ra, no-eku)");
}

int emit(const std::string& out, const std::string& text) {
  if (out.empty() || out == "-") {
    std::cout << text;
    return kExitOk;
  }
  if (auto r = write_file_bytes(out, as_bytes(text)); !r.ok()) return fail("output", r.error());
  return kExitOk;
}

Result<std::unique_ptr<ca::SimulatedCa>> open_store(const CaOptions& o) {
  if (!std::filesystem::exists(o.store)) {
    return make_error(ErrorCode::not_found, "store " + o.store + " does not exist (make one with `estlab fixtures DIR`)");
  }
  return ca::SimulatedCa::open({o.store});
}

}  // namespace

void register_ca(CLI::App& app, Action& action) {
  auto o = std::make_shared<CaOptions>();
  CLI::App* cmd = app.add_subcommand("ca", "Use the simulated CA: list CAs, issue, revoke, publish CRLs");
  cmd->add_option("--store", o->store, "The CA store (lab.db of a fixture directory)")->capture_default_str();
  cmd->require_subcommand(1);

  CLI::App* list = cmd->add_subcommand("list", "List the CAs and how many certificates each issued");
  list->callback([o, &action] {
    action = [o] {
      auto ca = open_store(*o);
      if (!ca.ok()) return fail("list", ca.error());
      auto cas = (*ca)->list();
      if (!cas.ok()) return fail("list", cas.error());
      for (const auto& info : *cas) {
        auto issued = (*ca)->list_issued(info.label);
        std::cout << info.label << "\t" << info.role << "\t" << (info.open ? "open" : "closed") << "\tgen "
                  << info.generation << "\t" << info.certificate.subject().to_string() << "\tissued "
                  << (issued.ok() ? issued->size() : 0) << "\n";
      }
      return kExitOk;
    };
  });

  CLI::App* issue = cmd->add_subcommand("issue", "Issue a certificate for a CSR (PEM, DER or base64)");
  issue->add_option("--ca", o->ca_label, "Issuing CA label")->capture_default_str();
  issue->add_option("--csr", o->csr_file, "CSR file")->required();
  issue->add_option("--profile", o->profile, "device, tls-server, officer, cmc-ra, no-eku")->capture_default_str();
  issue->add_option("--out", o->out, "Write the certificate (PEM) here instead of stdout");
  issue->callback([o, &action] {
    action = [o] {
      auto profile = profile_named(o->profile);
      if (!profile.ok()) return fail("issue", profile.error());
      auto bytes = read_file_bytes(o->csr_file);
      if (!bytes.ok()) return fail("issue", bytes.error());
      auto csr = Csr::parse(*bytes);
      if (!csr.ok()) return fail("issue", csr.error().within(o->csr_file));
      auto ca = open_store(*o);
      if (!ca.ok()) return fail("issue", ca.error());
      auto cert = (*ca)->issue(o->ca_label, *csr, *profile);
      if (!cert.ok()) return fail("issue", cert.error());
      std::cerr << "issued serial " << cert->serial_hex() << " to " << cert->subject().to_string() << "\n";
      return emit(o->out, cert->pem());
    };
  });

  CLI::App* revoke = cmd->add_subcommand("revoke", "Revoke an issued certificate by serial");
  revoke->add_option("--serial", o->serial, "Serial number in hex")->required();
  revoke->add_option("--reason", o->reason, "CRLReason name (keyCompromise, superseded, ...) or number")
      ->capture_default_str();
  revoke->callback([o, &action] {
    action = [o] {
      auto reason = parse_revocation_reason(o->reason);
      if (!reason.ok()) return fail("revoke", reason.error());
      auto ca = open_store(*o);
      if (!ca.ok()) return fail("revoke", ca.error());
      auto info = (*ca)->revoke(o->serial, *reason);
      if (!info.ok()) return fail("revoke", info.error());
      std::cout << "revoked " << info->certificate.serial_hex() << " (" << to_string(*reason) << ") of "
                << info->certificate.subject().to_string() << "\n";
      return kExitOk;
    };
  });

  CLI::App* crl = cmd->add_subcommand("crl", "Publish a new CRL for a CA and print it (PEM)");
  crl->add_option("--ca", o->ca_label, "CA label")->capture_default_str();
  crl->add_option("--out", o->out, "Write the CRL here instead of stdout");
  crl->callback([o, &action] {
    action = [o] {
      auto ca = open_store(*o);
      if (!ca.ok()) return fail("crl", ca.error());
      auto published = (*ca)->publish_crl(o->ca_label);
      if (!published.ok()) return fail("crl", published.error());
      return emit(o->out, published->pem());
    };
  });

  CLI::App* last = cmd->add_subcommand("last", "Print the last certificate issued for a subject");
  last->add_option("--subject", o->subject, "Subject DN in encoded order, e.g. 'C=SE,O=estlab lab devices,CN=device-0006'")->required();
  last->add_option("--out", o->out, "Write the certificate here instead of stdout");
  last->callback([o, &action] {
    action = [o] {
      auto subject = DistinguishedName::parse(o->subject);
      if (!subject.ok()) return fail("last", subject.error());
      auto ca = open_store(*o);
      if (!ca.ok()) return fail("last", ca.error());
      auto found = (*ca)->last_issued_for_subject(*subject);
      if (!found.ok()) return fail("last", found.error());
      if (!found->has_value()) return fail("last", make_error(ErrorCode::not_found, "nothing issued for " + o->subject));
      return emit(o->out, (*found)->certificate.pem());
    };
  });
}

}  // namespace estlab::cli
