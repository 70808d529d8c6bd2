"""`estlab coap-proxy` (EST-coaps, RFC 9148) with the independent coap-client-openssl (Debian
libcoap3-bin) as the device and `estlab gateway` as the EST service, each a subprocess on an
ephemeral port. Requests are made by `openssl req` and answers judged by `openssl pkcs7`/`verify`.
Covers PG-COAP-1..6 and garbage datagrams.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import socket
import subprocess
import types
import time
from pathlib import Path

import pytest

from gateway_support import Gateway, run_bytes, openssl_ok, device_subject

COAP_CLIENT = shutil.which("coap-client-openssl")
pytestmark = pytest.mark.skipif(COAP_CLIENT is None, reason="coap-client-openssl (libcoap3-bin) is not installed")

START_TIMEOUT_S = 20
STOP_TIMEOUT_S = 10
CLIENT_TIMEOUT_S = 30  # one coap-client call; -B bounds its own wait below that


def wait_for_port_file(proc, port_file: Path, what: str, output) -> int:
    """The port a started estlab process wrote (a whole line), failing with its output if it exits or never does."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}\n{output()}", pytrace=False)
        text = port_file.read_text() if port_file.exists() else ""
        if text.endswith("\n") and text.strip().isdigit():
            return int(text)
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"{what} wrote no port file\n{output()}", pytrace=False)


class Proxy:
    """One `estlab coap-proxy` subprocess in front of a gateway."""

    def __init__(self, binary: Path, lab, gateway: Gateway, workdir: Path, *args):
        workdir.mkdir(parents=True, exist_ok=True)
        self.port_file = workdir / "port"
        self.stderr_file = workdir / "proxy.stderr"
        self.stdout_file = workdir / "proxy.stdout"
        self.lab = lab
        self.args = [str(binary), "coap-proxy", "--lab", str(lab.dir), "--port", "0", "--port-file", str(self.port_file),
                     "--est-url", f"https://localhost:{gateway.port}/.well-known/est", *map(str, args)]
        self.proc = None
        self.port = None

    def start(self) -> "Proxy":
        with open(self.stdout_file, "wb") as out, open(self.stderr_file, "wb") as err:
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        self.port = wait_for_port_file(self.proc, self.port_file, "coap-proxy", self.stderr)
        return self

    def stop(self) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT_S)
            pytest.fail("coap-proxy did not stop on SIGTERM", pytrace=False)

    def stderr(self) -> str:
        return self.stderr_file.read_text(errors="replace") if self.stderr_file.exists() else ""

    def uri(self, path: str, port: int | None = None) -> str:
        return f"coaps://127.0.0.1:{port or self.port}{path}"

    def coap(self, path: str, *, identity: str = "device-factory", method: str = "get", data: Path | None = None,
             content_format: int | None = None, block: int | None = None, out: Path | None = None,
             via: int | None = None, wait_s: int = 15):
        """coap-client-openssl against the proxy, or against `via` (a relay's port in front of it)."""
        item = self.lab.item(identity)
        args = [COAP_CLIENT, "-B", str(wait_s), "-c", self.lab.path(item["chain"]), "-j", self.lab.path(item["key"]),
                "-R", self.lab.path("trust/anchors.pem"), "-m", method]
        if content_format is not None:
            args += ["-t", str(content_format)]
        if data is not None:
            args += ["-f", data]
        if block is not None:
            args += ["-b", str(block)]
        if out is not None:
            args += ["-o", out]
        return run_bytes([*args, self.uri(path, via)], timeout=max(CLIENT_TIMEOUT_S, wait_s + 15))


@pytest.fixture(scope="module")
def lab(estlab, tmp_path_factory):
    return estlab.generate(tmp_path_factory.mktemp("coaplab") / "lab")


@pytest.fixture(scope="module")
def gateway(estlab, lab, tmp_path_factory):
    gw = Gateway(estlab.binary, lab, tmp_path_factory.mktemp("gw")).start()
    yield gw
    assert gw.stop() == 0


@pytest.fixture(scope="module")
def proxy(estlab, lab, gateway, tmp_path_factory):
    p = Proxy(estlab.binary, lab, gateway, tmp_path_factory.mktemp("proxy")).start()
    yield p
    assert p.stop() == 0


def certs_of_der_pkcs7(der: bytes) -> str:
    return openssl_ok("pkcs7", "-inform", "DER", "-print_certs", "-noout", input=der).decode()


