#include <CLI/CLI.hpp>

int main(int argc, char** argv) {
  CLI::App app{"estlab: EST / EST-coaps conformance suite and lab"};
  CLI11_PARSE(app, argc, argv);
  return 0;
}
