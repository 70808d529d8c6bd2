#!/usr/bin/env bash
# Builds the libFuzzer targets with clang under ASan + UBSan (into build-fuzz/) and runs each for
# SECONDS (default 60), starting from its seed corpus tests/fuzz/corpus/<target>/. New inputs go
# to build-fuzz/corpus/<target>/, crash reproducers to build-fuzz/findings/<target>/. Prints and
# writes build-fuzz/fuzz-report.md: per target the seconds run, executions, coverage and findings.
# --unit-tests first runs, in the same instrumented build, the unit tests of the code the targets
# reach (parse: the core's codecs; CI runs `--unit-tests 30 parse`, scripts/test.sh).
#
#   scripts/fuzz.sh [--unit-tests] [SECONDS] [TARGET...]
#   targets: parse gateway_http config coap_forwarding dtls_datagram scenario replay
#
# Exit 0 when no target found anything and every unit test passed, 1 otherwise (a reproducer or
# the failing test is named), 2 on usage.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="${ESTLAB_FUZZ_BUILD_DIR:-$root/build-fuzz}"
all=(parse gateway_http config coap_forwarding dtls_datagram scenario replay)
seconds=""; unit_tests=0; targets=()
for arg in "$@"; do
  case "$arg" in
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --unit-tests) unit_tests=1 ;;
    -*) echo "fuzz.sh: unknown option '$arg'" >&2; exit 2 ;;
    *) if [ -z "$seconds" ] && [ ${#targets[@]} -eq 0 ] && [[ "$arg" =~ ^[0-9] ]]; then seconds="$arg"; else targets+=("$arg"); fi ;;
  esac
done
seconds="${seconds:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "fuzz.sh: SECONDS must be a positive whole number, not '$seconds'" >&2; exit 2
fi
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")
for t in "${targets[@]}"; do
  [[ " ${all[*]} " == *" $t "* ]] || { echo "fuzz.sh: unknown target '$t' (known: ${all[*]})" >&2; exit 2; }
done
command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ is needed (apt-get install clang libclang-rt-dev)" >&2; exit 2; }

# The unit-test binaries of the code each target reaches.
tests_of() {
  case "$1" in
    parse) echo estlab_core_tests ;;
    gateway_http) echo estlab_gateway_tests ;;
    config) echo estlab_gateway_tests estlab_coap_proxy_tests ;;
    coap_forwarding) echo estlab_coap_proxy_tests ;;
    dtls_datagram) echo estlab_network_tests estlab_coap_proxy_tests ;;
    scenario|replay) echo estlab_conformance_tests ;;
  esac
}
test_binaries=()
if [ "$unit_tests" = 1 ]; then
  for t in "${targets[@]}"; do
    for b in $(tests_of "$t"); do [[ " ${test_binaries[*]} " == *" $b "* ]] || test_binaries+=("$b"); done
  done
fi

if [ ! -f "$build/CMakeCache.txt" ]; then
  generator=()
  command -v ninja >/dev/null && generator=(-G Ninja)
  # Every library is instrumented for coverage and sanitizers; only the targets link libFuzzer.
  cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DESTLAB_FUZZ=ON \
    -DCMAKE_C_FLAGS="-fsanitize=address,undefined -fsanitize=fuzzer-no-link" \
    -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined -fsanitize=fuzzer-no-link" >/dev/null
fi
cmake --build "$build" --parallel "${ESTLAB_JOBS:-$(nproc)}" --target $(printf 'estlab_%s_fuzz ' "${targets[@]}") "${test_binaries[@]}"

failed_tests=(); unit_lines=()
for b in "${test_binaries[@]}"; do
  echo "== unit tests under ASan + UBSan: $b"
  start=$(date +%s)
  # The watchdog (tests/support/test_main.cpp) allows for the sanitizers' slowdown.
  if ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ESTLAB_TEST_WATCHDOG_SECONDS=840 ESTLAB_EXPECT_SANITIZERS=1 \
       "$build/tests/$b" --gtest_brief=1 > "$build/$b.log" 2>&1; then
    unit_lines+=("$b: $(grep -o '[0-9]* tests\? from [0-9]* test suites\? ran' "$build/$b.log" | tail -1), passed in $(( $(date +%s) - start )) s")
    echo "${unit_lines[-1]}"
  else
    unit_lines+=("$b: FAILED (log: $b.log)")
    tail -40 "$build/$b.log"
    echo "$b: FAILED under ASan + UBSan (log: $build/$b.log)"
    failed_tests+=("$b")
  fi
done

report="$build/fuzz-report.md"
{
  echo "# Fuzzing report ($(date -u +%Y-%m-%dT%H:%M:%SZ), $seconds s per target)"
  echo
  echo "| target | seconds | executions | exec/s | coverage (edges) | corpus | findings |"
  echo "|---|---|---|---|---|---|---|"
} > "$report"
found=0
for t in "${targets[@]}"; do
  corpus="$build/corpus/$t"; findings="$build/findings/$t"
  mkdir -p "$corpus" "$findings"
  cp -n "$root/tests/fuzz/corpus/$t/"* "$corpus/" 2>/dev/null || true
  log="$build/fuzz-$t.log"
  echo "== $t: $seconds s"
  set +e
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
    "$build/tests/fuzz/estlab_${t}_fuzz" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
    -print_final_stats=1 -artifact_prefix="$findings/" "$corpus" > "$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo 0)
  size=$(find "$corpus" -type f | wc -l)
  crashes=$(find "$findings" -type f | wc -l)
  [ "$rc" -ne 0 ] && found=1
  echo "| $t | $seconds | ${execs:-0} | $(( ${execs:-0} / seconds )) | ${cov:-0} | $size | $crashes$([ "$rc" -ne 0 ] && echo " (exit $rc, see fuzz-$t.log)") |" >> "$report"
  tail -3 "$log"
done
if [ ${#unit_lines[@]} -gt 0 ]; then
  { echo; echo "Unit tests under ASan + UBSan, in the same build:"; echo; printf -- '- %s\n' "${unit_lines[@]}"; } >> "$report"
fi
cat "$report"
[ ${#failed_tests[@]} -gt 0 ] && exit 1
exit $found
