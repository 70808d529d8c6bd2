// The requirement catalog: the committed requirements.yaml against an independent count of the
// markdown it was generated from, known rows' levels, the loader's file:line errors, and the
// "did you mean" suggestion.
#include <gtest/gtest.h>

#include <unistd.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>

#include "estlab/conformance/catalog.hpp"
#include "estlab/core/result.hpp"

namespace estlab::conformance {
namespace {

namespace fs = std::filesystem;

const fs::path kCatalogFile = fs::path(ESTLAB_SOURCE_DIR) / "conformance" / "catalog" / "requirements.yaml";
// The spec lives beside the project (see README.md: ../shared/spec).
const fs::path kSpecDir = fs::path(ESTLAB_SOURCE_DIR).parent_path() / "shared" / "spec";

const Catalog& real() {
  static const Catalog catalog = Catalog::load(kCatalogFile);
  return catalog;
}

std::string spec_of_prefix(const std::string& id) {
  static const std::map<std::string, std::string> specs = {
      {"7030", "RFC 7030"}, {"8951", "RFC 8951"}, {"8996", "RFC 8996"}, {"5929", "RFC 5929"},
      {"9266", "RFC 9266"}, {"csrattrs", "RFC 9908"}, {"9148", "RFC 9148"}, {"PG", "protocol-gateway"},
      {"6347", "RFC 6347"}};
  const auto it = specs.find(id.substr(0, id.find('-')));
  return it == specs.end() ? "?" : it->second;
}

// IDs of the markdown's table rows: lines "| <id> | ...", counted per spec.
std::map<std::string, int> markdown_counts(const fs::path& file, std::set<std::string>& ids) {
  std::ifstream in(file);
  const std::regex row(R"(^\|\s*((?:[0-9]{4}|csrattrs|PG)-[A-Za-z0-9.\-]+)\s*\|)");
  std::map<std::string, int> counts;
  std::string line;
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_search(line, m, row)) {
      ids.insert(m[1]);
      ++counts[spec_of_prefix(m[1])];
    }
  }
  return counts;
}

std::map<std::string, int> catalog_counts() {
  std::map<std::string, int> counts;
  for (const Requirement& r : real().all()) ++counts[r.spec];
  return counts;
}

TEST(Catalog, CountsPerSpecAsCommitted) {
  const std::map<std::string, int> expected = {
      {"RFC 7030", 108}, {"RFC 8951", 4},  {"RFC 8996", 1},  {"RFC 5929", 1},
      {"RFC 9266", 2},   {"RFC 9908", 4},  {"RFC 9148", 50}, {"protocol-gateway", 23},
      {"RFC 6347", 1}};
  EXPECT_EQ(catalog_counts(), expected);
  EXPECT_EQ(real().all().size(), 194u);
}

TEST(Catalog, EveryMarkdownRowAndNoOther) {
  const fs::path catalog_md = kSpecDir / "catalog.md";
  const fs::path profile_md = kSpecDir / "protocol-gateway-profile.md";
  if (!fs::exists(catalog_md) || !fs::exists(profile_md)) GTEST_SKIP() << "spec not found under " << kSpecDir;
  std::set<std::string> ids;
  auto counts = markdown_counts(catalog_md, ids);
  for (const auto& [spec, n] : markdown_counts(profile_md, ids)) counts[spec] += n;
  // The repository's own rows of the specifications RFC 9148 builds on.
  for (const auto& [spec, n] : markdown_counts(fs::path(ESTLAB_SOURCE_DIR) / "conformance" / "catalog" / "supplement.md", ids))
    counts[spec] += n;
  EXPECT_EQ(catalog_counts(), counts);
  std::set<std::string> in_yaml;
  for (const Requirement& r : real().all()) in_yaml.insert(r.id);
  EXPECT_EQ(in_yaml, ids);
}

