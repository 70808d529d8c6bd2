// One way to open the YAML files the engine reads (scenarios, targets, the catalog, baselines,
// transcripts): a file that cannot be read or does not parse is a ConfigError naming it.
#pragma once

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <string>

#include "estlab/core/result.hpp"

namespace estlab::conformance {

// `what` names the file's kind for the message: "cannot read the baseline file".
inline YAML::Node load_yaml_file(const std::filesystem::path& file, const std::string& what) {
  try {
    return YAML::LoadFile(file.string());
  } catch (const YAML::BadFile&) {
    throw ConfigError(file.string() + ": cannot read the " + what);
  } catch (const YAML::Exception& e) {
    throw ConfigError(file.string() + ":" + std::to_string(e.mark.line + 1) + ": YAML syntax: " + e.msg);
  }
}

}  // namespace estlab::conformance
