// Where the binary finds its data (built-in scenarios, the requirement catalog) at run time,
// relative to itself so an installed tree or a .deb can be moved: no source path is compiled in.
#pragma once

#include <filesystem>
#include <string>

namespace estlab::cli {

// The built-in scenario directory: $ESTLAB_SCENARIOS if set and not empty, else
// builtin_data_dir("scenarios").
std::filesystem::path builtin_scenario_dir();

// A data directory by name ("scenarios", "catalog"), the first that exists of:
//   1. <directory of /proc/self/exe>/../share/estlab/<name>   (an installed tree: PREFIX/bin/estlab)
//   2. the path named for <name> in <directory of /proc/self/exe>/estlab-data-dirs, a file the
//      build writes next to the build-tree binary only (`cmake --install` does not copy it), so
//      a binary run from the build tree uses the source tree's data.
// When neither exists, the installed location (1), so that an error message names where the
// data was expected.
std::filesystem::path builtin_data_dir(const std::string& name);

}  // namespace estlab::cli
