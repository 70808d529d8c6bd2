"""Abuse of the reference gateway (issue 13, item 5), against the real `estlab gateway` process:

- 1,000 idle connections (half with a finished TLS handshake, half silent TCP) and a slow-header
  client held open while a device still enrolls within a bound;
- a slow-header client is cut off at the read deadline however steadily it trickles;
- a handshake flood while a device enrolls;
- oversized bodies refused while they are read (announced or chunked), not after;
- the gateway's memory (VmRSS from /proc) measured and bounded throughout.

DTLS floods and Block1 reassembly belong to the CoAP proxy's tests.
"""

from __future__ import annotations

import base64
import http.client
import os
import resource
import signal
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest

from gateway_support import PKCS10
from test_durability import csr_pool, tls_context
from test_idm import HTTP_TIMEOUT_S, Service, free_port

ENROLL_BOUND_S = 3.0  # a device's enrollment while the gateway is abused (about 20 ms when it is not)
RSS_BOUND_KB = 160 * 1024  # the gateway's resident memory, whatever the abuse


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for process {pid}")


def assert_rss_bounded(gw: "Gateway", rss: int | None = None) -> None:
    rss = rss_kb(gw.pid) if rss is None else rss
    if not gw.address_sanitized:  # conftest.Estlab.address_sanitized says why
        assert rss < RSS_BOUND_KB, f"the gateway's resident memory is {rss} kB"


class Gateway:
    def __init__(self, estlab, lab, tmp: Path, **properties):
        if properties:
            with (lab.dir / "config" / "est.properties").open("a") as f:
                for key, value in properties.items():
                    f.write(f"\n{key.replace('_', '.')} = {value}\n")
        self.lab, self.port = lab, free_port()
        self.csrs = csr_pool(tmp / "csrs", [f"abuse-{i}" for i in range(4)])  # the officer may enroll any subject
        port_file = tmp / "gateway.port"
        self.service = Service([estlab.binary, "gateway", "--lab", lab.dir, "--port", self.port, "--port-file", port_file,
                                "--quiet"], tmp / "gateway.log", port_file.exists)
        self.pid = self.service.proc.pid
        self.address_sanitized = estlab.address_sanitized
        officer = lab.item("ra-officer")
        self.device = tls_context(lab.dir, officer["chain"], officer["key"])
        self.anonymous = ssl.create_default_context(cafile=str(lab.dir / "trust" / "anchors.pem"))
        self.anonymous.check_hostname = False

    def enroll(self, cn: str) -> tuple[int, float]:
        """One device enrollment on a fresh connection: (status, seconds)."""
        started = time.monotonic()
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.device, timeout=HTTP_TIMEOUT_S)
        try:
            conn.request("POST", "/.well-known/est/simpleenroll", body=base64.b64encode(self.csrs[hash(cn) % len(self.csrs)]),
                         headers={"Content-Type": PKCS10, "Content-Transfer-Encoding": "base64"})
            response = conn.getresponse()
            response.read()
            return response.status, time.monotonic() - started
        finally:
            conn.close()

    def tls_socket(self, timeout: float = HTTP_TIMEOUT_S, send_buffer: int | None = None) -> ssl.SSLSocket:
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if send_buffer:  # set before connecting, so the kernel does not grow it
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
        raw.settimeout(timeout)
        raw.connect(("127.0.0.1", self.port))
        return self.anonymous.wrap_socket(raw, server_hostname="localhost")

    def stop(self):
        self.service.kill(signal.SIGTERM)


@pytest.fixture
def gateway_factory(estlab, lab_copy, tmp_path):
    made = []

    def make(**properties) -> Gateway:
        made.append(Gateway(estlab, lab_copy, tmp_path, **properties))
        return made[-1]

    yield make
    for g in made:
        g.stop()


def close_all(sockets):
    for s in sockets:
        try:
            s.close()
        except OSError:
            pass


