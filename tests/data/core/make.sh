#!/bin/sh
# Regenerates the core library's test data with the openssl command (a third-party tool, so the
# tests check estlab's parsers against someone else's encoder) and writes expected.txt: the values
# the tests assert, as openssl itself reports them.
#
#   sh tests/data/core/make.sh        (needs OpenSSL >= 3.0 and GNU date)
#
# Dates are fixed (openssl ca -startdate/-enddate, -crl_lastupdate/-crl_nextupdate, a fixed
# revocation date in the CA database) so validation times in the tests never depend on the day the
# data were made. Keys, signatures and therefore fingerprints change on every run; expected.txt
# records them.
set -eu

OUT=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export WORK
cd "$WORK"

NAMEOPT="sep_comma_plus,sname,utf8,esc_ctrl"

# ---------------------------------------------------------------- keys
# Root: RSA 2048 in the traditional "RSA PRIVATE KEY" form.
openssl genrsa -traditional -out "$OUT/root.key.pem" 2048 2>/dev/null
# Intermediate: EC P-384, PKCS#8.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$OUT/int.key.pem"
# Leaf: EC P-256, traditional "EC PRIVATE KEY" preceded by an "EC PARAMETERS" block.
openssl ecparam -name prime256v1 -genkey -out "$OUT/leaf.key.pem"
# Key of the openssl-made CSR, and an Ed25519 key (PKCS#8).
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$OUT/csr.key.pem"
openssl genpkey -algorithm ED25519 -out "$OUT/ed25519.key.pem"
# A pool of RSA keys for tests that only need a key of that size: generating RSA 4096 takes
# seconds, and every test runs in its own process. PrivateKey.GenerateEachTypeHasThatType still
# generates each type for real.
for bits in 2048 3072 4096; do
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:$bits -out "$OUT/pool-rsa$bits.key.pem" 2>/dev/null
done
# The leaf key encrypted: as PKCS#8 ("ENCRYPTED PRIVATE KEY") and traditionally (Proc-Type header).
openssl pkcs8 -topk8 -v2 aes-128-cbc -passout pass:estlab -in "$OUT/leaf.key.pem" -out "$OUT/leaf.key.enc-pkcs8.pem"
openssl ec -aes128 -passout pass:estlab -in "$OUT/leaf.key.pem" -out "$OUT/leaf.key.enc-trad.pem" 2>/dev/null

# ---------------------------------------------------------------- CA configuration
mkdir -p root/newcerts int/newcerts
: > root/index.txt
: > int/index.txt
echo 01 > root/crlnumber
echo 2a > int/crlnumber
cat > ca.cnf <<'EOF'
[ ca ]
default_ca = CA_root

[ CA_root ]
dir = $ENV::WORK/root
database = $dir/index.txt
new_certs_dir = $dir/newcerts
serial = $dir/serial
crlnumber = $dir/crlnumber
default_md = sha256
policy = policy_any
unique_subject = no
preserve = yes
email_in_dn = yes

[ CA_int ]
dir = $ENV::WORK/int
database = $dir/index.txt
new_certs_dir = $dir/newcerts
serial = $dir/serial
crlnumber = $dir/crlnumber
default_md = sha256
policy = policy_any
unique_subject = no
preserve = yes
email_in_dn = yes

[ policy_any ]
countryName = optional
organizationName = optional
organizationalUnitName = optional
commonName = supplied

[ v3_root ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ v3_int ]
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, digitalSignature, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ v3_leaf ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, keyAgreement
extendedKeyUsage = clientAuth, serverAuth
subjectAltName = DNS:device-1.example, DNS:alt.example, IP:192.0.2.10, IP:2001:db8::10, email:ops@example.com, URI:coap://device-1.example:5684/est
certificatePolicies = 2.999.7030.1.1, 1.3.6.1.4.1.99999.7
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ v3_server ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:server.example
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ v3_plain ]
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ v3_kusign ]
keyUsage = critical, digitalSignature, keyCertSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ v3_revoked ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = DNS:device-revoked.example
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF

