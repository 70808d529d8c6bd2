"""`estlab gateway` driven by independent peers, the way RFC 7030's own examples do it: curl fetches
/cacerts and posts requests, `openssl req` makes the CSRs, `openssl cms` signs Full PKI Requests,
and `openssl pkcs7 / x509 / verify / asn1parse` judge the answers. Every refusal is checked twice:
its HTTP status, and the rule the gateway's log line names for it.

Gateways: one per profile for the module (`gateways`), each on its own fresh lab, for tests that
do not depend on CA state; a private lab and gateway (`start_gateway`) for tests that change it
(re-enrollment, revocation) or need other options. Every gateway must stop on SIGTERM with exit 0
within 10 s; every subprocess runs with a timeout. Requirement IDs: ../../../shared/spec/catalog.md
and protocol-gateway-profile.md.
"""

from __future__ import annotations

import base64
import concurrent.futures
import os
import re
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from conftest import Estlab, FixtureSet, cert_der, certs_in_pem
from gateway_support import (CMC_REQUEST, PKCS10, PROFILES, TLS_VERSIONS, Gateway, Response, b64_lines,
                             b64_strict, certs_of_pkcs7, corrupt_signature, curl_env, device_subject, ext_of, issuer_of,
                             make_csr, make_full_pki_request, media_type, openssl_ok, openssl_subject_line,
                             pubkey_of_cert, run_bytes, split_multipart, subject_of)

PREREG_USER, PREREG_PASSWORD = "device-0001", "prereg-secret-0001"
FACTORY_CN = "device-0001"  # device-factory's commonName, also the preregistered device


# ---------------------------------------------------------------------------------------------
# Gateways
# ---------------------------------------------------------------------------------------------


class GatewayPool:
    """One gateway per profile, each on a fresh lab, started on first use."""

    def __init__(self, estlab: Estlab, base: Path):
        self.estlab, self.base = estlab, base
        self.gateways: dict[str, Gateway] = {}

    def get(self, profile: str) -> Gateway:
        if profile not in self.gateways:
            lab = self.estlab.generate(self.base / f"lab-{profile}")
            self.gateways[profile] = Gateway(self.estlab.binary, lab, self.base / f"gw-{profile}", profile=profile).start()
        gw = self.gateways[profile]
        assert gw.alive(), f"the shared {profile} gateway has exited\n--- stderr (tail)\n{gw.stderr()[-3000:]}"
        return gw

    def stop_all(self):
        codes = {profile: gw.stop() for profile, gw in self.gateways.items()}
        assert all(rc == 0 for rc in codes.values()), f"exit codes after SIGTERM: {codes}"


@pytest.fixture(scope="module")
def gateways(estlab, tmp_path_factory):
    pool = GatewayPool(estlab, tmp_path_factory.mktemp("gateways"))
    yield pool
    pool.stop_all()


@pytest.fixture(params=PROFILES)
def gw(request, gateways) -> Gateway:
    """The shared gateway of each profile (the test runs once per profile)."""
    return gateways.get(request.param)


@pytest.fixture
def pg(gateways) -> Gateway:
    return gateways.get("protocol-gateway")


@pytest.fixture
def rfc(gateways) -> Gateway:
    return gateways.get("rfc7030")


@pytest.fixture
def start_gateway(estlab, tmp_path):
    """A private lab and gateway: start_gateway(profile, *args, env=None)."""
    started: list[Gateway] = []

    def start(profile: str | None = "protocol-gateway", *args, env=None, lab: FixtureSet | None = None) -> Gateway:
        n = len(started)
        lab = lab or estlab.generate(tmp_path / f"lab{n}")
        gw = Gateway(estlab.binary, lab, tmp_path / f"gw{n}", profile=profile, args=args, env=env)
        started.append(gw)
        return gw.start()

    yield start
    codes = [gw.stop() for gw in started]
    assert all(rc == 0 for rc in codes), f"exit codes after SIGTERM: {codes}"


# ---------------------------------------------------------------------------------------------
# Helpers: enroll and judge the answer
# ---------------------------------------------------------------------------------------------


def enroll(gw: Gateway, tmp: Path, *, cn: str = FACTORY_CN, subject: str | None = None, op: str = "simpleenroll",
           label: str | None = None, identity: str | None = "device-factory", body=None, csr=None, **kw):
    """Makes a CSR (unless given) and posts it; returns (csr, response)."""
    if csr is None:
        csr = make_csr(tmp, f"{op}-{cn}-{gw._counter}", subject or device_subject(cn),
                       **{k: kw.pop(k) for k in ("san", "attributes", "key_type", "extensions") if k in kw})
    data = csr.body() if body is None else body(csr)
    kw.setdefault("content_type", PKCS10)
    return csr, gw.request(op, label=label, identity=identity, data=data, **kw)


def assert_refused(r: Response, status: int, rule: str | None):
    assert r.status == status, f"expected HTTP {status}{f' ({rule})' if rule else ''}\n{r}"
    if rule is not None:
        assert r.rule() == rule, f"expected the log line to name rule {rule}\n{r}"
    else:
        r.log_line()  # there is one
    assert "pkcs7" not in (r.header("content-type") or ""), f"a refusal carries no certificate\n{r}"


def the_issued_certificate(r: Response, tmp: Path, stem: str = "issued") -> Path:
    """7030-4.2.3-a: 200, application/pkcs7-mime; smime-type=certs-only, exactly one certificate."""
    assert r.status == 200, f"expected 200\n{r}"
    mtype, params = media_type(r.header("content-type"))
    assert mtype == "application/pkcs7-mime" and params.get("smime-type", "").lower() == "certs-only", str(r)
    certs = certs_of_pkcs7(b64_strict(r.body), tmp, stem)
    assert len(certs) == 1, f"an enroll answer holds only the new certificate, got {len(certs)}\n{r}"
    return certs[0]


def check_issued(cert: Path, csr, lab: FixtureSet, *, cn: str, o: str = "estlab lab devices", ca: str = "issuing"):
    """Subject, issuer, key, EKU and path of an issued certificate, judged by openssl."""
    assert subject_of(cert) == openssl_subject_line(cn, o)
    ca_pem = lab.path(f"ca/{ca}.pem")
    assert issuer_of(cert) == "issuer=" + subject_of(ca_pem).split("=", 1)[1]
    assert pubkey_of_cert(cert) == csr.public_key_pem(), "the certificate does not carry the CSR's public key"
    assert "TLS Web Client Authentication" in ext_of(cert, "extendedKeyUsage")
    v = run_bytes(["openssl", "verify", "-CAfile", lab.path("trust/anchors.pem"), "-untrusted", ca_pem,
                   "-purpose", "sslclient", cert])
    assert v.rc == 0 and b": OK" in v.out, str(v)