def test_a_thousand_idle_connections_and_a_slow_header_client_do_not_keep_a_device_out(gateway_factory):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:  # this process holds the 1,000 connections
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    gw = gateway_factory()  # the default limits: 512 connections
    assert gw.enroll("abuse-warmup")[0] == 200
    rss_before = rss_kb(gw.pid)
    held = []
    try:
        # A slow-header client: the request line and a header byte every 100 ms.
        slow = gw.tls_socket()
        slow.sendall(b"POST /.well-known/est/simpleenroll HTTP/1.1\r\nHost: localhost\r\n")
        held.append(slow)
        stop = threading.Event()

        def trickle():
            while not stop.wait(0.1):
                try:
                    slow.sendall(b"X")
                except OSError:
                    return

        trickler = threading.Thread(target=trickle, daemon=True)
        trickler.start()
        # 500 connections that finished their TLS handshake and send nothing, 500 that never start it.
        refused = 0
        for i in range(1000):
            try:
                held.append(gw.tls_socket(timeout=5) if i % 2 == 0 else socket.create_connection(("127.0.0.1", gw.port), timeout=5))
            except (OSError, ssl.SSLError):
                refused += 1
        rss_idle, fds = rss_kb(gw.pid), open_fds(gw.pid)
        status, seconds = gw.enroll("abuse-device")
        print(f"1000 idle connections ({refused} refused at once), gateway RSS {rss_before} -> {rss_idle} kB, "
              f"{fds} descriptors open; a device enrolled in {seconds * 1000:.0f} ms with status {status}")
        assert status == 200 and seconds < ENROLL_BOUND_S
        assert_rss_bounded(gw, rss_idle)
        assert fds < 512 + 64, "the gateway holds more connections than estlab.limits.max-connections"
        assert trickler.is_alive(), "the slow-header client (not idle) was closed to make room"
        stop.set()
        trickler.join(timeout=5)
    finally:
        close_all(held)


def test_a_slow_header_client_is_cut_off_at_the_read_deadline(gateway_factory):
    gw = gateway_factory(estlab_timeouts_read="2s")
    slow = gw.tls_socket()
    started = time.monotonic()
    slow.sendall(b"POST /.well-known/est/simpleenroll HTTP/1.1\r\nHost: localhost\r\n")
    cut_off = None
    try:
        while time.monotonic() - started < 10:
            slow.sendall(b"X")  # one byte every 50 ms: never silent, never finished
            time.sleep(0.05)
    except OSError:
        cut_off = time.monotonic() - started
    finally:
        slow.close()
    print(f"a slow-header client was cut off after {cut_off} s (read deadline 2 s)")
    assert cut_off is not None and cut_off < 4, "the header deadline must bound the whole header, not each byte"


def test_a_handshake_flood_does_not_keep_a_device_out(gateway_factory):
    gw = gateway_factory()
    stop = threading.Event()
    handshakes = [0]

    def flood():
        while not stop.is_set():
            try:
                s = gw.tls_socket(timeout=5)
                s.close()
                handshakes[0] += 1
            except (OSError, ssl.SSLError):
                pass

    threads = [threading.Thread(target=flood, daemon=True) for _ in range(8)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        results = [gw.enroll(f"flood-device-{i}") for i in range(5)]
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)
    print(f"{handshakes[0]} flood handshakes; device enrollments {[f'{s} {t * 1000:.0f} ms' for s, t in results]}; "
          f"RSS {rss_kb(gw.pid)} kB")
    assert all(status == 200 and seconds < ENROLL_BOUND_S for status, seconds in results), results
    assert_rss_bounded(gw)


def read_status(sock: ssl.SSLSocket) -> int:
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    assert data.startswith(b"HTTP/1."), data[:200]
    return int(data.split()[1])


def test_oversized_bodies_are_refused_while_they_are_read(gateway_factory):
    gw = gateway_factory()  # estlab.limits.max-body-bytes = 64 KiB
    # Announced: 100 MB in Content-Length, not one body byte sent. The answer comes at once.
    s = gw.tls_socket()
    s.sendall(b"POST /.well-known/est/simpleenroll HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/pkcs10\r\n"
              b"Content-Length: 100000000\r\n\r\n")
    s.settimeout(5)
    assert read_status(s) == 413
    s.close()
    # Chunked: the gateway must answer once the limit is passed, however much more is on its way.
    # A small send buffer keeps what the client's kernel holds out of the count.
    s = gw.tls_socket(send_buffer=32 * 1024)
    s.settimeout(5)
    s.sendall(b"POST /.well-known/est/simpleenroll HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/pkcs10\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"4000\r\n" + b"A" * 0x4000 + b"\r\n"
    sent = 0
    status = None
    try:
        while sent < 100 * 1024 * 1024:
            s.settimeout(0)  # has an answer come? (a TLS 1.3 ticket also makes the socket readable)
            try:
                answered = s.recv(4096)
            except (ssl.SSLWantReadError, BlockingIOError):
                answered = None
            s.settimeout(5)
            if answered is not None:
                status = int(answered.split()[1]) if answered.startswith(b"HTTP/1.") else -1
                break
            s.sendall(chunk)
            sent += len(chunk)
    except OSError:
        pass
    finally:
        s.close()
    print(f"chunked body: answered {status} after {sent} bytes sent (limit 65536)")
    assert status == 413 and sent < 1024 * 1024, (status, sent)
    assert_rss_bounded(gw)
    assert gw.enroll("after-oversize")[0] == 200
