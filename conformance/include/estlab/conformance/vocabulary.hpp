// The names a target file and a scenario may use: roles (identities), features, controls and
// credentials. Misspelled names are configuration errors that name the closest known one, so a
// typo never turns into a silent skip.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace estlab::conformance {

struct VocabularyEntry {
  std::string_view name;
  std::string_view meaning;
};

const std::vector<VocabularyEntry>& known_roles();
const std::vector<VocabularyEntry>& known_features();
const std::vector<VocabularyEntry>& known_controls();
const std::vector<VocabularyEntry>& known_credentials();
const std::vector<VocabularyEntry>& known_ca_labels();

bool is_known(const std::vector<VocabularyEntry>& vocabulary, std::string_view name);
// The known name closest to `wrong` by edit distance, or "" when none is close.
std::string closest_name(const std::string& wrong, const std::vector<VocabularyEntry>& vocabulary);
// "unknown role 'device-factroy' (did you mean 'device-factory'?)" or "... (known: a, b, c)".
std::string unknown_name_message(const std::string& kind, const std::string& wrong, const std::vector<VocabularyEntry>& vocabulary);

}  // namespace estlab::conformance
