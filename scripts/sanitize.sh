#!/usr/bin/env bash
# Builds estlab with sanitizers into build-asan/ (ASan + UBSan) or build-tsan/ (ThreadSanitizer)
# and runs the unit tests under them; with --e2e also the pytest end-to-end tests (ASan only).
#
#   scripts/sanitize.sh [address|thread] [--e2e] [CTEST_REGEX]
#
# thread runs the tests of the components with threads of their own: gateway, CA, proxy.
# Exit codes: 0 clean, 1 a test failed or a sanitizer reported, 2 usage.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kind="address"; e2e=0; regex=""
for arg in "$@"; do
  case "$arg" in
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    address|thread) kind="$arg" ;;
    --e2e) e2e=1 ;;
    -*) echo "sanitize.sh: unknown option '$arg'" >&2; exit 2 ;;
    *) regex="$arg" ;;
  esac
done
targets=()
if [ "$kind" = thread ]; then
  # Only the three test binaries are built (a TSan build of everything takes hours on 2 cores); the
  # regex names their suites, so the fault matrices (conformance, "Proxy") and the NOT_BUILT
  # placeholders of the binaries left out do not match.
  build="$root/build-tsan"; flags="thread"; targets=(--target estlab_gateway_tests estlab_ca_tests estlab_coap_proxy_tests)
  [ -z "$regex" ] && regex='^(GatewayConfig|HttpRequestParse|ApprovalTest|GatewayServerTest|ServiceTest|CaStore|SimulatedCa|RolloverTest|CoapForwarding|CoapProxy|ProxyFaults)'
  export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1"
else
  build="$root/build-asan"; flags="address,undefined"
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" ESTLAB_EXPECT_SANITIZERS=1
fi
if [ ! -f "$build/CMakeCache.txt" ]; then
  generator=()
  command -v ninja >/dev/null && generator=(-G Ninja)
  # ccache when present: a sanitized rebuild after a one-line fix should not recompile everything.
  command -v ccache >/dev/null && generator+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
  optimisation=()
  if [ "$kind" = address ] && command -v clang++ >/dev/null; then
    # clang at -O0 with line tables: the whole tree in 6 min on 2 cores where gcc -O1 -g1 takes
    # about 15 (Boost.Beast's templates); the tests' time is mostly OpenSSL's, which is not rebuilt.
    optimisation=(-DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++
                  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O0 -gline-tables-only -DNDEBUG"
                  "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O0 -gline-tables-only -DNDEBUG")
  fi
  cmake -S "$root" -B "$build" "${generator[@]}" "${optimisation[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DESTLAB_SANITIZE="$flags" >/dev/null
fi
cmake --build "$build" --parallel "${ESTLAB_JOBS:-$(nproc)}" "${targets[@]}"
start=$(date +%s)
# Sanitized tests run several times slower: the test watchdog (tests/support/test_main.cpp) waits
# until just under this script's ctest timeout before it calls a test hung.
export ESTLAB_TEST_WATCHDOG_SECONDS="${ESTLAB_TEST_WATCHDOG_SECONDS:-840}"
ctest --test-dir "$build" --output-on-failure --parallel "$(nproc)" --timeout 900 ${regex:+-R "$regex"}
echo "== unit tests under $flags: $(( $(date +%s) - start )) s"
if [ "$e2e" = 1 ] && [ "$kind" = address ]; then
  start=$(date +%s)
  ESTLAB_BUILD_DIR="$build" ESTLAB_BIN="$build/cli/estlab" /usr/bin/python3 -m pytest "$root/tests/e2e" -q -p no:cacheprovider \
    -n "$(nproc)" --dist loadfile
  echo "== end-to-end tests under $flags: $(( $(date +%s) - start )) s"
fi