def log_tls(r: Response) -> str:
    m = re.search(r" tls=(\S+)", r.log_line())
    return m.group(1) if m else ""


def still_serving(gw: Gateway):
    assert gw.alive(), f"the gateway exited\n--- stderr (tail)\n{gw.stderr()[-3000:]}"
    r = gw.request("cacerts")
    assert r.status == 200, f"the gateway no longer answers /cacerts\n{r}"


def chain_file(tmp: Path, cert: Path, lab: FixtureSet, name: str) -> Path:
    path = tmp / f"{name}-chain.pem"
    path.write_text(cert.read_text() + lab.path("ca/issuing.pem").read_text())
    return path


# ---------------------------------------------------------------------------------------------
# The process: start, stop, command line, configuration errors
# ---------------------------------------------------------------------------------------------


def test_listening_line_names_url_and_profile(gw):
    out = gw.stdout()
    assert f"estlab gateway: listening on https://127.0.0.1:{gw.port}/.well-known/est (profile {gw.profile}" in out, out


def test_sigint_stops_with_exit_0(start_gateway):
    gw = start_gateway("rfc7030")
    assert gw.request("cacerts").status == 200
    assert gw.stop(signal.SIGINT) == 0, gw.stderr()
    assert "estlab gateway: stopped (" in gw.stdout()


def test_fault_list_names_at_least_12_faults(estlab):
    r = estlab("gateway", "--fault", "list")
    assert r.rc == 0, str(r)
    faults = re.findall(r"^\s+([a-z0-9.-]+)\s{2,}\S.*\[[^\]]+\]\s*$", r.out, re.M)
    assert len(faults) >= 12, str(r)
    assert {"skip-eku-check", "accept-revoked", "no-base64"} <= set(faults), str(r)


def test_unknown_fault_exits_2(estlab, tmp_path):
    lab = estlab.generate(tmp_path / "lab")
    r = estlab("gateway", "--lab", lab.dir, "--port", "0", "--port-file", tmp_path / "port", "--fault", "nosuch")
    assert r.rc == 2 and "nosuch" in r.err, str(r)
    assert not (tmp_path / "port").exists()


def test_unknown_profile_exits_2(estlab, tmp_path):
    lab = estlab.generate(tmp_path / "lab")
    r = estlab("gateway", "--lab", lab.dir, "--port", "0", "--profile", "rfc9999")
    assert r.rc == 2 and "rfc9999" in r.err, str(r)


@pytest.mark.parametrize("key,value", [("estlab.listen.port", "notanumber"),
                                       ("allowRenewalWithOldCertificates", "maybe")])
def test_bad_config_value_exits_2_naming_file_line_and_key(estlab, tmp_path, key, value):
    lab = estlab.generate(tmp_path / "lab")
    config = lab.path("config/est.properties")
    lines = config.read_text().splitlines()
    numbers = [i for i, line in enumerate(lines) if re.match(rf"\s*{re.escape(key)}\s*[=:]", line)]
    assert len(numbers) == 1, f"the lab's est.properties should set {key} once"
    lines[numbers[0]] = f"{key} = {value}"
    config.write_text("\n".join(lines) + "\n")
    r = estlab("gateway", "--lab", lab.dir, "--port", "0", "--port-file", tmp_path / "port")
    assert r.rc == 2, str(r)
    assert re.search(rf"est\.properties:{numbers[0] + 1}\b", r.err), f"message must name est.properties:{numbers[0] + 1}\n{r}"
    assert key in r.err and value in r.err, str(r)
    assert not (tmp_path / "port").exists(), "it must not start listening"


# ---------------------------------------------------------------------------------------------
# TLS (7030-3.3-a/b, 8996-1.1-a, 7030-3.3.1-b)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tls", TLS_VERSIONS)
def test_tls_versions_1_2_and_1_3_are_served(gw, tls):
    r = gw.request("cacerts", tls=tls)
    assert r.status == 200, str(r)
    assert tls in log_tls(r), f"the log line should say TLS {tls}\n{r}"


@pytest.mark.parametrize("flag", ["-tls1_1", "-tls1"])
def test_tls_1_1_and_1_0_are_refused_with_protocol_version_alert(pg, flag):
    r = run_bytes(["openssl", "s_client", "-connect", f"127.0.0.1:{pg.port}", flag, "-cipher", "DEFAULT:@SECLEVEL=0",
                   "-CAfile", pg.anchors], input=b"", timeout=15)
    text = (r.out + r.err).decode(errors="replace")
    assert r.rc != 0, f"the handshake with {flag} completed\n{text}"
    assert "alert protocol version" in text, text
    still_serving(pg)


def test_server_certificate_verifies_for_localhost_and_127_0_0_1(pg):
    for check in (["-verify_hostname", "localhost"], ["-verify_ip", "127.0.0.1"]):
        r = run_bytes(["openssl", "s_client", "-connect", f"127.0.0.1:{pg.port}", "-CAfile", pg.anchors,
                       "-verify_return_error", *check], input=b"", timeout=15)
        text = r.out.decode(errors="replace")
        assert "Verify return code: 0 (ok)" in text, text + r.err.decode(errors="replace")


def test_tls_max_option_caps_the_version(start_gateway):
    gw = start_gateway("rfc7030", "--tls-max", "1.2")
    assert gw.request("cacerts", tls="1.2").status == 200
    r = gw.request("cacerts", tls="1.3", expect_transfer=False)
    assert r.curl.rc != 0 and r.status == 0, f"a TLS 1.3-only client must not get an answer\n{r}"


def test_plain_http_to_the_tls_port_gets_400_naming_https(gw):
    """7030-3.3-a; 7030-3.2.3-b: no HTTP authentication challenge in cleartext."""
    r = gw.request("cacerts", url=gw.url("cacerts", scheme="http"), basic=PREREG_BASIC)
    assert r.status == 400, str(r)
    assert r.header("www-authenticate") is None, str(r)
    assert "HTTPS" in r.text, str(r)
    assert r.rule() == "7030-3.3-a", str(r)
    assert b"BEGIN" not in r.body and "pkcs7" not in (r.header("content-type") or "")


def s_client(gw: Gateway, *args, input: bytes = b"") -> tuple[int, str]:
    """`openssl s_client` to the gateway (stdin = input, then EOF); (exit code, stdout + stderr)."""
    r = run_bytes(["openssl", "s_client", "-connect", f"127.0.0.1:{gw.port}", "-CAfile", gw.anchors, *args],
                  input=input, timeout=15)
    return r.rc, (r.out + r.err).decode(errors="replace")


