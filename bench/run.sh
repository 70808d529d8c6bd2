#!/usr/bin/env bash
# One benchmark run: the crypto bound of this machine measured now, and estlab against it.
# Writes bench/results/bench-<UTC time>.json and .md and prints the Markdown table.
#
#   bench/run.sh [--quick] [--devices N]
#
# Measures, in this order and in this one run:
#   - the bound, as OpenSSL measures it: `openssl speed` ECDSA P-256 sign/verify and ECDH (prepared
#     contexts), and full mutual-TLS 1.3 handshakes on loopback (`openssl s_time -new` against
#     `openssl s_server -Verify`, the fixture set's P-256 keys), with the CPU both spent on each:
#     the cost of OpenSSL's own TLS stack, and so a second, reachable bound for enrollments;
#   - HTTPS enrollments/s with a full handshake each: `estlab fleet --mix enroll` against a separate
#     `estlab gateway` process, and its ratio to the bound of one enrollment (one handshake, one
#     CSR verify and one certificate signature, cores used as OpenSSL would);
#   - EST-coaps enrollments/s with a full DTLS handshake each: `estlab fleet --transport coaps`
#     through a separate `estlab coap-proxy` process in front of a protocol-gateway `estlab gateway`,
#     as a ratio to the same bound and to HTTPS enrollments/s against that same gateway;
#   - keep-alive enrollments/s from build/bench/estlab_gateway_bench;
#   - the fleet's peak RSS for N devices (default 10000) in flight as the gateway allows;
#   - the whole suite's wall time against the embedded lab.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="${ESTLAB_BUILD_DIR:-$root/build}"
estlab="$build/cli/estlab"
quick=0; devices=10000
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --quick) quick=1; shift ;;
    --devices) devices="${2:?--devices needs a number}"; shift 2 ;;
    *) echo "bench/run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$devices" =~ ^[0-9]+$ ]] || { echo "bench/run.sh: --devices must be a whole number" >&2; exit 2; }
[ -x "$estlab" ] || { echo "bench/run.sh: $estlab missing: run ./scripts/build.sh" >&2; exit 2; }
secs=3; [ "$quick" = 1 ] && secs=1
work=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cores=$(nproc)
stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$root/bench/results"

echo "== fixtures"; "$estlab" fixtures "$work/lab" >/dev/null
lab="$work/lab"

echo "== openssl speed (bound, ${secs} s each)"
speed=$(openssl speed -seconds "$secs" -mr ecdsap256 ecdhp256 2>/dev/null)
# -mr lines: +F4:<n>:<bits>:<sign/s>:<verify/s> and +F5:<n>:<bits>:<ECDH ops/s>:<s per op>
sign=$(echo "$speed" | awk -F: '/^\+F4:/ && $3==256 {print int($4)}' | head -1)
verify=$(echo "$speed" | awk -F: '/^\+F4:/ && $3==256 {print int($5)}' | head -1)
ecdh=$(echo "$speed" | awk -F: '/^\+F5:/ && $3==256 {print int($4)}' | head -1)

echo "== TLS 1.3 mutual handshakes (openssl s_server / s_time, one client, ${secs} s)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# Both sides verify a real chain: the server the device's leaf under its issuing CA (given with the
# anchors), the client the gateway's chain.
cat "$lab/trust/anchors.pem" "$lab/devices/device-factory-chain.pem" > "$work/server-ca.pem"
openssl s_server -accept "127.0.0.1:$port" -naccept 1000000 -quiet -tls1_3 -cert "$lab/gateway/gateway-tls.pem" \
  -cert_chain "$lab/gateway/gateway-tls-chain.pem" -key "$lab/gateway/gateway-tls.key" -Verify 2 -CAfile "$work/server-ca.pem" \
  -www >/dev/null 2>&1 &
