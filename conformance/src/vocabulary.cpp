#include "estlab/conformance/vocabulary.hpp"

#include <algorithm>

namespace estlab::conformance {

namespace {

template <typename Table>
std::vector<std::string> names_of(const Table& table) {
  std::vector<std::string> names;
  names.reserve(table.size());
  for (const auto& entry : table) names.emplace_back(entry.name);
  return names;
}

}  // namespace

std::vector<std::string> role_names() { return names_of(kRoles); }
std::vector<std::string> feature_names() { return names_of(kFeatures); }
std::vector<std::string> control_names() { return names_of(kControls); }

std::size_t edit_distance(std::string_view a, std::string_view b) {
  // One row of the Levenshtein table at a time.
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string closest_name(const std::string& wrong, const std::vector<std::string>& known) {
  std::string best;
  std::size_t best_distance = 0;
  bool tie = false;
  for (const auto& name : known) {
    const std::size_t d = edit_distance(wrong, name);
    if (best.empty() || d < best_distance) {
      best = name, best_distance = d, tie = false;
    } else if (d == best_distance && name != best) {
      tie = true;
    }
  }
  if (best.empty()) return "";
  if (best_distance == 0) return best;
  if (tie) return "";  // "did you mean a or b" helps nobody
  const std::size_t longer = std::max(wrong.size(), best.size());
  const std::size_t allowed = std::clamp<std::size_t>(longer / 3, 1, 3);
  return best_distance <= allowed ? best : "";
}

namespace {
template <typename Table>
std::vector<VocabularyEntry> entries_of(const Table& table) {
  std::vector<VocabularyEntry> entries;
  for (const auto& entry : table) entries.push_back({entry.name, entry.meaning});
  return entries;
}
}  // namespace

std::vector<VocabularyEntry> known_roles() { return entries_of(kRoles); }
std::vector<VocabularyEntry> known_features() { return entries_of(kFeatures); }
std::vector<VocabularyEntry> known_controls() { return entries_of(kControls); }

const std::vector<VocabularyEntry>& known_credentials() {
  static const std::vector<VocabularyEntry> credentials = {
      {"preregistered", "HTTP Basic user and password of a device preregistered by an administrator, and the subject it must request"},
  };
  return credentials;
}

const std::vector<VocabularyEntry>& known_ca_labels() {
  static const std::vector<VocabularyEntry> labels = {
      {"other", "the label of a CA other than the default one"},
      {"rollover", "the label of a CA whose root key is in rollover (the four rollover certificates in /cacerts)"},
  };
  return labels;
}

bool is_known(const std::vector<VocabularyEntry>& vocabulary, std::string_view name) {
  return std::any_of(vocabulary.begin(), vocabulary.end(), [&](const VocabularyEntry& e) { return e.name == name; });
}

std::string unknown_name_message(const std::string& kind, const std::string& wrong, const std::vector<VocabularyEntry>& vocabulary) {
  std::vector<std::string> names;
  for (const auto& e : vocabulary) names.emplace_back(e.name);
  const auto close = closest_name(wrong, names);
  if (!close.empty()) return "unknown " + kind + " '" + wrong + "' (did you mean '" + close + "'?)";
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  return "unknown " + kind + " '" + wrong + "' (known: " + list + ")";
}

}  // namespace estlab::conformance
