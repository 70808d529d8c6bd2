#!/usr/bin/env bash
# Builds the libFuzzer targets with clang under ASan + UBSan (into build-fuzz/) and runs each for
# SECONDS (default 60), starting from its seed corpus tests/fuzz/corpus/<target>/. New inputs go
# to build-fuzz/corpus/<target>/, crash reproducers to build-fuzz/findings/<target>/. Prints and
# writes build-fuzz/fuzz-report.md: per target the seconds run, executions, coverage and findings.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     targets: parse gateway_http config coap_forwarding dtls_datagram scenario replay
#
# Exit 0 when no target found anything, 1 when one did (its reproducer is named), 2 on usage.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="${ESTLAB_FUZZ_BUILD_DIR:-$root/build-fuzz}"
seconds="${1:-60}"
case "$seconds" in -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "fuzz.sh: SECONDS must be a positive whole number, not '$seconds'" >&2; exit 2
fi
shift || true
all=(parse gateway_http config coap_forwarding dtls_datagram scenario replay)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")
for t in "${targets[@]}"; do
  [[ " ${all[*]} " == *" $t "* ]] || { echo "fuzz.sh: unknown target '$t' (known: ${all[*]})" >&2; exit 2; }
done
command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ is needed (apt-get install clang)" >&2; exit 2; }

if [ ! -f "$build/CMakeCache.txt" ]; then
  generator=()
  command -v ninja >/dev/null && generator=(-G Ninja)
  # Every library is instrumented for coverage and sanitizers; only the targets link libFuzzer.
  cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DESTLAB_FUZZ=ON \
    -DCMAKE_C_FLAGS="-fsanitize=address,undefined -fsanitize=fuzzer-no-link" \
    -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined -fsanitize=fuzzer-no-link" >/dev/null
fi
cmake --build "$build" --parallel "${ESTLAB_JOBS:-$(nproc)}" --target $(printf 'estlab_%s_fuzz ' "${targets[@]}")

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
cat "$report"
exit $found