server=$!
sleep 0.5
# "N connections in T real seconds": one client is latency-bound, so the rate says little; the CPU
# time both OpenSSL processes spent per handshake is the cost of OpenSSL's own TLS stack, and the
# cores divided by it the most handshakes per second this machine can do with it.
s_time_out=$(/usr/bin/time -f "cpu %U %S" openssl s_time -connect "127.0.0.1:$port" -new -time "$secs" -verify 2 \
  -cert "$lab/devices/device-factory.pem" -key "$lab/devices/device-factory.key" -CAfile "$lab/trust/anchors.pem" 2>&1 || true)
server_cpu=$(awk -v t="$(getconf CLK_TCK)" '{print ($14+$15)/t}' "/proc/$server/stat")
kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true
handshakes=$(echo "$s_time_out" | awk '/connections in [0-9]+ real seconds/ {print $1; exit}')
handshakes_per_s=$(echo "$s_time_out" | awk '/connections in [0-9]+ real seconds/ {print int($1/$4); exit}')
client_cpu=$(echo "$s_time_out" | awk '/^cpu / {print $2+$3; exit}')
[ -n "$handshakes" ] && [ "$handshakes" -gt 0 ] || { echo "bench/run.sh: openssl s_time made no handshake:" >&2; echo "$s_time_out" >&2; exit 1; }
handshake_cpu_ms=$(python3 -c "print(round(1000*($server_cpu+$client_cpu)/$handshakes, 3))")
tls_stack_bound=$(python3 -c "print(int($cores*1000/$handshake_cpu_ms))")
# The bound of one enrollment with a full mutual-TLS 1.3 handshake, fleet and gateway on this
# machine, in P-256 operations of both sides: ECDHE 2 key generations + 2 derivations (4 ECDH);
# signatures: 2 CertificateVerify, the device's CSR, the CA's certificate, the device key's
# generation (about one signature) = 5; verifications: server chain by the device (2), client
# chain by the gateway (2, with its CertificateVerify), CSR = 5. Per core, times the cores.
bound=$(python3 -c "s,v,e,c=$sign,$verify,$ecdh,$cores; print(int(c/(5/s+5/v+4/e)))")
# The same enrollment with its handshake at what OpenSSL's own s_server and s_time spend on one
# (measured above) instead of the handshake's bare signatures: the bound a TLS stack built on this
# OpenSSL can reach. Left beside it: the CSR's signature and verification, the certificate's
# signature and the device key's generation.
tls_bound=$(python3 -c "s,v,c,h=$sign,$verify,$cores,$handshake_cpu_ms/1000; print(int(c/(h+3/s+1/v)))")

echo "== estlab gateway (separate process) and the fleet"
gwport="$work/gw.port"
"$estlab" gateway --lab "$lab" --profile rfc7030 --port 0 --port-file "$gwport" --quiet 2>"$work/gw.log" &
for _ in $(seq 50); do [ -s "$gwport" ] && break; sleep 0.1; done
cat > "$work/target.yaml" <<EOT
name: bench gateway
profile: rfc7030
base_url: https://127.0.0.1:$(cat "$gwport")
trust_anchors: $lab/trust/anchors.pem
key_type: ec-p256
identities:
  device-factory: {certificate: $lab/devices/device-factory-chain.pem, key: $lab/devices/device-factory.key}
subject_template: "C=SE,O=estlab lab devices,CN={{cn}}"
EOT
n_enroll=$(( quick ? 500 : 3000 ))
/usr/bin/time -f "%M" -o "$work/rss-enroll" "$estlab" fleet --target "$work/target.yaml" --out "$work/fleet-enroll" --quiet \
  --devices "$n_enroll" --concurrency 64 --mix enroll --seed 1 >/dev/null