def test_handshake_and_discovery(proxy):  # PG-COAP-1, 9148-4.1-d
    r = proxy.coap("/.well-known/core?rt=ace.est*")
    assert r.rc == 0, str(r)
    links = r.out.decode()
    for rt in ("ace.est.crts", "ace.est.sen", "ace.est.sren", "ace.est.skg", "ace.est.att"):
        assert f'rt="{rt}"' in links, links
    assert "fullcmc" not in links
    assert len(r.out) > 1024  # the discovery answer itself needs Block2


def test_crts_is_binary_certs_only(proxy, tmp_path):  # 9148-4.3-a, PG-COAP-1
    out = tmp_path / "crts.der"
    r = proxy.coap("/.well-known/est/crts", out=out)
    assert r.rc == 0, str(r)
    text = certs_of_der_pkcs7(out.read_bytes())
    assert "CN = estlab Issuing CA" in text and "CN = estlab Root CA" in text, text


def test_enroll_with_an_openssl_req_csr(proxy, lab, tmp_path):  # PG-COAP-1, PG-COAP-2
    csr = tmp_path / "dev.csr"
    openssl_ok("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
               "-keyout", tmp_path / "dev.key", "-subj", device_subject("device-0001"), "-outform", "DER", "-out", csr)
    out = tmp_path / "cert.p7"
    r = proxy.coap("/.well-known/est/sen", method="post", data=csr, content_format=286, out=out)
    assert r.rc == 0, str(r)
    assert out.exists() and out.stat().st_size > 0, f"{r}\n{proxy.stderr()}"
    pem = openssl_ok("pkcs7", "-inform", "DER", "-in", out, "-print_certs").decode()
    assert "CN = device-0001" in pem
    (tmp_path / "cert.pem").write_text(pem)
    v = run_bytes(["openssl", "verify", "-CAfile", lab.path("trust/root-ca.pem"), "-untrusted",
                   lab.path("ca/issuing.pem"), tmp_path / "cert.pem"])
    assert v.rc == 0, str(v)
    assert "op=sen" in proxy.stderr() and "code=2.04" in proxy.stderr()


def test_blockwise_with_64_byte_blocks(proxy, tmp_path):  # 9148-4.6-a
    whole, small = tmp_path / "whole.der", tmp_path / "small.der"
    assert proxy.coap("/.well-known/est/crts", out=whole).rc == 0
    r = proxy.coap("/.well-known/est/crts", block=64, out=small)
    assert r.rc == 0, str(r)
    assert small.read_bytes() == whole.read_bytes()
    assert len(whole.read_bytes()) > 64 * 8
    assert proxy.coap("/.well-known/core", block=64).out == proxy.coap("/.well-known/core").out


def test_unknown_ca_device_is_refused_at_the_handshake(proxy, tmp_path):  # PG-COAP-4
    out = tmp_path / "crts.der"
    r = proxy.coap("/.well-known/est/crts", identity="device-unknown-ca", out=out)
    assert not out.exists() or out.stat().st_size == 0, str(r)
    said = (r.out + r.err).lower()  # coap-client logs to stdout
    assert b"unknown ca" in said or b"alert" in said, str(r)
    assert "dtls handshake failed" in proxy.stderr()
    assert proxy.coap("/.well-known/est/crts").rc == 0  # an open CA's device still works


def test_fullcmc_is_404_and_never_forwarded(proxy, gateway, tmp_path):  # PG-COAP-3
    body = tmp_path / "cmc.der"
    body.write_bytes(b"\x30\x00")
    r = proxy.coap("/.well-known/est/fullcmc", method="post", data=body, content_format=279)
    assert b"4.04" in r.out + r.err, str(r)
    assert "fullcmc" not in gateway.stderr()


def test_garbage_datagrams_never_crash_it(proxy):
    rng = random.Random(5)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i in range(300):
            datagram = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 1400)))
            if i % 3 == 0:  # a DTLS handshake record header with a lying length
                datagram = b"\x16\xfe\xfd" + datagram[3:].ljust(11, b"\x00")
            s.sendto(datagram, ("127.0.0.1", proxy.port))
    assert proxy.proc.poll() is None
    assert proxy.coap("/.well-known/est/crts").rc == 0


def _start_refused(estlab, lab, gateway, tmp_path, *args, config: Path | None = None):
    cmd = [estlab.binary, "coap-proxy", "--port", "0", "--est-url", f"https://localhost:{gateway.port}/.well-known/est"]
    cmd += ["--config", config] if config else ["--lab", lab.dir]
    return run_bytes([*cmd, *args], timeout=20)