def http_post(op: str, body: bytes, content_type: str = PKCS10) -> bytes:
    return (f"POST /.well-known/est/{op} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


@pytest.mark.parametrize("tls", TLS_VERSIONS)
def test_session_resumption_keeps_the_client_identity(pg, tmp_path, tls):
    """7030-3.3-d: a resumed session (s_client -sess_in) is abbreviated and still authenticates the
    client certificate of the first handshake: the enroll on it passes PG-ENR-1."""
    flag = "-tls1_2" if tls == "1.2" else "-tls1_3"
    chain, key = pg.identity("device-factory")
    session = tmp_path / "session.pem"
    get = b"GET /.well-known/est/cacerts HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    rc, out = s_client(pg, flag, "-ign_eof", "-cert", chain, "-key", key, "-sess_out", session, input=get)
    assert rc == 0 and session.exists(), out
    csr = make_csr(tmp_path, "resumed", device_subject(FACTORY_CN))
    rc, out = s_client(pg, flag, "-ign_eof", "-sess_in", session, input=http_post("simpleenroll", csr.body()))
    assert re.search(r"^Reused, TLSv1\.[23]", out, re.M), f"the session was not resumed\n{out}"
    assert "HTTP/1.1 200 " in out, out
    line = [line for line in pg.stderr().splitlines() if " op=simpleenroll " in line][-1]
    assert f'client="C=SE,O=estlab lab devices,CN={FACTORY_CN}"' in line and " status=200 " in line, line


def test_renegotiation_is_refused(pg):
    """7030-3.5-e / RFC 5929 3.1: no renegotiation (s_client's 'R' command asks for one)."""
    rc, out = s_client(pg, "-tls1_2", input=b"R\n")
    assert "RENEGOTIATING" in out, out
    assert "no renegotiation" in out, f"the gateway must answer a renegotiation with no_renegotiation\n{out}"
    still_serving(pg)


def test_null_and_anonymous_cipher_suites_are_refused(pg):
    """7030-3.2.3-c: NULL-encryption and anonymous suites."""
    rc, out = s_client(pg, "-tls1_2", "-cipher", "aNULL:eNULL:@SECLEVEL=0")
    assert rc != 0 and "alert handshake failure" in out, out
    assert not re.search(r"Cipher is (?!\(NONE\))", out), out


def test_persistent_connection_serves_several_requests(pg, tmp_path):
    """7030-3.2: two requests on one connection (curl reuses it for the second URL)."""
    r = run_bytes(["curl", "-sS", "--cacert", pg.anchors, "-o", tmp_path / "a", "-o", tmp_path / "b",
                   "-w", "%{http_code} %{num_connects}\n", pg.url("cacerts"), pg.url("csrattrs")],
                  timeout=15, env=curl_env())
    assert r.rc == 0 and r.out.decode().split() == ["200", "1", "200", "0"], str(r)


def test_parallel_enrollments_each_get_their_own_certificate(pg, tmp_path):
    csrs = [make_csr(tmp_path, f"parallel-{i}", device_subject(FACTORY_CN)) for i in range(16)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda c: pg.request("simpleenroll", identity="device-factory", data=c.body(),
                                                         content_type=PKCS10), csrs))
    serials = set()
    for i, (csr, r) in enumerate(zip(csrs, responses)):
        cert = the_issued_certificate(r, tmp_path, f"parallel-{i}")
        assert pubkey_of_cert(cert) == csr.public_key_pem(), f"answer {i} carries another request's certificate"
        serials.add(x509_serial(cert))
    assert len(serials) == len(csrs), "serial numbers must be unique"


