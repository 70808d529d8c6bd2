#!/usr/bin/env bash
# Installs the Debian packages estlab needs, only those that are missing, so a second run is a no-op.
set -euo pipefail

packages=(
  build-essential cmake pkg-config ninja-build
  openssl libssl-dev
  libcoap3-dev libcoap3-bin
  libboost-dev libboost-system-dev
  libgtest-dev
  libpugixml-dev libyaml-cpp-dev libsqlite3-dev libcli11-dev libcbor-dev
  python3 python3-pytest python3-pytest-xdist python3-yaml
  curl libxml2-utils
  gdb  # the unit tests' watchdog prints every thread's stack when a test hangs (tests/support/test_main.cpp)
  chromium chromium-driver python3-selenium
  clang libclang-rt-dev  # libFuzzer and clang's ASan/UBSan: the test command runs the codecs under them (scripts/fuzz.sh)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
