#include "estlab/conformance/vocabulary.hpp"
#include "estlab/core/text.hpp"
#include "yaml_file.hpp"
#include "estlab/conformance/catalog.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <limits>

#include "estlab/core/result.hpp"

namespace estlab::conformance {

const char* to_string(FailLevel level) {
  switch (level) {
    case FailLevel::fail: return "fail";
    case FailLevel::warn: return "warn";
    case FailLevel::info: return "info";
  }
  return "fail";
}

const char* to_string(Side side) {
  switch (side) {
    case Side::server: return "server";
    case Side::client: return "client";
    case Side::both: return "both";
    case Side::proxy: return "proxy";
    case Side::server_proxy: return "server+proxy";
  }
  return "server";
}

bool Requirement::applies_to(Side role) const {
  if (role == side) return true;
  switch (side) {
    case Side::both: return role == Side::server || role == Side::client;
    case Side::server_proxy: return role == Side::server || role == Side::proxy;
    default: return false;
  }
}

namespace {

[[noreturn]] void fail(const std::filesystem::path& file, const YAML::Node& node, const std::string& what) {
  throw ConfigError(file.string() + ":" + std::to_string(node.Mark().line + 1) + ": " + what);
}

std::string text_of(const std::filesystem::path& file, const YAML::Node& entry, const char* key) {
  const YAML::Node value = entry[key];
  if (!value) fail(file, entry, std::string("requirement without '") + key + "'");
  if (!value.IsScalar()) fail(file, value, std::string("'") + key + "' must be a string");
  std::string text = value.as<std::string>();
  if (text.empty()) fail(file, value, std::string("'") + key + "' is empty");
  return text;
}

FailLevel fail_level_of(const std::filesystem::path& file, const YAML::Node& node, const std::string& word) {
  if (word == "fail") return FailLevel::fail;
  if (word == "warn") return FailLevel::warn;
  if (word == "info") return FailLevel::info;
  fail(file, node, "unknown verdict_level '" + word + "' (fail, warn or info)");
}

Side side_of(const std::filesystem::path& file, const YAML::Node& node, const std::string& word) {
  for (Side side : {Side::server, Side::client, Side::both, Side::proxy, Side::server_proxy}) {
    if (word == to_string(side)) return side;
  }
  fail(file, node, "unknown side '" + word + "' (server, client, both, proxy or server+proxy)");
}

template <std::size_t N>
void reject_unknown_keys(const std::filesystem::path& file, const YAML::Node& entry, const char* const (&known)[N]) {
  for (const auto& key_value : entry) {
    const std::string key = key_value.first.as<std::string>();
    if (std::find(std::begin(known), std::end(known), key) == std::end(known)) fail(file, key_value.first, "unknown key '" + key + "'");
  }
}

}  // namespace

Catalog Catalog::load(const std::filesystem::path& file) {
  const YAML::Node root = load_yaml_file(file, "requirement catalog");
  if (!root.IsMap()) throw ConfigError(file.string() + ": a catalog holds one mapping (version, requirements)");
  const YAML::Node version = root["version"];
  if (!version || !version.IsScalar() || version.as<std::string>() != "1") {
    fail(file, version ? version : root, "expected 'version: 1'");
  }
  const YAML::Node list = root["requirements"];
  if (!list || !list.IsSequence()) fail(file, list ? list : root, "'requirements' must be a list");

  static const char* const kKeys[] = {"id", "spec", "section", "refs", "level", "verdict_level", "side", "text", "test", "untestable"};
  Catalog catalog;
  for (const YAML::Node& entry : list) {
    if (!entry.IsMap()) fail(file, entry, "each requirement is a mapping (id, spec, section, ...)");
    reject_unknown_keys(file, entry, kKeys);
    Requirement row;
    row.id = text_of(file, entry, "id");
    row.spec = text_of(file, entry, "spec");
    row.section = text_of(file, entry, "section");
    row.refs = text_of(file, entry, "refs");
    row.level = text_of(file, entry, "level");
    row.verdict_level = fail_level_of(file, entry["verdict_level"], text_of(file, entry, "verdict_level"));
    row.side = side_of(file, entry["side"], text_of(file, entry, "side"));
    row.text = text_of(file, entry, "text");
    row.test = text_of(file, entry, "test");
    if (entry["untestable"]) row.untestable = text_of(file, entry, "untestable");
    row.line = entry.Mark().line + 1;
    const auto [it, inserted] = catalog.index_.emplace(row.id, catalog.rows_.size());
    if (!inserted) {
      fail(file, entry["id"], "duplicate id '" + row.id + "' (first at line " + std::to_string(catalog.rows_[it->second].line) + ")");
    }
    catalog.rows_.push_back(std::move(row));
  }
  if (const YAML::Node bugs = root["field_bugs"]) {
    if (!bugs.IsSequence()) fail(file, bugs, "'field_bugs' must be a list");
    static const char* const kBugKeys[] = {"id", "name", "seen_in", "symptom", "test", "requirements"};
    for (const YAML::Node& entry : bugs) {
      if (!entry.IsMap()) fail(file, entry, "each field bug is a mapping (id, name, seen_in, ...)");
      reject_unknown_keys(file, entry, kBugKeys);
      FieldBug bug;
      bug.id = text_of(file, entry, "id");
      bug.name = text_of(file, entry, "name");
      bug.seen_in = text_of(file, entry, "seen_in");
      bug.symptom = text_of(file, entry, "symptom");
      bug.test = text_of(file, entry, "test");
      bug.line = entry.Mark().line + 1;
      const YAML::Node ids = entry["requirements"];
      if (!ids || !ids.IsSequence() || ids.size() == 0) fail(file, ids ? ids : entry, "'requirements' must be a non-empty list of catalog IDs");
      for (const YAML::Node& id : ids) {
        const std::string rid = id.as<std::string>();
        if (!catalog.find(rid)) fail(file, id, "field bug " + bug.id + " names unknown requirement '" + rid + "'");
        bug.requirements.push_back(rid);
      }
      if (catalog.find_field_bug(bug.id)) fail(file, entry["id"], "duplicate field bug '" + bug.id + "'");
      catalog.field_bugs_.push_back(std::move(bug));
    }
  }
  return catalog;
}

const FieldBug* Catalog::find_field_bug(std::string_view id) const {
  for (const FieldBug& bug : field_bugs_)
    if (bug.id == id) return &bug;
  return nullptr;
}

const Requirement* Catalog::find(std::string_view id) const {
  const auto it = index_.find(std::string(id));
  return it == index_.end() ? nullptr : &rows_[it->second];
}

std::string Catalog::closest_id(std::string_view wrong) const {
  std::string best;
  std::size_t best_distance = std::numeric_limits<std::size_t>::max();
  for (const Requirement& row : rows_) {
    const std::size_t d = edit_distance(ascii_lowercase(wrong), ascii_lowercase(row.id));  // case-insensitive
    if (d < best_distance) {
      best_distance = d;
      best = row.id;
    }
  }
  return best;
}

}  // namespace estlab::conformance