def test_sigterm_with_open_connections_exits_0_promptly(start_gateway):
    """Idle keep-alive, a half-sent request, a bare TCP connection and a request the gateway never
    answers (fault stall-response) must not hold up shutdown."""
    gw = start_gateway("protocol-gateway", "--fault", "stall-response")
    context = ssl.create_default_context(cafile=str(gw.anchors))
    opened = [socket.create_connection(("127.0.0.1", gw.port), timeout=5)]
    idle = context.wrap_socket(socket.create_connection(("127.0.0.1", gw.port), timeout=5), server_hostname="localhost")
    idle.sendall(b"GET /.well-known/est/cacerts HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert idle.recv(65536).startswith(b"HTTP/1.1 200")
    half = context.wrap_socket(socket.create_connection(("127.0.0.1", gw.port), timeout=5), server_hostname="localhost")
    half.sendall(b"POST /.well-known/est/simpleenroll HTTP/1.1\r\nHost: localhost\r\nContent-Length: 900\r\n\r\nMII")
    opened += [idle, half]
    chain, key = gw.identity("device-factory")
    csr = make_csr(gw.workdir, "stalled", device_subject(FACTORY_CN))
    (gw.workdir / "stalled.b64").write_bytes(csr.body())
    stalled = subprocess.Popen(["curl", "-sS", "--max-time", "20", "--cacert", gw.anchors, "--cert", chain, "--key", key,
                                "-H", f"Content-Type: {PKCS10}", "--data-binary", f"@{gw.workdir / 'stalled.b64'}",
                                gw.url("simpleenroll")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=curl_env())
    try:
        for _ in range(100):  # until the gateway has read the stalled request
            if "rule=fault:stall-response" in gw.stderr():
                break
            time.sleep(0.02)
        started = time.monotonic()
        assert gw.stop() == 0, gw.stderr()[-2000:]
        assert time.monotonic() - started < 5, "shutdown waited for open connections"
        assert stalled.wait(timeout=10) != 0, "the stalled request cannot have been answered"
    finally:
        if stalled.poll() is None:
            stalled.kill()
            stalled.wait(timeout=5)
        for s in opened:
            s.close()


# ---------------------------------------------------------------------------------------------
# /cacerts and routing (7030-4.1.x, 7030-3.2.2-x)
# ---------------------------------------------------------------------------------------------


def openssl_pkcs7_from_body(body: bytes, tmp: Path) -> str:
    """`openssl base64 -d | openssl pkcs7 -inform DER -print_certs`, as a shell user would."""
    one_line = b"\n" not in body.strip()
    der = run_bytes(["openssl", "base64", "-d", *(["-A"] if one_line else [])], input=body)
    assert der.rc == 0 and der.out, str(der)
    assert der.out == b64_strict(body), "openssl base64 -d and a strict decoder disagree"
    (tmp / "bag.der").write_bytes(der.out)
    return openssl_ok("pkcs7", "-inform", "DER", "-in", tmp / "bag.der", "-print_certs").decode()


@pytest.mark.parametrize("tls", TLS_VERSIONS)
def test_cacerts_holds_issuing_and_root_ca(gw, tls, tmp_path):
    r = gw.request("cacerts", tls=tls)  # anonymous: 7030-4.1.2-b
    assert r.status == 200, str(r)
    assert media_type(r.header("content-type"))[0] == "application/pkcs7-mime", str(r)
    pem = openssl_pkcs7_from_body(r.body, tmp_path)
    subjects = re.findall(r"^subject=(.*)$", pem, re.M)
    assert "C = SE, O = estlab lab, CN = estlab Issuing CA" in subjects, pem
    assert "C = SE, O = estlab lab, CN = estlab Root CA" in subjects, pem
    bag = set(certs_in_pem(pem))
    assert cert_der(gw.lab.path("ca/issuing.pem")) in bag and cert_der(gw.lab.path("trust/root-ca.pem")) in bag


def test_cacerts_rollover_label_holds_the_four_rollover_certificates(gw, tmp_path):
    r = gw.request("cacerts", label="rollover")
    assert r.status == 200, str(r)
    pem = openssl_pkcs7_from_body(r.body, tmp_path)
    rollover = [s for s in re.findall(r"^subject=(.*)$", pem, re.M) if s.endswith("CN = estlab Rollover Root CA")]
    assert len(rollover) == 4, pem
    expected = {cert_der(gw.lab.path(f"rollover/{n}.pem"))
                for n in ("old-with-old", "old-with-new", "new-with-old", "new-with-new")}
    assert expected <= set(certs_in_pem(pem)), "the bag must hold OldWithOld, OldWithNew, NewWithOld, NewWithNew"


def test_cacerts_twin_label_serves_that_twin(gw, tmp_path):
    r = gw.request("cacerts", label="twin-a")
    assert r.status == 200, str(r)
    bag = set(certs_in_pem(openssl_pkcs7_from_body(r.body, tmp_path)))
    assert cert_der(gw.lab.path("ca/twin-a.pem")) in bag
    assert cert_der(gw.lab.path("ca/twin-b.pem")) not in bag, "twin-b has the same subject but another key"


@pytest.mark.parametrize("path", ["nosuchlabel/cacerts", "cacerts/cacerts", "nosuchop", "issuing/nosuchop",
                                  "twin-a/cacerts/extra"])
def test_unknown_label_or_operation_is_404(gw, path):
    r = gw.request("cacerts", url=f"https://127.0.0.1:{gw.port}/.well-known/est/{path}")
    assert r.status == 404, str(r)
    assert b"CERTIFICATE" not in r.body and "pkcs7" not in (r.header("content-type") or ""), str(r)


@pytest.mark.parametrize("op,method,allow", [("cacerts", "POST", "GET"), ("csrattrs", "POST", "GET"),
                                             ("simpleenroll", "GET", "POST"), ("simplereenroll", "GET", "POST"),
                                             ("serverkeygen", "GET", "POST"), ("fullcmc", "GET", "POST"),
                                             ("simpleenroll", "PUT", "POST")])
def test_wrong_method_is_405_with_allow(gw, op, method, allow):
    r = gw.request(op, method=method, data=b"" if method != "GET" else None,
                   content_type=PKCS10 if method != "GET" else None)
    assert r.status == 405, str(r)
    assert (r.header("allow") or "").replace(" ", "").split(",") == [allow], str(r)


# ---------------------------------------------------------------------------------------------
# /simpleenroll: what is issued (7030-4.2.x, 8951-3.x, PG-SAN-x)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tls", TLS_VERSIONS)
def test_simpleenroll_issues_the_requested_certificate(gw, tls, tmp_path):
    csr, r = enroll(gw, tmp_path, tls=tls)
    cert = the_issued_certificate(r, tmp_path)
    check_issued(cert, csr, gw.lab, cn=FACTORY_CN)
    assert r.rule() == "ok" and f"serial={x509_serial(cert).lower()}" in r.log_line().lower(), str(r)


def x509_serial(cert: Path) -> str:
    return openssl_ok("x509", "-in", cert, "-noout", "-serial").decode().strip().split("=", 1)[1]


BODY_FORMS = {
    # name: (body from CSR DER, extra headers)   RFC 8951 3 / 3.1
    "one-line": (lambda der: base64.b64encode(der), ()),
    "64-LF-as-openssl-base64": (lambda der: b64_lines(der, 64, b"\n"), ()),
    "76-CRLF-with-CTE-base64": (lambda der: b64_lines(der, 76, b"\r\n"), ("Content-Transfer-Encoding: base64",)),
    "one-line-with-CTE-base64": (lambda der: base64.b64encode(der), ("Content-Transfer-Encoding: base64",)),
    "one-line-with-CTE-binary": (lambda der: base64.b64encode(der), ("Content-Transfer-Encoding: binary",)),
    "spaces-and-tabs": (lambda der: re.sub(rb"(.{16})", rb"\1 \t", base64.b64encode(der)), ()),
}


@pytest.mark.parametrize("form", list(BODY_FORMS))
def test_simpleenroll_accepts_every_base64_form(pg, form, tmp_path):
    make_body, headers = BODY_FORMS[form]
    csr, r = enroll(pg, tmp_path, body=lambda c: make_body(c.der_bytes), headers=headers)
    cert = the_issued_certificate(r, tmp_path)
    assert pubkey_of_cert(cert) == csr.public_key_pem()


def test_simpleenroll_with_label_is_issued_by_that_ca(pg, tmp_path):
    csr, r = enroll(pg, tmp_path, label="twin-a")
    cert = the_issued_certificate(r, tmp_path)
    anchors = pg.lab.path("trust/anchors.pem")
    good = run_bytes(["openssl", "verify", "-CAfile", anchors, "-untrusted", pg.lab.path("ca/twin-a.pem"), cert])
    assert good.rc == 0, f"not issued by twin-a\n{good}"
    bad = run_bytes(["openssl", "verify", "-CAfile", anchors, "-untrusted", pg.lab.path("ca/twin-b.pem"), cert])
    assert bad.rc != 0, "twin-b's key must not verify a twin-a certificate"


@pytest.mark.parametrize("tls", TLS_VERSIONS)
def test_officer_enrolls_on_behalf_of_a_device(gw, tls, tmp_path):
    """PG-AUTH-3 (and plain RFC 7030: any authenticated client may ask for any subject)."""
    cn = f"device-0100-officer-{tls}"
    csr, r = enroll(gw, tmp_path, cn=cn, identity="ra-officer", tls=tls)
    check_issued(the_issued_certificate(r, tmp_path), csr, gw.lab, cn=cn)


@pytest.mark.parametrize("case,attributes,san,expected_san", [
    ("commonName", None, None, "DNS:device-0001"),
    ("unstructuredName", {"unstructuredName": "un-0001.example"}, None, "DNS:un-0001.example"),
    ("csr-has-dns", None, "DNS:given-0001.example", "DNS:given-0001.example"),
])
def test_pg_san_1_dns_name_copied_when_csr_has_none(pg, tmp_path, case, attributes, san, expected_san):
    csr, r = enroll(pg, tmp_path, attributes=attributes, san=san)
    cert = the_issued_certificate(r, tmp_path)
    sans = re.findall(r"(DNS:[^,\s]+|IP Address:[^,\s]+)", ext_of(cert, "subjectAltName"))
    assert sans == [expected_san], f"{case}: SAN is {sans}"


def test_pg_san_2_common_name_copied_from_dns_name(pg, tmp_path):
    csr, r = enroll(pg, tmp_path, subject="/C=SE/O=estlab lab devices", san=f"DNS:{FACTORY_CN}")
    cert = the_issued_certificate(r, tmp_path)
    assert subject_of(cert) == openssl_subject_line(FACTORY_CN)


@pytest.mark.parametrize("key_type", ["rsa2048", "ed25519"])
def test_simpleenroll_other_key_types(gw, tmp_path, key_type):
    """An RSA CSR's body is over 1 KiB, so curl sends it after `Expect: 100-continue`."""
    csr, r = enroll(gw, tmp_path, key_type=key_type)
    check_issued(the_issued_certificate(r, tmp_path), csr, gw.lab, cn=FACTORY_CN)


HTTP_VARIANTS = {
    "content-type-in-capitals": dict(content_type="Application/PKCS10"),
    "chunked-request-body": dict(headers=("Transfer-Encoding: chunked",)),
    "expect-100-continue": dict(headers=("Expect: 100-continue",)),
}


@pytest.mark.parametrize("variant", list(HTTP_VARIANTS))
def test_simpleenroll_http_variants(gw, tmp_path, variant):
    csr, r = enroll(gw, tmp_path, **HTTP_VARIANTS[variant])
    check_issued(the_issued_certificate(r, tmp_path), csr, gw.lab, cn=FACTORY_CN)


def test_simpleenroll_over_http_1_0(pg, tmp_path):
    csr = make_csr(tmp_path, "h10", device_subject(FACTORY_CN))
    (tmp_path / "request").write_bytes(csr.body())
    chain, key = pg.identity("device-factory")
    ran = run_bytes(["curl", "-sS", "--http1.0", "--cacert", pg.anchors, "--cert", chain, "--key", key,
                     "-H", f"Content-Type: {PKCS10}", "--data-binary", f"@{tmp_path / 'request'}", "-o", tmp_path / "body",
                     "-w", "%{http_code}", pg.url("simpleenroll")], timeout=15, env=curl_env())
    assert ran.rc == 0 and ran.out == b"200", str(ran)
    certs = certs_of_pkcs7(b64_strict((tmp_path / "body").read_bytes()), tmp_path, "h10")
    assert len(certs) == 1 and pubkey_of_cert(certs[0]) == csr.public_key_pem()


@pytest.mark.parametrize("identity", ["device-twin-a", "device-twin-b", "device-rollover", "device-factory-leaf-only"])
def test_clients_of_every_open_ca_may_enroll(gw, tmp_path, identity):
    """Client chains to each open CA, two of them with one subject name (PG-COAP-5's twins), one
    under the rolled-over root; and a client that sends its leaf without the intermediate."""
    if identity.endswith("-leaf-only"):
        name = identity.removesuffix("-leaf-only")
        item = gw.lab.item(name)
        cert_key = (gw.lab.path(item["file"]), gw.lab.path(item["key"]))
    else:
        name, cert_key = identity, gw.identity(identity)
    cn = gw.lab.item(name)["subject"].rsplit("CN=", 1)[1]
    csr, r = enroll(gw, tmp_path, cn=cn, identity=None, cert_key=cert_key)
    check_issued(the_issued_certificate(r, tmp_path), csr, gw.lab, cn=cn)


def test_requested_ca_powers_are_not_granted(gw, tmp_path):
    """The CA decides the extensions: a CSR asking for CA:TRUE, keyCertSign, serverAuth and the
    officer-role policy gets a plain device certificate, which then gives no officer rights."""
    csr, r = enroll(gw, tmp_path, extensions=("basicConstraints=critical,CA:TRUE",
                                              "keyUsage=critical,keyCertSign,cRLSign",
                                              "extendedKeyUsage=serverAuth,codeSigning",
                                              "certificatePolicies=2.999.7030.1.1"))
    cert = the_issued_certificate(r, tmp_path)
    check_issued(cert, csr, gw.lab, cn=FACTORY_CN)
    text = ext_of(cert, "basicConstraints,keyUsage,extendedKeyUsage,certificatePolicies")
    assert "CA:TRUE" not in text and "Certificate Sign" not in text and "CRL Sign" not in text, text
    assert "Server Authentication" not in text and "Code Signing" not in text, text
    assert "2.999.7030.1.1" not in text, text
    if gw.profile == "protocol-gateway":  # PG-AUTH-3 must not be reachable through a CSR
        identity = (chain_file(tmp_path, cert, gw.lab, "asked"), csr.key)
        _, r = enroll(gw, tmp_path, cn="device-0777", identity=None, cert_key=identity)
        assert_refused(r, 403, "PG-ENR-1")


# ---------------------------------------------------------------------------------------------
# /simpleenroll: who may enroll what (PG-AUTH-x, PG-ENR-x, PG-RA-1, PG-PWD-1, 7030-3.2.3, 3.3.2, 3.5)
# ---------------------------------------------------------------------------------------------

WRONG_BASIC = (PREREG_USER, "not-the-password")
PREREG_BASIC = (PREREG_USER, PREREG_PASSWORD)

REFUSALS = [
    # id, profile, client identity, Basic credentials, CSR commonName, status, rule in the log
    ("pg-basic-without-cert", "protocol-gateway", None, PREREG_BASIC, FACTORY_CN, 403, "PG-AUTH-1"),
    ("pg-nothing", "protocol-gateway", None, None, FACTORY_CN, 403, "PG-AUTH-1"),
    ("pg-subject-mismatch", "protocol-gateway", "device-factory", None, "device-0123", 403, "PG-ENR-1"),
    ("pg-no-clientauth-eku", "protocol-gateway", "device-no-clientauth", None, "device-0002", 403, "PG-ENR-2"),
    ("pg-no-eku", "protocol-gateway", "device-no-eku", None, "device-0003", 403, "PG-ENR-2"),
    ("pg-revoked", "protocol-gateway", "device-revoked", None, "device-0004", 403, "PG-ENR-3"),
    ("pg-expired", "protocol-gateway", "device-expired", None, "device-0005", 403, "7030-3.3.2-b"),
    ("pg-unknown-ca", "protocol-gateway", "device-unknown-ca", None, "device-0007", 403, "7030-3.3.2-b"),
    ("pg-cmc-ra-only", "protocol-gateway", "ra-cmc-only", None, "device-0200", 403, "PG-RA-1"),
    ("pg-wrong-basic-without-cert", "protocol-gateway", None, WRONG_BASIC, FACTORY_CN, 401, "PG-AUTH-2"),
    ("pg-wrong-basic-with-cert", "protocol-gateway", "device-factory", WRONG_BASIC, FACTORY_CN, 401, "PG-AUTH-2"),
    ("rfc-nothing", "rfc7030", None, None, FACTORY_CN, 401, "7030-4.2-b"),
    ("rfc-wrong-basic", "rfc7030", None, WRONG_BASIC, FACTORY_CN, 401, "7030-3.2.3-a"),
    ("rfc-no-clientauth-eku", "rfc7030", "device-no-clientauth", None, "device-0002", 403, "7030-3.3.2-b"),
    ("rfc-revoked", "rfc7030", "device-revoked", None, "device-0004", 403, "7030-3.3.2-b"),
    ("rfc-expired", "rfc7030", "device-expired", None, "device-0005", 403, "7030-3.3.2-b"),
    ("rfc-unknown-ca", "rfc7030", "device-unknown-ca", None, "device-0007", 403, "7030-3.3.2-b"),
    ("rfc-cmc-ra-only", "rfc7030", "ra-cmc-only", None, "device-0200", 403, "7030-3.3.2-b"),
    ("rfc-basic-other-device", "rfc7030", None, PREREG_BASIC, "device-0300", 403, None),
]


@pytest.mark.parametrize("tls", TLS_VERSIONS)
@pytest.mark.parametrize("case", REFUSALS, ids=[c[0] for c in REFUSALS])
def test_enroll_refusals(gateways, tmp_path, case, tls):
    _, profile, identity, basic, cn, status, rule = case
    gw = gateways.get(profile)
    _, r = enroll(gw, tmp_path, cn=cn, identity=identity, basic=basic, tls=tls)
    assert_refused(r, status, rule)
    if status == 401:  # 7030-3.2.3-a
        challenge = r.header("www-authenticate") or ""
        assert re.match(r"(?i)basic\s+realm=\"[^\"]+\"", challenge), f"401 needs a Basic challenge with a realm\n{r}"


ACCEPTED = [
    # id, profile, identity, Basic, commonName: RFC 7030 lets these through, the product does not
    ("rfc-basic-prereg-without-cert", "rfc7030", None, PREREG_BASIC, FACTORY_CN),
    ("rfc-no-eku", "rfc7030", "device-no-eku", None, "device-0003"),  # no EKU: any purpose (RFC 5280)
    ("rfc-any-subject", "rfc7030", "device-factory", None, "device-0123"),
    ("pg-cert-and-prereg-basic", "protocol-gateway", "device-factory", PREREG_BASIC, FACTORY_CN),
]


@pytest.mark.parametrize("tls", TLS_VERSIONS)
@pytest.mark.parametrize("case", ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_enroll_accepted(gateways, tmp_path, case, tls):
    _, profile, identity, basic, cn = case
    gw = gateways.get(profile)
    csr, r = enroll(gw, tmp_path, cn=cn, identity=identity, basic=basic, tls=tls)
    check_issued(the_issued_certificate(r, tmp_path), csr, gw.lab, cn=cn)


@pytest.mark.parametrize("tls", TLS_VERSIONS)
def test_pg_pwd_1_challenge_password_is_denied(pg, tmp_path, tls):
    _, r = enroll(pg, tmp_path, attributes={"challengePassword": "AAAAAAAAAAAAAAAAAAAAAA=="}, tls=tls)
    assert_refused(r, 403, "PG-PWD-1")


@pytest.mark.parametrize("tls", TLS_VERSIONS)
def test_rfc7030_wrong_challenge_password_is_refused(rfc, tmp_path, tls):
    """7030-3.5-b: a challengePassword that is not this connection's tls-unique (TLS 1.2) or
    tls-exporter (TLS 1.3) value. curl cannot read either, so only wrong values are tested."""
    _, r = enroll(rfc, tmp_path, attributes={"challengePassword": "AAAAAAAAAAAAAAAAAAAAAA=="}, tls=tls)
    assert r.status == 403, str(r)
    assert r.rule() in ("7030-3.5-b", "9266-2-a"), str(r)


# ---------------------------------------------------------------------------------------------
# /simplereenroll (7030-4.2.2, PG-ENR-1, PG-ENR-3, PG-ENR-4)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tls", TLS_VERSIONS)
def test_pg_reenroll_needs_the_last_issued_certificate(start_gateway, tmp_path, tls):
    """One lab: superseded -> 403 PG-ENR-4; current -> 200; the old current is then superseded;
    the new certificate re-enrolls; once revoked in the CA, it is refused (PG-ENR-3)."""
    gw = start_gateway("protocol-gateway")
    cn = "device-0006"
    _, r = enroll(gw, tmp_path, op="simplereenroll", cn=cn, identity="device-superseded", tls=tls)
    assert_refused(r, 403, "PG-ENR-4")

    csr, r = enroll(gw, tmp_path, op="simplereenroll", cn=cn, identity="device-current", tls=tls)
    renewed = the_issued_certificate(r, tmp_path, "renewed")
    check_issued(renewed, csr, gw.lab, cn=cn)

    _, r = enroll(gw, tmp_path, op="simplereenroll", cn=cn, identity="device-current", tls=tls)
    assert_refused(r, 403, "PG-ENR-4")

    renewed_identity = (chain_file(tmp_path, renewed, gw.lab, "renewed"), csr.key)
    csr2, r = enroll(gw, tmp_path, op="simplereenroll", cn=cn, identity=None, cert_key=renewed_identity, tls=tls)
    again = the_issued_certificate(r, tmp_path, "again")
    check_issued(again, csr2, gw.lab, cn=cn)

    again_identity = (chain_file(tmp_path, again, gw.lab, "again"), csr2.key)
    revoke = run_bytes([gw.binary, "ca", "--store", gw.lab.store, "revoke", "--serial", x509_serial(again).lower(),
                        "--reason", "keyCompromise"])
    assert revoke.rc == 0, str(revoke)
    _, r = enroll(gw, tmp_path, op="simplereenroll", cn=cn, identity=None, cert_key=again_identity, tls=tls)
    assert_refused(r, 403, "PG-ENR-3")


def test_rfc7030_reenroll_with_superseded_certificate_is_allowed(rfc, tmp_path):
    """PG-ENR-4 is the product's rule, not RFC 7030's."""
    csr, r = enroll(rfc, tmp_path, op="simplereenroll", cn="device-0006", identity="device-superseded")
    check_issued(the_issued_certificate(r, tmp_path), csr, rfc.lab, cn="device-0006")


@pytest.mark.parametrize("tls", TLS_VERSIONS)
def test_reenroll_with_another_subject_is_refused(gw, tmp_path, tls):
    _, r = enroll(gw, tmp_path, op="simplereenroll", cn="device-0999", identity="device-current", tls=tls)
    assert_refused(r, 403, "PG-ENR-1" if gw.profile == "protocol-gateway" else "7030-4.2.2-a")


def test_reenroll_with_another_san_is_refused(gw, tmp_path):
    """7030-4.2.2-a: subject and subjectAltName identical to the certificate being renewed."""
    _, r = enroll(gw, tmp_path, op="simplereenroll", cn="device-0006", identity="device-current",
                  san="DNS:other-0006.example")
    assert_refused(r, 403, "7030-4.2.2-a")


def test_reenroll_without_client_certificate_is_refused(gw, tmp_path):
    """7030-4.2.2-c: even with a preregistered device's Basic credentials."""
    _, r = enroll(gw, tmp_path, op="simplereenroll", identity=None, basic=PREREG_BASIC)
    assert_refused(r, 403, "7030-4.2.2-c")


# ---------------------------------------------------------------------------------------------
# /serverkeygen (7030-4.4), /csrattrs (7030-4.5), /fullcmc (7030-4.3)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tls", TLS_VERSIONS)
def test_serverkeygen_returns_a_key_matching_its_certificate(gw, tmp_path, tls):
    csr, r = enroll(gw, tmp_path, op="serverkeygen", tls=tls)
    assert r.status == 200, str(r)
    ctype = r.header("content-type") or ""
    assert media_type(ctype)[0] == "multipart/mixed", str(r)
    parts = split_multipart(ctype, r.body)
    by_type = {}
    for part in parts:
        mtype, params = media_type(part.get("Content-Type"))
        by_type[(mtype, params.get("smime-type", "").lower())] = b64_strict(part.get_payload().encode())
    assert set(by_type) == {("application/pkcs8", ""), ("application/pkcs7-mime", "certs-only")}, \
        f"parts: {list(by_type)}\n{r}"
    key = tmp_path / "server-generated.key.der"
    key.write_bytes(by_type[("application/pkcs8", "")])
    certs = certs_of_pkcs7(by_type[("application/pkcs7-mime", "certs-only")], tmp_path, "skg")
    assert len(certs) == 1, str(r)
    cert = certs[0]
    assert subject_of(cert) == openssl_subject_line(FACTORY_CN)
    key_pub = openssl_ok("pkey", "-inform", "DER", "-in", key, "-pubout").decode()
    assert key_pub == pubkey_of_cert(cert), "the private key does not match the certificate (7030-4.4.2-b)"
    assert key_pub != csr.public_key_pem(), "the server must generate a new key, not certify the CSR's"
    v = run_bytes(["openssl", "verify", "-CAfile", gw.anchors, "-untrusted", gw.lab.path("ca/issuing.pem"), cert])
    assert v.rc == 0, str(v)


def test_csrattrs_answers_der_csrattrs(gw, tmp_path):
    r = gw.request("csrattrs")  # anonymous: 7030-4.5-a
    assert r.status == 200, str(r)
    assert media_type(r.header("content-type"))[0] == "application/csrattrs", str(r)
    der = tmp_path / "csrattrs.der"
    der.write_bytes(b64_strict(r.body))
    text = openssl_ok("asn1parse", "-inform", "DER", "-in", der).decode()
    assert "cons: SEQUENCE" in text.splitlines()[0], text  # CsrAttrs ::= SEQUENCE OF AttrOrOID
    # The lab's estlab.csrattrs: ecdsa-with-SHA256, id-ecPublicKey=secp256r1, extensionRequest=subjectAltName
    for name in ("ecdsa-with-SHA256", "id-ecPublicKey", "prime256v1", "Extension Request",
                 "X509v3 Subject Alternative Name"):
        assert name in text, f"{name} missing\n{text}"


def test_fullcmc_issues_for_a_signed_full_pki_request(gw, tmp_path):
    csr = make_csr(tmp_path, "cmc", device_subject(FACTORY_CN))
    _, key = gw.identity("device-factory")
    request = make_full_pki_request(tmp_path, csr, gw.lab.path("devices/device-factory.pem"), key)
    r = gw.request("fullcmc", identity="device-factory", data=base64.b64encode(request), content_type=CMC_REQUEST)
    assert r.status == 200, str(r)
    mtype, params = media_type(r.header("content-type"))
    assert mtype == "application/pkcs7-mime" and params.get("smime-type", "").lower() == "cmc-response", str(r)
    der = b64_strict(r.body)
    (tmp_path / "cmc-response.der").write_bytes(der)
    printed = openssl_ok("cms", "-cmsout", "-print", "-inform", "DER", "-in", tmp_path / "cmc-response.der").decode()
    assert re.search(r"eContentType: (id-cct-PKIResponse|1\.3\.6\.1\.5\.5\.7\.12\.3)", printed), printed
    # The signature over the PKIResponse holds (the signer's chain is the gateway's business).
    verified = run_bytes(["openssl", "cms", "-verify", "-noverify", "-inform", "DER", "-in",
                          tmp_path / "cmc-response.der", "-out", tmp_path / "pkiresponse.der"])
    assert verified.rc == 0, str(verified)
    issued = [c for c in certs_of_pkcs7(der, tmp_path, "cmc") if pubkey_of_cert(c) == csr.public_key_pem()]
    assert len(issued) == 1, "the response must carry the certificate for the CSR's key"
    check_issued(issued[0], csr, gw.lab, cn=FACTORY_CN)


def test_fullcmc_refuses_a_bare_pkcs10(gw, tmp_path):
    """7030-4.3.1-a: anything that is not a Full PKI Request gets 4xx."""
    csr = make_csr(tmp_path, "bare", device_subject(FACTORY_CN))
    r = gw.request("fullcmc", identity="device-factory", data=csr.body(), content_type=CMC_REQUEST)
    assert 400 <= r.status < 500, str(r)
    still_serving(gw)


def test_fullcmc_with_pkcs10_content_type_is_415(gw, tmp_path):
    csr = make_csr(tmp_path, "bare", device_subject(FACTORY_CN))
    r = gw.request("fullcmc", identity="device-factory", data=csr.body(), content_type=PKCS10)
    assert_refused(r, 415, "7030-4.3.1-a")


def test_pg_fullcmc_subject_mismatch_is_refused(pg, tmp_path):
    csr = make_csr(tmp_path, "cmc", device_subject("device-0456"))
    _, key = pg.identity("device-factory")
    request = make_full_pki_request(tmp_path, csr, pg.lab.path("devices/device-factory.pem"), key)
    r = pg.request("fullcmc", identity="device-factory", data=base64.b64encode(request), content_type=CMC_REQUEST)
    assert r.status == 403 and r.rule() == "PG-ENR-1", str(r)


# ---------------------------------------------------------------------------------------------
# Malformed requests: refused with the right code, and the gateway keeps serving
# ---------------------------------------------------------------------------------------------


def _a_certificate(gw, csr):  # valid base64 DER, but not a CSR
    return base64.b64encode(cert_der(gw.lab.path("devices/device-factory.pem")))


MALFORMED = {
    # name: (body(gw, csr), content type, status, rule)
    "junk-base64": (lambda gw, csr: b"!!!this is *not* base64???", PKCS10, 400, "8951-3-a"),
    "empty-body": (lambda gw, csr: b"", PKCS10, 400, "8951-3-a"),
    "base64-not-a-csr": (_a_certificate, PKCS10, 400, "7030-4.2.1-a"),
    "corrupted-signature": (lambda gw, csr: base64.b64encode(corrupt_signature(csr.der_bytes)), PKCS10, 400,
                            "7030-4.2.1-b"),
    "raw-der": (lambda gw, csr: csr.der_bytes, PKCS10, 400, "8951-3-a"),
    "octet-stream": (lambda gw, csr: csr.body(), "application/octet-stream", 415, "7030-4.2.1-c"),
    "no-content-type": (lambda gw, csr: csr.body(), None, 415, "7030-4.2.1-c"),
    "200KB-body": (lambda gw, csr: b"A" * (200 * 1024), PKCS10, 413, "http"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_request_is_refused_and_gateway_keeps_serving(gw, tmp_path, name):
    make_body, content_type, status, rule = MALFORMED[name]
    csr = make_csr(tmp_path, "m", device_subject(FACTORY_CN))
    r = gw.request("simpleenroll", identity="device-factory", data=make_body(gw, csr), content_type=content_type)
    assert_refused(r, status, rule)
    still_serving(gw)


def test_oversized_header_is_431_and_gateway_keeps_serving(gw):
    r = gw.request("cacerts", headers=("X-Padding: " + "a" * 10_000,))
    assert_refused(r, 431, "http")
    still_serving(gw)


@pytest.mark.parametrize("scheme", ["Bearer abc.def.ghi", "Digest username=\"device-0001\", realm=\"EST Realm\""])
def test_authorization_other_than_basic_gets_401_with_basic_challenge(gw, tmp_path, scheme):
    """7030-3.2.3-a / -f: a scheme the server does not take is answered with its own challenge."""
    _, r = enroll(gw, tmp_path, identity=None, headers=(f"Authorization: {scheme}",))
    assert r.status == 401, str(r)
    assert re.match(r"(?i)basic\s+realm=", r.header("www-authenticate") or ""), str(r)


def test_abusive_connections_do_not_stop_the_gateway(pg):
    """Half-open TCP, a truncated ClientHello, garbage and a truncated request over TLS."""
    with socket.create_connection(("127.0.0.1", pg.port), timeout=5):
        pass
    with socket.create_connection(("127.0.0.1", pg.port), timeout=5) as s:
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # a ClientHello cut short
    context = ssl.create_default_context(cafile=str(pg.anchors))
    for payload in (b"GARBAGE GARBAGE\r\n\r\n", b"POST /.well-known/est/simpleenroll HTTP/1.1\r\nHost: x\r\n"
                                                b"Content-Type: application/pkcs10\r\nContent-Length: 500\r\n\r\nMII"):
        with socket.create_connection(("127.0.0.1", pg.port), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(payload)
                if payload.startswith(b"GARBAGE"):
                    answer = tls.recv(4096)
                    assert answer.startswith(b"HTTP/1.1 400"), answer
    still_serving(pg)


# ---------------------------------------------------------------------------------------------
# Transcript and key log
# ---------------------------------------------------------------------------------------------


def test_transcript_records_the_decoded_csr(start_gateway, tmp_path):
    transcripts = tmp_path / "transcripts"
    gw = start_gateway("protocol-gateway", "--transcript", transcripts)
    csr, r = enroll(gw, tmp_path)
    the_issued_certificate(r, tmp_path)
    files = sorted(transcripts.glob("*simpleenroll*.yaml"))
    assert len(files) == 1, f"transcript files: {sorted(p.name for p in transcripts.iterdir())}"
    record = yaml.safe_load(files[0].read_text())
    decoded = record["request"]["decoded"]
    assert "Certificate Request" in decoded and f"CN = {FACTORY_CN}" in decoded, decoded
    assert record["response"]["status"] == 200
    assert record["decision"]["rule"] == "ok"
    assert "CN = device-0001" in record["response"].get("decoded", ""), "the issued certificate, decoded"


@pytest.mark.parametrize("show_secrets", [False, True], ids=["redacted", "transcript-secrets"])
def test_transcript_redacts_basic_passwords_unless_asked(start_gateway, tmp_path, show_secrets):
    transcripts = tmp_path / "transcripts"
    gw = start_gateway("rfc7030", "--transcript", transcripts, *(["--transcript-secrets"] if show_secrets else []))
    _, r = enroll(gw, tmp_path, identity=None, basic=PREREG_BASIC)
    assert r.status == 200, r
    text = next(transcripts.glob("*simpleenroll*.yaml")).read_text()
    token = base64.b64encode(f"{PREREG_USER}:{PREREG_PASSWORD}".encode()).decode()
    if show_secrets:
        assert token in text, text
    else:
        assert PREREG_PASSWORD not in text and token not in text, text
        assert f"user '{PREREG_USER}', password hidden" in text, text


def test_sslkeylogfile_is_honoured(start_gateway, tmp_path):
    keylog = tmp_path / "keys.log"
    env = dict(os.environ, SSLKEYLOGFILE=str(keylog))
    gw = start_gateway("rfc7030", env=env)
    assert gw.request("cacerts", tls="1.2").status == 200
    assert gw.request("cacerts", tls="1.3").status == 200
    lines = keylog.read_text().splitlines() if keylog.exists() else []
    assert any(re.match(r"^CLIENT_RANDOM [0-9a-f]{64} [0-9a-f]{96}$", line) for line in lines), lines
    assert any(re.match(r"^CLIENT_HANDSHAKE_TRAFFIC_SECRET [0-9a-f]{64} [0-9a-f]+$", line) for line in lines), lines


# ---------------------------------------------------------------------------------------------
# The checks above see a wrong gateway (negative control)
# ---------------------------------------------------------------------------------------------


def test_faults_are_visible_to_these_checks(start_gateway, tmp_path):
    """With faults switched on, the exchanges the tests above judge come out wrong."""
    gw = start_gateway("rfc7030", "--fault", "skip-eku-check", "--fault", "unknown-label-served",
                       "--fault", "no-auth-challenge", "--fault", "wrong-media-type")
    _, r = enroll(gw, tmp_path, cn="device-0002", identity="device-no-clientauth")
    assert r.status == 200, f"skip-eku-check should let a serverAuth-only client enroll\n{r}"
    assert media_type(r.header("content-type"))[0] == "application/octet-stream", str(r)
    assert gw.request("cacerts", label="nosuchlabel").status == 200
    _, r = enroll(gw, tmp_path, identity=None)
    assert r.status == 401 and r.header("www-authenticate") is None, str(r)
