#include "paths.hpp"

#include <cstdlib>
#include <fstream>

namespace estlab::cli {

namespace {

// The directory of the running binary, symlinks resolved ("" when /proc is not mounted).
std::filesystem::path binary_dir() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::path() : exe.parent_path();
}

// estlab-data-dirs: "name=absolute path" lines; '#' starts a comment.
std::filesystem::path build_tree_dir(const std::filesystem::path& bin, const std::string& name) {
  std::ifstream in(bin / "estlab-data-dirs");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line.front() == '#') continue;
    const auto eq = line.find('=');
    if (eq != std::string::npos && line.compare(0, eq, name) == 0 && eq == name.size()) return line.substr(eq + 1);
  }
  return {};
}

}  // namespace

std::filesystem::path builtin_data_dir(const std::string& name) {
  const auto bin = binary_dir();
  if (bin.empty()) return std::filesystem::path("share/estlab") / name;
  const auto installed = (bin.parent_path() / "share" / "estlab" / name).lexically_normal();
  std::error_code ec;
  if (std::filesystem::is_directory(installed, ec)) return installed;
  if (auto built = build_tree_dir(bin, name); !built.empty() && std::filesystem::is_directory(built, ec)) return built;
  return installed;
}

std::filesystem::path builtin_scenario_dir() {
  if (const char* env = std::getenv("ESTLAB_SCENARIOS"); env != nullptr && *env != '\0') return env;
  return builtin_data_dir("scenarios");
}

}  // namespace estlab::cli