enroll_per_s=$(python3 -c "import json; print(round(json.load(open('$work/fleet-enroll/fleet.json'))['exchanges_per_second'],1))")
p99=$(python3 -c "import json; print(json.load(open('$work/fleet-enroll/fleet.json'))['latency_ms']['p99'])")
/usr/bin/time -f "%M" -o "$work/rss-fleet" "$estlab" fleet --target "$work/target.yaml" --out "$work/fleet-many" --quiet \
  --devices "$devices" --concurrency 500 --mix enroll --seed 2 >/dev/null
rss_kib=$(cat "$work/rss-fleet")
kill %1 2>/dev/null || true

echo "== EST-coaps through the CoAP proxy (separate processes) against HTTPS to the same protocol-gateway"
pgport="$work/pg.port"; coapport="$work/coap.port"
"$estlab" gateway --lab "$lab" --profile protocol-gateway --port 0 --port-file "$pgport" --quiet 2>"$work/pg.log" &
pg=$!
for _ in $(seq 50); do [ -s "$pgport" ] && break; sleep 0.1; done
"$estlab" coap-proxy --lab "$lab" --port 0 --port-file "$coapport" --est-url "https://127.0.0.1:$(cat "$pgport")/.well-known/est" \
  --quiet 2>"$work/coap.log" &
proxy=$!
for _ in $(seq 50); do [ -s "$coapport" ] && break; sleep 0.1; done
cat > "$work/pg-target.yaml" <<EOT
name: bench protocol-gateway
profile: protocol-gateway
base_url: https://127.0.0.1:$(cat "$pgport")
coaps_port: $(cat "$coapport")
trust_anchors: $lab/trust/anchors.pem
key_type: ec-p256
identities:
  device-factory: {certificate: $lab/devices/device-factory-chain.pem, key: $lab/devices/device-factory.key}
EOT
for transport in https coaps; do
  "$estlab" fleet --target "$work/pg-target.yaml" --profile protocol-gateway --transport "$transport" --out "$work/fleet-pg-$transport" \
    --quiet --devices "$n_enroll" --concurrency 64 --mix enroll --seed 3 >/dev/null
done
pg_https_per_s=$(python3 -c "import json; print(round(json.load(open('$work/fleet-pg-https/fleet.json'))['exchanges_per_second'],1))")
coaps_per_s=$(python3 -c "import json; print(round(json.load(open('$work/fleet-pg-coaps/fleet.json'))['exchanges_per_second'],1))")
coaps_p99=$(python3 -c "import json; print(json.load(open('$work/fleet-pg-coaps/fleet.json'))['latency_ms']['p99'])")
kill "$proxy" "$pg" 2>/dev/null || true; wait "$proxy" "$pg" 2>/dev/null || true