# issue CA_NAME SERIAL KEY SUBJECT EXTENSIONS START END OUTPUT [extra ca options]
issue() {
  ca=$1 serial=$2 key=$3 subject=$4 exts=$5 start=$6 end=$7 out=$8
  shift 8
  dir=root
  [ "$ca" = CA_int ] && dir=int
  echo "$serial" > "$dir/serial"
  openssl req -new -key "$key" -subj "$subject" -out req.tmp
  openssl ca -batch -config ca.cnf -name "$ca" -in req.tmp -out "$out" -notext -preserveDN \
    -startdate "$start" -enddate "$end" -extensions "$exts" "$@" 2>/dev/null
}

issue CA_root 1001 "$OUT/root.key.pem" "/C=DE/O=estlab Lab/CN=estlab Test Root CA" v3_root \
  240101000000Z 440101000000Z "$OUT/root.cert.pem" -selfsign -keyfile "$OUT/root.key.pem"
issue CA_root 2002 "$OUT/int.key.pem" "/C=DE/O=estlab Lab/CN=estlab Test Issuing CA" v3_int \
  240601000000Z 340601000000Z "$OUT/int.cert.pem" -cert "$OUT/root.cert.pem" -keyfile "$OUT/root.key.pem"
INT="-cert $OUT/int.cert.pem -keyfile $OUT/int.key.pem"
# shellcheck disable=SC2086
issue CA_int 0a1b2c3d4e5f "$OUT/leaf.key.pem" "/C=DE/O=estlab Lab/OU=Devices/CN=device-1.example" v3_leaf \
  250101000000Z 260101000000Z "$OUT/leaf.cert.pem" $INT
# A serial whose first byte has the high bit set: DER adds a 00 byte that serial_hex must not show.
# shellcheck disable=SC2086
issue CA_int c0ffee "$OUT/leaf.key.pem" "/O=estlab Lab/CN=server.example" v3_server \
  250101000000Z 300101000000Z "$OUT/server.cert.pem" $INT
# shellcheck disable=SC2086
issue CA_int 3003 "$OUT/leaf.key.pem" "/CN=device-revoked" v3_revoked \
  250101000000Z 300101000000Z "$OUT/revoked.cert.pem" $INT
# No extensions but the key identifiers; notAfter past 2049, so a GeneralizedTime (RFC 5280 4.1.2.5).
# shellcheck disable=SC2086
issue CA_int 4004 "$OUT/leaf.key.pem" "/CN=plain" v3_plain \
  250101000000Z 20550101000000Z "$OUT/plain.cert.pem" $INT
# keyUsage keyCertSign without basicConstraints: RFC 5280 4.2.1.9 says its key MUST NOT verify
# certificate signatures, so it is not a CA certificate.
# shellcheck disable=SC2086
issue CA_int 5005 "$OUT/leaf.key.pem" "/CN=no-basic-constraints" v3_kusign \
  250101000000Z 300101000000Z "$OUT/kusign.cert.pem" $INT
rm -f req.tmp

# ---------------------------------------------------------------- CRLs
# Revoke 3003 (keyCompromise) and record two more revocations (superseded; no reason) directly in
# the CA database, with fixed revocation dates.
# shellcheck disable=SC2086
openssl ca -batch -config ca.cnf -name CA_int -revoke "$OUT/revoked.cert.pem" -crl_reason keyCompromise $INT 2>/dev/null
awk -F '\t' 'BEGIN { OFS = "\t" } $4 == "3003" { $3 = "250315120000Z,keyCompromise" } { print }' int/index.txt > index.new
mv index.new int/index.txt
printf 'R\t300101000000Z\t250401000000Z,superseded\t3004\tunknown\t/CN=device-superseded\n' >> int/index.txt
printf 'R\t300101000000Z\t250402000000Z\t3005\tunknown\t/CN=device-no-reason\n' >> int/index.txt
# shellcheck disable=SC2086
openssl ca -batch -config ca.cnf -name CA_int -gencrl -crl_lastupdate 250601000000Z -crl_nextupdate 350601000000Z \
  $INT -out "$OUT/int.crl.pem" 2>/dev/null
openssl ca -batch -config ca.cnf -name CA_root -gencrl -crl_lastupdate 250601000000Z -crl_nextupdate 350601000000Z \
  -cert "$OUT/root.cert.pem" -keyfile "$OUT/root.key.pem" -out "$OUT/root.crl.pem" 2>/dev/null