TEST(Catalog, KnownRows) {
  struct Known { const char* id; const char* level; FailLevel verdict; Side side; };
  const Known rows[] = {
      {"7030-4.2.1-a", "MUST", FailLevel::fail, Side::both},
      {"7030-3.2.2-g", "derived", FailLevel::warn, Side::server},
      {"9266-2-a", "definition", FailLevel::warn, Side::both},
      {"7030-3.2.2-c", "OPTIONAL", FailLevel::info, Side::both},
      {"PG-ENR-3", "product rule", FailLevel::fail, Side::server},
      {"PG-COAP-3", "product rule", FailLevel::fail, Side::proxy},
      {"7030-4.1.2-b", "SHOULD NOT", FailLevel::warn, Side::server},
      {"8996-1.1-a", "MUST NOT", FailLevel::fail, Side::both},
      {"7030-3.2.1-b", "required behaviour", FailLevel::fail, Side::client},
      {"7030-3.1-a", "config", FailLevel::info, Side::client},
      {"7030-3.2-a", "info", FailLevel::info, Side::both},
      {"9148-5-a", "MUST", FailLevel::fail, Side::proxy},
      {"9148-4.5-c", "mapping", FailLevel::warn, Side::server_proxy},
      {"9266-4-a", "MUST NOT", FailLevel::warn, Side::both},
      {"7030-3.3.3-a", "MAY / MUST", FailLevel::fail, Side::both},
      {"7030-4.4-a", "OPTIONAL / RECOMMENDED", FailLevel::warn, Side::server},
  };
  for (const Known& k : rows) {
    SCOPED_TRACE(k.id);
    const Requirement* r = real().find(k.id);
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->level, k.level);
    EXPECT_EQ(r->verdict_level, k.verdict);
    EXPECT_EQ(r->side, k.side);
    EXPECT_FALSE(r->text.empty());
    EXPECT_FALSE(r->test.empty());
  }
  const Requirement* r = real().find("7030-4.2.1-a");
  EXPECT_EQ(r->spec, "RFC 7030");
  EXPECT_EQ(r->section, "4.2.1");
  EXPECT_EQ(real().find("PG-ENR-3")->section, "PG-ENR");
  EXPECT_EQ(real().find("csrattrs-3.2-a")->spec, "RFC 9908");
  EXPECT_EQ(real().find("nope"), nullptr);
  EXPECT_EQ(std::string(to_string(FailLevel::warn)), "warn");
  EXPECT_EQ(std::string(to_string(Side::server_proxy)), "server+proxy");
}

TEST(Catalog, EveryRowWellFormed) {
  for (const Requirement& r : real().all()) {
    SCOPED_TRACE(r.id);
    EXPECT_EQ(r.spec, spec_of_prefix(r.id));
    EXPECT_EQ(r.text.find('\n'), std::string::npos);
    // Plain MUST rows fail, plain SHOULD rows warn, plain MAY rows inform.
    // Except 9266-4-a: MUST NOT, but its test is "warning only" (catalog part 4 #23).
    if ((r.level == "MUST" || r.level == "MUST NOT") && r.id != "9266-4-a") {
      EXPECT_EQ(r.verdict_level, FailLevel::fail);
    }
    if (r.level == "SHOULD" || r.level == "SHOULD NOT" || r.level == "derived") {
      EXPECT_EQ(r.verdict_level, FailLevel::warn);
    }
    if (r.level == "MAY" || r.level == "OPTIONAL") {
      EXPECT_EQ(r.verdict_level, FailLevel::info);
    }
  }
}

TEST(Catalog, AppliesTo) {
  EXPECT_TRUE(real().find("7030-3.2.2-c")->applies_to(Side::client));
  EXPECT_TRUE(real().find("7030-3.2.2-c")->applies_to(Side::server));
  EXPECT_FALSE(real().find("7030-3.2.2-c")->applies_to(Side::proxy));
  EXPECT_TRUE(real().find("9148-4.5-c")->applies_to(Side::proxy));
  EXPECT_FALSE(real().find("9148-4.5-c")->applies_to(Side::client));
  EXPECT_FALSE(real().find("9148-5-a")->applies_to(Side::server));
}

TEST(Catalog, ClosestId) {
  EXPECT_EQ(real().closest_id("7030-4.2.1a"), "7030-4.2.1-a");
  EXPECT_EQ(real().closest_id("pg-enr-3"), "PG-ENR-3");
  EXPECT_EQ(real().closest_id("9148-4.5-z"), "9148-4.5-a");
}

std::string load_error(const std::string& yaml) {
  const auto file = fs::temp_directory_path() / ("estlab-catalog-" + std::to_string(::getpid()) + ".yaml");
  std::ofstream(file) << yaml;
  std::string message = "(no error)";
  try {
    Catalog::load(file);
  } catch (const ConfigError& e) {
    message = e.what();
    message = message.substr(message.find(".yaml") + 5);  // ":line: what"
  }
  fs::remove(file);
  return message;
}

