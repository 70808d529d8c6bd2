// Java-properties files (the syntax of java.util.Properties.load), used for the product's configuration
// files est.properties and coap.properties. Every entry keeps its line, so every complaint about a value
// can say "file:line: key: what is wrong".
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "estlab/core/result.hpp"

namespace estlab {

class Properties {
 public:
  static constexpr std::size_t kDefaultMaxFileBytes = 1024 * 1024;

  // An empty set; source_name is only used to prefix messages.
  explicit Properties(std::string source_name = {}) : source_name_(std::move(source_name)) {}

  // Parses text the way Properties.load does, except that a malformed or unpaired \uXXXX escape is an
  // error naming source_name:line. Bytes other than escapes pass through unchanged (UTF-8 in, UTF-8 out).
  static Result<Properties> parse(std::string_view text, std::string source_name);
  // Reads and parses a file; messages name the file as given. A file over max_bytes is refused unread.
  static Result<Properties> load_file(const std::filesystem::path& path,
                                      std::size_t max_bytes = kDefaultMaxFileBytes);

  const std::string& source_name() const { return source_name_; }
  std::size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }

  // Keys in the order they first appear in the file.
  std::vector<std::string> keys() const;
  bool contains(std::string_view key) const;
  // Line of the (last) definition; 0 for entries added by set().
  std::optional<int> line_of(std::string_view key) const;
  // Keys starting with prefix, in file order, e.g. keys_with_prefix("handler.") for handler.<n>.filter.
  std::vector<std::string> keys_with_prefix(std::string_view prefix) const;

  // Adds or replaces an entry (line 0), e.g. to write a configuration with to_string().
  void set(std::string key, std::string value);

  // The raw value, as Properties.getProperty returns it (trailing whitespace kept).
  std::optional<std::string> get_string(std::string_view key) const;
  std::string get_string(std::string_view key, std::string_view fallback) const;

  // Typed accessors. The value is trimmed of surrounding whitespace first (an invisible trailing blank
  // should not turn "true" into an error). Without a fallback a missing key is a not_found error; a
  // value that does not parse is an invalid_input error "file:line: key: expected ..., got '...'".
  Result<bool> get_bool(std::string_view key) const;  // true/false, any case
  Result<bool> get_bool(std::string_view key, bool fallback) const;
  Result<std::int64_t> get_int(std::string_view key, std::int64_t min, std::int64_t max) const;
  Result<std::int64_t> get_int(std::string_view key, std::int64_t min, std::int64_t max,
                               std::int64_t fallback) const;
  // A plain integer is seconds; suffixes s, m, h, d (any case) scale it. Negative values are refused.
  Result<std::chrono::seconds> get_duration_seconds(std::string_view key) const;
  Result<std::chrono::seconds> get_duration_seconds(std::string_view key, std::chrono::seconds fallback) const;
  // Comma-separated and trimmed; a missing key or an empty value is an empty list. An empty item
  // ("a,,b", "a,") is an error, as it is usually a typo.
  Result<std::vector<std::string>> get_list(std::string_view key) const;

  // Messages found while parsing: duplicate keys ("file:line: duplicate key 'k' ..."; the last value wins).
  const std::vector<std::string>& warnings() const { return warnings_; }

  // One message per key that matches none of known; a pattern may contain <n> for a decimal number
  // segment (handler.<n>.idm.tls.token). A close known key is suggested ("did you mean ...?").
  std::vector<std::string> warnings_for_unknown(const std::vector<std::string>& known_keys_or_patterns) const;

  // Writes every entry as key=value in file order, escaped so that parse(to_string()) gives the same
  // keys and values.
  std::string to_string() const;

 private:
  struct Entry {
    std::string key;
    std::string value;
    int line = 0;
  };

  const Entry* find(std::string_view key) const;
  std::string location(const Entry& entry) const;  // "file:line" or "file"
  Error bad_value(const Entry& entry, std::string_view expected, std::string_view got) const;
  Error missing(std::string_view key) const;
  void put(std::string key, std::string value, int line);

  std::string source_name_;
  std::vector<Entry> entries_;                              // file order of first appearance
  std::map<std::string, std::size_t, std::less<>> index_;  // key -> position in entries_
  std::vector<std::string> warnings_;
};

}  // namespace estlab