openssl crl -in "$OUT/int.crl.pem" -outform DER -out "$OUT/int.crl.der"

# ---------------------------------------------------------------- other certificate forms
openssl x509 -in "$OUT/leaf.cert.pem" -outform DER -out "$OUT/leaf.cert.der"
openssl x509 -in "$OUT/root.cert.pem" -outform DER -out "$OUT/root.cert.der"
cat "$OUT/leaf.cert.pem" "$OUT/int.cert.pem" "$OUT/root.cert.pem" > "$OUT/chain.pem"
# "TRUSTED CERTIFICATE": the certificate followed by OpenSSL's trust settings.
openssl x509 -in "$OUT/root.cert.pem" -trustout -addtrust clientAuth -out "$OUT/root.trusted.pem"

# ---------------------------------------------------------------- a CSR made by openssl
cat > req.cnf <<'EOF'
[ req ]
prompt = no
distinguished_name = req_dn
attributes = req_attrs
[ req_dn ]
C = DE
O = estlab Lab
CN = csr-device.example
[ req_attrs ]
challengePassword = Secret-1234
unstructuredName = estlab unit
EOF
openssl req -new -config req.cnf -key "$OUT/csr.key.pem" -sha256 \
  -addext "subjectAltName=DNS:csr-device.example,IP:198.51.100.7,IP:2001:db8::7,email:csr@example.com" \
  -addext "extendedKeyUsage=clientAuth,1.3.6.1.5.5.7.3.28" \
  -addext "keyUsage=critical,digitalSignature,keyEncipherment" \
  -out "$OUT/openssl.csr.pem"
openssl req -in "$OUT/openssl.csr.pem" -outform DER -out "$OUT/openssl.csr.der"

# ---------------------------------------------------------------- PKCS#7 / CMS
openssl crl2pkcs7 -nocrl -certfile "$OUT/chain.pem" -outform DER -out "$OUT/p7-nocrl.der"
openssl crl2pkcs7 -in "$OUT/int.crl.pem" -certfile "$OUT/leaf.cert.pem" -outform DER -out "$OUT/p7-crl.der"
openssl crl2pkcs7 -nocrl -certfile "$OUT/chain.pem" -out "$OUT/p7-nocrl.pem"
printf 'estlab signed content\n' > content.txt
openssl smime -sign -in content.txt -signer "$OUT/leaf.cert.pem" -inkey "$OUT/leaf.key.pem" \
  -outform DER -nodetach -out "$OUT/p7-signed.der"
openssl cms -data_create -in content.txt -outform DER -out "$OUT/cms-data.der"

# ---------------------------------------------------------------- expected.txt
iso() { sed 's/^[^=]*=//; s/ /T/'; }                       # "notBefore=2025-01-01 00:00:00Z"
ext_line() { tail -n +2 | sed 's/^ *//' | paste -sd '|' -; } # an extension's printed lines after the title
cert_facts() {
  name=$1 file=$2
  echo "$name.subject=$(openssl x509 -in "$file" -noout -subject -nameopt "$NAMEOPT" | sed 's/^subject=//')"
  echo "$name.issuer=$(openssl x509 -in "$file" -noout -issuer -nameopt "$NAMEOPT" | sed 's/^issuer=//')"
  echo "$name.serial=$(openssl x509 -in "$file" -noout -serial | sed 's/^serial=//' | tr 'A-F' 'a-f')"
  echo "$name.not_before=$(openssl x509 -in "$file" -noout -startdate -dateopt iso_8601 | iso)"
  echo "$name.not_after=$(openssl x509 -in "$file" -noout -enddate -dateopt iso_8601 | iso)"
  echo "$name.sha256=$(openssl x509 -in "$file" -noout -fingerprint -sha256 | sed 's/^.*=//' | tr 'A-F' 'a-f')"
  for ext in subjectAltName extendedKeyUsage keyUsage basicConstraints certificatePolicies; do
    echo "$name.$ext=$(openssl x509 -in "$file" -noout -ext "$ext" 2>/dev/null | ext_line)"
  done
}
rfc822_to_iso() { date -u -d "$1" +%Y-%m-%dT%H:%M:%SZ; }