const char* const kGood =
    "version: 1\n"
    "requirements:\n"
    "- id: X-1\n"
    "  spec: RFC 7030\n"
    "  section: '1'\n"
    "  refs: 7030 1\n"
    "  level: MUST\n"
    "  verdict_level: fail\n"
    "  side: server\n"
    "  text: t\n"
    "  test: t\n";

TEST(Catalog, BrokenFilesNameTheLine) {
  EXPECT_EQ(load_error(kGood), "(no error)");
  std::string missing = kGood;
  missing.erase(missing.find("  level: MUST\n"), 14);
  EXPECT_EQ(load_error(missing), ":3: requirement without 'level'");
  std::string unknown_level = kGood;
  unknown_level.replace(unknown_level.find("verdict_level: fail"), 19, "verdict_level: fatal");
  EXPECT_EQ(load_error(unknown_level), ":8: unknown verdict_level 'fatal' (fail, warn or info)");
  std::string bad_side = kGood;
  bad_side.replace(bad_side.find("side: server"), 12, "side: gateway");
  EXPECT_EQ(load_error(bad_side), ":9: unknown side 'gateway' (server, client, both, proxy or server+proxy)");
  const std::string duplicate = kGood + std::string(kGood).substr(std::string(kGood).find("- id"));
  EXPECT_EQ(load_error(duplicate), ":12: duplicate id 'X-1' (first at line 3)");
  EXPECT_EQ(load_error(std::string(kGood) + "  colour: red\n"), ":12: unknown key 'colour'");
  EXPECT_EQ(load_error("version: 1\nrequirements:\n- [a, b]\n"), ":3: each requirement is a mapping (id, spec, section, ...)");
  EXPECT_EQ(load_error("version: 2\nrequirements: []\n"), ":1: expected 'version: 1'");
  EXPECT_NE(load_error("version: 1\nrequirements: [\n").find("YAML syntax"), std::string::npos);
  EXPECT_EQ(load_error("- a\n"), ": a catalog holds one mapping (version, requirements)");
}

TEST(Catalog, FieldBugsAndUntestableReasonsAreData) {
  ASSERT_EQ(real().field_bugs().size(), 14u);
  const FieldBug* fb03 = real().find_field_bug("FB-03");
  ASSERT_NE(fb03, nullptr);
  EXPECT_EQ(fb03->name, "server-rejects-unwrapped-b64-csr");
  EXPECT_EQ(fb03->requirements, std::vector<std::string>{"8951-3.1-a"});
  EXPECT_EQ(real().find_field_bug("FB-99"), nullptr);
  for (const FieldBug& bug : real().field_bugs())
    for (const auto& id : bug.requirements) EXPECT_NE(real().find(id), nullptr) << bug.id << " names " << id;
  ASSERT_NE(real().find("7030-3.5-g"), nullptr);
  EXPECT_FALSE(real().find("7030-3.5-g")->untestable.empty());
  EXPECT_TRUE(real().find("7030-4.2-a")->untestable.empty());
  // An untestable client-only row would be a contradiction in the data: client rows are out of scope anyway.
  for (const Requirement& row : real().all()) {
    if (!row.untestable.empty()) {
      EXPECT_NE(row.side, Side::client) << row.id;
    }
  }
}

TEST(Catalog, BrokenFieldBugsNameTheLine) {
  const std::string bug = "field_bugs:\n- id: FB-1\n  name: n\n  seen_in: s\n  symptom: y\n  test: t\n  requirements: [X-1]\n";
  EXPECT_EQ(load_error(std::string(kGood) + bug), "(no error)");
  std::string unknown_row = bug;
  unknown_row.replace(unknown_row.find("[X-1]"), 5, "[X-2]");
  EXPECT_EQ(load_error(std::string(kGood) + unknown_row), ":18: field bug FB-1 names unknown requirement 'X-2'");
  std::string no_rows = bug;
  no_rows.replace(no_rows.find("[X-1]"), 5, "[]");
  EXPECT_EQ(load_error(std::string(kGood) + no_rows), ":18: 'requirements' must be a non-empty list of catalog IDs");
  EXPECT_EQ(load_error(std::string(kGood) + bug + bug.substr(bug.find("- id"))), ":19: duplicate field bug 'FB-1'");
}

TEST(Catalog, UnreadableFile) {
  EXPECT_THROW(Catalog::load("/nonexistent/requirements.yaml"), ConfigError);
}

}  // namespace
}  // namespace estlab::conformance
