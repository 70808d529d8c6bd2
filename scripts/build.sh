#!/usr/bin/env bash
# Configures (once) and builds estlab in Release into build/. Incremental: fast when nothing changed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="${ESTLAB_BUILD_DIR:-$root/build}"
jobs="${ESTLAB_JOBS:-$(nproc)}"

if [ ! -f "$build/CMakeCache.txt" ]; then
  generator=()
  if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
  cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" --parallel "$jobs"