def test_twin_cas_refuse_or_ignore(estlab, lab, gateway, proxy, tmp_path):  # PG-COAP-5
    r = _start_refused(estlab, lab, gateway, tmp_path, "--duplicate-ca-subjects", "refuse")
    assert r.rc == 2, str(r)
    assert b"PG-COAP-5" in r.err and b"'twin-a'" in r.err and b"'twin-b'" in r.err, str(r)
    # The lab's reading (ignore-later): said clearly at startup, and the ignored CA's device is refused.
    assert "ignoring CA 'twin-b'" in proxy.stderr()
    assert proxy.coap("/.well-known/est/crts", identity="device-twin-a").rc == 0
    out = tmp_path / "b.der"
    proxy.coap("/.well-known/est/crts", identity="device-twin-b", out=out)
    assert not out.exists() or out.stat().st_size == 0


def test_dtls_certificate_without_serverauth_stops_startup(estlab, lab, gateway, tmp_path):  # PG-COAP-6
    config = lab.path("config/coap.properties").read_text().replace(
        "tlsToken = coap/dtls-server.p12", "tlsToken = coap/dtls-server-no-serverauth.p12")
    path = lab.path("config/coap-no-serverauth.properties")
    path.write_text(config)
    r = _start_refused(estlab, lab, gateway, tmp_path, config=path)
    assert r.rc == 2, str(r)
    assert b"PG-COAP-6" in r.err and b"serverAuth" in r.err, str(r)


def test_fault_list_and_an_unknown_fault(estlab, lab, gateway, tmp_path):
    listed = run_bytes([estlab.binary, "coap-proxy", "--fault", "list"], timeout=20)
    assert listed.rc == 0, str(listed)
    for name, requirement in [(b"forward-as-officer", b"[PG-COAP-2]"), (b"forward-fullcmc", b"[PG-COAP-3]"),
                              (b"ignore-block-size", b"[9148-4.6-a]"), (b"no-max-age", b"[9148-4.7-b]")]:
        assert name in listed.out and requirement in listed.out, str(listed)
    r = _start_refused(estlab, lab, gateway, tmp_path, "--fault", "forward-everything")
    assert r.rc == 2 and b"unknown fault 'forward-everything'" in r.err, str(r)


def test_forward_fullcmc_fault_breaks_pg_coap_3(estlab, lab, gateway, tmp_path):  # PG-COAP-3, the fault's point
    faulty = Proxy(estlab.binary, lab, gateway, tmp_path / "faulty", "--fault", "forward-fullcmc").start()
    try:
        assert "FAULTS" in faulty.stderr() + (tmp_path / "faulty" / "proxy.stdout").read_text()
        body = tmp_path / "cmc.der"
        body.write_bytes(b"\x30\x00")
        faulty.coap("/.well-known/est/fullcmc", method="post", data=body, content_format=279)
        # Forwarded: the log line names the gateway's HTTP status, where the plain proxy has no resource.
        assert re.search(r"op=fullcmc .*upstream=\d{3}", faulty.stderr()), faulty.stderr()
    finally:
        assert faulty.stop() == 0


class Relay:
    """One `estlab relay` subprocess: an impaired UDP path in front of a proxy."""

    def __init__(self, binary: Path, to_port: int, workdir: Path, impair: str):
        workdir.mkdir(parents=True, exist_ok=True)
        self.port_file = workdir / "port"
        self.out_file = workdir / "relay.stdout"
        self.args = [str(binary), "relay", "--to", f"127.0.0.1:{to_port}", "--port", "0", "--port-file", str(self.port_file),
                     "--impair", impair]
        self.proc = None
        self.port = None

    def __enter__(self) -> "Relay":
        with open(self.out_file, "wb") as out:
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.port = wait_for_port_file(self.proc, self.port_file, "relay", self.output)
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        assert self.proc.wait(timeout=STOP_TIMEOUT_S) == 0, self.output()

    def output(self) -> str:
        return self.out_file.read_text(errors="replace")


def test_coap_client_through_split_client_hellos(estlab, proxy, tmp_path):  # FB-37, 9148-3-b
    # libcoap's own client, its ClientHello split in two fragments before and after the cookie.
    with Relay(estlab.binary, proxy.port, tmp_path / "relay", "split-client-hello=always") as relay:
        out = tmp_path / "crts.der"
        r = proxy.coap("/.well-known/est/crts", via=relay.port, out=out)
        assert r.rc == 0 and out.stat().st_size > 0, f"{r}\n{relay.output()}"
    assert "2 ClientHellos split" in relay.output(), relay.output()