{
  echo "# Generated by make.sh from openssl's own output ($(openssl version | cut -d' ' -f1-2)); do not edit."
  echo "# Names: openssl -nameopt $NAMEOPT (encoded order). Lists: openssl's printing, '|' between lines."
  for c in root int leaf server revoked plain kusign; do cert_facts "$c" "$OUT/$c.cert.pem"; done

  echo "crl.issuer=$(openssl crl -in "$OUT/int.crl.pem" -noout -issuer -nameopt "$NAMEOPT" | sed 's/^issuer=//')"
  echo "crl.this_update=$(openssl crl -in "$OUT/int.crl.pem" -noout -lastupdate -dateopt iso_8601 | iso)"
  echo "crl.next_update=$(openssl crl -in "$OUT/int.crl.pem" -noout -nextupdate -dateopt iso_8601 | iso)"
  echo "crl.number=$(printf '%d' "$(openssl crl -in "$OUT/int.crl.pem" -noout -crlnumber | sed 's/^crlNumber=//')")"
  # One line per entry: "serial|revocation date|reason as openssl prints it" (reason empty when none).
  openssl crl -in "$OUT/int.crl.pem" -noout -text | awk '
    /Serial Number:/ { if (serial != "") print serial "\t" date "\t" reason; serial = $3; reason = ""; next }
    /Revocation Date:/ { sub(/^ *Revocation Date: /, ""); date = $0; next }
    /CRL Reason Code:/ { want = 1; next }
    want { sub(/^ */, ""); reason = $0; want = 0; next }
    /Signature Algorithm/ && serial != "" { print serial "\t" date "\t" reason; serial = "" }
  ' > entries.tmp
  i=0
  while IFS="$(printf '\t')" read -r serial date reason; do
    i=$((i + 1))
    echo "crl.entry.$i=$(echo "$serial" | tr 'A-F' 'a-f')|$(rfc822_to_iso "$date")|$reason"
  done < entries.tmp
  echo "crl.entries=$i"
  echo "root_crl.number=$(printf '%d' "$(openssl crl -in "$OUT/root.crl.pem" -noout -crlnumber | sed 's/^crlNumber=//')")"

  echo "csr.subject=$(openssl req -in "$OUT/openssl.csr.pem" -noout -subject -nameopt "$NAMEOPT" | sed 's/^subject=//')"
  openssl req -in "$OUT/openssl.csr.pem" -noout -text > csr.txt
  echo "csr.subjectAltName=$(grep -A1 'Subject Alternative Name' csr.txt | tail -1 | sed 's/^ *//')"
  echo "csr.extendedKeyUsage=$(grep -A1 'Extended Key Usage' csr.txt | tail -1 | sed 's/^ *//')"
  echo "csr.keyUsage=$(grep -A1 'X509v3 Key Usage' csr.txt | tail -1 | sed 's/^ *//')"
  echo "csr.challengePassword=$(grep 'challengePassword' csr.txt | sed 's/^[^:]*://')"
  echo "csr.unstructuredName=$(grep 'unstructuredName' csr.txt | sed 's/^[^:]*://')"
  echo "csr.challengePassword_type=$(openssl asn1parse -in "$OUT/openssl.csr.pem" | grep -A2 ':challengePassword' | grep -o 'PRINTABLESTRING\|UTF8STRING' | head -1)"
  echo "csr.signature_algorithm=$(grep -m1 'Signature Algorithm' csr.txt | sed 's/^.*: *//')"
  echo "csr.public_key_sha256=$(openssl req -in "$OUT/openssl.csr.pem" -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1)"

  echo "leaf_key.public_key_sha256=$(openssl pkey -in "$OUT/leaf.key.pem" -pubout -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1)"
  echo "root_key.public_key_sha256=$(openssl pkey -in "$OUT/root.key.pem" -pubout -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1)"
  echo "ed25519_key.public_key_sha256=$(openssl pkey -in "$OUT/ed25519.key.pem" -pubout -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1)"

  echo "p7-nocrl.certificates=$(openssl pkcs7 -inform DER -in "$OUT/p7-nocrl.der" -print_certs -noout | grep -c '^subject=')"
  echo "p7-crl.certificates=$(openssl pkcs7 -inform DER -in "$OUT/p7-crl.der" -print_certs -noout | grep -c '^subject=')"
} > "$OUT/expected.txt"

echo "wrote $OUT"
