// The requirement catalog as data: conformance/catalog/requirements.yaml (generated from the
// spec's catalog.md and protocol-gateway-profile.md by make_catalog.py) loaded into Requirement
// rows. The engine looks rows up by the IDs a scenario names and takes from them what a failed
// check yields (FailLevel), the spec and section for the reports, and the text for people.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace estlab::conformance {

// What a failed check of a requirement yields: fail for MUST-class rows and product rules, warn
// for SHOULD-class and (derived) rows, info for MAY/OPTIONAL/record/config rows. A per-check
// fallback ("warn on other 4xx") is the scenario's business, not the catalog's.
enum class FailLevel { fail, warn, info };
const char* to_string(FailLevel level);  // "fail", "warn", "info"

// Who the row binds. both = server and client; server_proxy = the EST server and the RFC 9148
// Registrar (proxy) alike.
enum class Side { server, client, both, proxy, server_proxy };
const char* to_string(Side side);  // "server", "client", "both", "proxy", "server+proxy"

struct Requirement {
  std::string id;        // "7030-4.2.1-a", "PG-ENR-3"
  std::string spec;      // "RFC 7030", "RFC 9908", "protocol-gateway", ...
  std::string section;   // "4.2.1" (from the id); for PG rules the family, "PG-ENR"
  std::string refs;      // the source's cell: "7030 4.2.3; 8951 5.1"
  std::string level;     // source keyword: "MUST", "SHOULD NOT", "derived", "MUST / SHOULD", ...
  FailLevel verdict_level = FailLevel::fail;
  Side side = Side::server;
  std::string text;      // the requirement, one line
  std::string test;      // how a black-box test checks it
  std::string untestable;  // why a black-box suite cannot judge it; "" = testable
  int line = 0;          // line of the entry in the catalog file

  // True when a check against an IUT in `role` (server, client or proxy) is covered by this row.
  bool applies_to(Side role) const;
};

// A bug that shipped in a real EST server, RA or proxy (field-bugs.md): a scenario naming it in
// `field_bugs` must fail against a gateway with the bug.
struct FieldBug {
  std::string id;         // "FB-03"
  std::string name;       // "server-rejects-unwrapped-b64-csr"
  std::string seen_in;
  std::string symptom;
  std::string test;       // what to send and what a correct gateway answers
  std::vector<std::string> requirements;  // catalog rows it breaks
  int line = 0;
};

class Catalog {
 public:
  // Throws ConfigError "file:line: what" for unreadable or malformed data: YAML syntax, a missing
  // or empty key, an unknown verdict_level or side, a duplicate id.
  static Catalog load(const std::filesystem::path& file);

  // nullptr when unknown.
  const Requirement* find(std::string_view id) const;
  const std::vector<Requirement>& all() const { return rows_; }
  const std::vector<FieldBug>& field_bugs() const { return field_bugs_; }
  const FieldBug* find_field_bug(std::string_view id) const;

  // The known id nearest to `wrong` (case-insensitive edit distance), for "unknown requirement
  // 7030-4.2.1a; did you mean 7030-4.2.1-a?". "" when the catalog is empty.
  std::string closest_id(std::string_view wrong) const;

 private:
  std::vector<Requirement> rows_;
  std::vector<FieldBug> field_bugs_;
  std::unordered_map<std::string, std::size_t> index_;
};

}  // namespace estlab::conformance