def test_coap_client_through_20_percent_loss_enrolls(estlab, proxy, lab, tmp_path):  # 9148-5-h, RFC 7252 4.2/4.5
    csr = tmp_path / "dev.csr"
    openssl_ok("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
               "-keyout", tmp_path / "dev.key", "-subj", device_subject("device-0001"), "-outform", "DER", "-out", csr)
    out = tmp_path / "cert.p7"
    # The seed is pinned: this one loses handshake flights and CoAP messages, and coap-client
    # (libcoap 4.3.1, which gives up a handshake after 4 timeouts in all) still gets through.
    with Relay(estlab.binary, proxy.port, tmp_path / "relay", "loss=20%,duplicate=5%,seed=11") as relay:
        r = proxy.coap("/.well-known/est/sen", method="post", data=csr, content_format=286, out=out, via=relay.port, wait_s=90)
        assert r.rc == 0 and out.exists() and out.stat().st_size > 0, f"{r}\n{relay.output()}\n{proxy.stderr()[-3000:]}"
    assert re.search(r"\d+ lost", relay.output()), relay.output()
    assert "CN = device-0001" in openssl_ok("pkcs7", "-inform", "DER", "-in", out, "-print_certs").decode()


def test_a_device_back_from_a_lost_sessions_port_gets_a_new_handshake(estlab, lab, tmp_path):  # RFC 6347 4.2.8
    # A device killed mid-request (no close_notify) leaves its session in the proxy; the same
    # device, back from the same UDP port, must get a new handshake at once, not wait out the
    # old session (60 s idle timeout here). The upstream never answers, so the first request is
    # still in flight when the device dies.
    black_hole = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    black_hole.bind(("127.0.0.1", 0))
    black_hole.listen(8)
    with black_hole:
        silent = Proxy(estlab.binary, lab, types.SimpleNamespace(port=black_hole.getsockname()[1]), tmp_path / "proxy").start()
        try:
            probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
            probe.close()
            item = lab.item("device-factory")
            client = [COAP_CLIENT, "-p", str(port), "-c", lab.path(item["chain"]), "-j", lab.path(item["key"]),
                      "-R", lab.path("trust/anchors.pem")]
            first = subprocess.Popen([*client, "-B", "30", silent.uri("/.well-known/est/crts")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                time.sleep(1.5)  # handshake done, request forwarded, empty ACK sent (RFC 7252 5.2.2)
                assert first.poll() is None, "coap-client ended before the upstream could answer"
            finally:
                first.kill()
                first.wait(timeout=STOP_TIMEOUT_S)
            started = time.monotonic()
            back = run_bytes([*client, "-B", "10", silent.uri("/.well-known/core")], timeout=CLIENT_TIMEOUT_S)
            took = time.monotonic() - started
            assert back.rc == 0 and b"ace.est.crts" in back.out, f"{back}\n{silent.stderr()[-3000:]}"
            assert took < 5, f"the device waited {took:.1f} s for its new handshake"
            log = silent.stderr()
            assert "came back with a new DTLS handshake (RFC 6347 4.2.8)" in log, log[-3000:]
            assert "1 request(s) in flight dropped" in log, log[-3000:]
        finally:
            assert silent.stop() == 0


def test_drop_fragmented_client_hello_fault_is_fb37(estlab, lab, gateway, tmp_path):  # FB-37, the fault's point
    faulty = Proxy(estlab.binary, lab, gateway, tmp_path / "faulty", "--fault", "drop-fragmented-client-hello").start()
    try:
        assert faulty.coap("/.well-known/est/crts", wait_s=5).rc == 0  # a whole ClientHello still works
        with Relay(estlab.binary, faulty.port, tmp_path / "relay", "split-client-hello=always") as relay:
            out = tmp_path / "crts.der"
            r = faulty.coap("/.well-known/est/crts", via=relay.port, out=out, wait_s=5)
            assert not out.exists() or out.stat().st_size == 0, str(r)
    finally:
        assert faulty.stop() == 0


def test_relay_bad_arguments_exit_2_naming_the_problem(estlab):
    for args, said in ((["--to", "nowhere"], b"--to must be HOST:PORT"),
                       (["--to", "127.0.0.1:5684", "--impair", "loss=200%"], b"network loss: '200%'"),
                       (["--to", "127.0.0.1:5684", "--impair", "lose=1%"], b"unknown setting 'lose'"),
                       (["--to", "127.0.0.1:5684", "--host", "no-address"], b"'no-address' is not an IP address")):
        r = run_bytes([estlab.binary, "relay", *args], timeout=10)
        assert r.rc == 2 and said in r.err, str(r)
    assert run_bytes([estlab.binary, "relay", "--help"], timeout=10).rc == 0
