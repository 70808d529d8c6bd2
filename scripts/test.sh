#!/usr/bin/env bash
# Install what is missing, build, and pass every test: GoogleTest units through ctest, then the
# pytest end-to-end and interop tests (which drive estlab with openssl, curl, coap-client), then the
# core's codecs under clang's ASan + UBSan: their unit tests, and the parse fuzz target for a while.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="${ESTLAB_BUILD_DIR:-$root/build}"
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"

echo "== unit tests (ctest)"
ctest --test-dir "$build" --output-on-failure --parallel "$(nproc)" --timeout 300

echo "== end-to-end tests (pytest)"
# Debian's python3 carries python3-pytest and python3-yaml; a pyenv python earlier on PATH would not.
export ESTLAB_BIN="$build/cli/estlab"
cd "$root"
# One worker per core (pytest-xdist), a test file per worker at a time so module fixtures are made
# once: the tests spend most of their time waiting on the processes they start (194 s -> 120 s on 2
# cores). Every server they start listens on an ephemeral port in its own temporary directory.
/usr/bin/python3 -m pytest tests/e2e -q -p no:cacheprovider -n "$(nproc)" --dist loadfile

echo "== the core's codecs under ASan + UBSan (clang): unit tests, then ${ESTLAB_FUZZ_SECONDS:-30} s of fuzzing"
# The whole tree sanitized takes longer to build on 2 cores than this whole job: the codecs, which
# read every untrusted byte first, fit (scripts/fuzz.sh, README "Tests").
"$root/scripts/fuzz.sh" --unit-tests "${ESTLAB_FUZZ_SECONDS:-30}" parse