echo "== keep-alive (estlab_gateway_bench)"
"$build/bench/estlab_gateway_bench" --seconds "$secs" --json "$work/gw-bench.json" >/dev/null
keepalive=$(python3 -c "
import json; d=json.load(open('$work/gw-bench.json'))
ph=[p for p in d['rows'] if p['id']=='https_simpleenroll_parallel'] or [p for p in d['rows'] if p['id']=='https_simpleenroll_keepalive']
print(round(ph[0]['per_second'],1) if ph else 'n/a')" 2>/dev/null || echo n/a)

echo "== the suite against the embedded lab"
start=$(date +%s.%N)
"$estlab" run --out "$work/suite" -j "$cores" >/dev/null 2>&1 || true
suite_s=$(python3 -c "print(round($(date +%s.%N)-$start,1))")

python3 - "$root/bench/results/bench-$stamp" <<PY
import json, sys
out = sys.argv[1]
r = {"format": "estlab-bench", "time": "$stamp", "cores": $cores,
     "bound": {"ecdsa_p256_sign_per_s": $sign, "ecdsa_p256_verify_per_s": $verify, "ecdh_p256_per_s": $ecdh,
               "tls13_mutual_handshakes_per_s": $handshakes_per_s, "enrollments_per_s": $bound,
               "openssl_tls13_mutual_handshake_cpu_ms": $handshake_cpu_ms, "openssl_tls13_handshakes_per_s_all_cores": $tls_stack_bound,
               "enrollments_per_s_at_openssl_handshake_cost": $tls_bound},
     "https_enrollments_full_handshake_per_s": $enroll_per_s, "https_enrollment_p99_ms": $p99,
     "https_enrollments_keepalive_per_s": "$keepalive",
     "coaps_enrollments_per_s": $coaps_per_s, "coaps_enrollment_p99_ms": $coaps_p99,
     "https_enrollments_same_gateway_per_s": $pg_https_per_s,
     "fleet_devices": $devices, "fleet_peak_rss_mib": round($rss_kib/1024, 1),
     "suite_wall_s": $suite_s}
r["ratio_full_handshake_to_bound"] = round(r["https_enrollments_full_handshake_per_s"] / r["bound"]["enrollments_per_s"], 3)
r["ratio_full_handshake_to_openssl_tls_bound"] = round(r["https_enrollments_full_handshake_per_s"] / r["bound"]["enrollments_per_s_at_openssl_handshake_cost"], 3)
r["ratio_coaps_to_bound"] = round(r["coaps_enrollments_per_s"] / r["bound"]["enrollments_per_s"], 3)
r["ratio_coaps_to_https_same_gateway"] = round(r["coaps_enrollments_per_s"] / r["https_enrollments_same_gateway_per_s"], 3)
open(out + ".json", "w").write(json.dumps(r, indent=2) + "\n")
md = f"""| what | measured | bound (same run) | ratio |
|---|---|---|---|
| ECDSA P-256 sign / verify per s (openssl speed, 1 core) | {r['bound']['ecdsa_p256_sign_per_s']} / {r['bound']['ecdsa_p256_verify_per_s']} | | |
| ECDH P-256 per s (1 core) | {r['bound']['ecdh_p256_per_s']} | | |
| mutual TLS 1.3 handshakes per s (openssl s_time, 1 client, latency-bound) | {r['bound']['tls13_mutual_handshakes_per_s']} | | |
| CPU per mutual TLS 1.3 handshake, OpenSSL's s_server + s_time | {r['bound']['openssl_tls13_mutual_handshake_cpu_ms']} ms: {r['bound']['openssl_tls13_handshakes_per_s_all_cores']} handshakes/s on {$cores} cores | | |
| HTTPS enrollments/s, full handshake each (fleet, {$cores} cores) | {r['https_enrollments_full_handshake_per_s']} (p99 {r['https_enrollment_p99_ms']} ms) | {r['bound']['enrollments_per_s']} (signatures only) | {r['ratio_full_handshake_to_bound']} |
| the same, against the bound with OpenSSL's handshake cost | | {r['bound']['enrollments_per_s_at_openssl_handshake_cost']} | {r['ratio_full_handshake_to_openssl_tls_bound']} |
| HTTPS enrollments/s, keep-alive (estlab_gateway_bench) | {r['https_enrollments_keepalive_per_s']} | | |
| EST-coaps enrollments/s through the proxy, full DTLS handshake each (fleet, protocol-gateway) | {r['coaps_enrollments_per_s']} (p99 {r['coaps_enrollment_p99_ms']} ms) | {r['bound']['enrollments_per_s']} | {r['ratio_coaps_to_bound']} |
| HTTPS enrollments/s to that same protocol-gateway; coaps / HTTPS | {r['https_enrollments_same_gateway_per_s']} | | coaps {r['ratio_coaps_to_https_same_gateway']} of HTTPS |
| fleet peak RSS, {r['fleet_devices']} devices | {r['fleet_peak_rss_mib']} MiB | 1024 MiB target | |
| whole suite against the embedded lab | {r['suite_wall_s']} s | | |
"""
open(out + ".md", "w").write(md)
print(md)
print("wrote", out + ".json", "and", out + ".md")
PY
