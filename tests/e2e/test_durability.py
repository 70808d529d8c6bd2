"""Durability under a stream (issue 13, item 6): the gateway (and the CA inside it), the CA driven
as a process of its own (`estlab ca issue`) and the identity manager are killed with SIGKILL while
devices keep enrolling, then restarted. Judged on the SQLite files themselves:

- every enrollment answered 200 is in the CA store (lab.db), with the very certificate answered;
- no serial is handed out twice (answers and store);
- every request answered 202 (waiting for an operator) is still pending in the IDM (idm/idm.db)
  after the restarts, and gets its certificate once approved.

The kill times come from a seeded random generator; the seed is printed. Each test runs in well
under 30 s.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import random
import signal
import sqlite3
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from gateway_support import PKCS10, device_subject, make_csr
from test_idm import DEVICE, HTTP_TIMEOUT_S, Lab, Service, free_port, idm_lab  # noqa: F401 (idm_lab is a fixture)

SEED = 20261207
KILLS = 8  # services killed during one stream, 0.3 to 0.8 s apart (a count, not a time: a loaded machine restarts slower)


def csr_pool(directory: Path, cns: list[str]) -> list[bytes]:
    """`openssl req` CSRs (DER), a fresh P-256 key each, for lab device subjects with these CNs."""
    return [make_csr(directory, f"csr-{i}", device_subject(cn)).der_bytes for i, cn in enumerate(cns)]


def der_children(der: bytes) -> list[bytes]:
    """The DER elements (tag, length and content) inside a constructed DER element."""
    def header(at: int) -> tuple[int, int]:  # (content start, content length) of the element at `at`
        length = der[at + 1]
        if length < 0x80:
            return at + 2, length
        n = length & 0x7F
        return at + 2 + n, int.from_bytes(der[at + 2:at + 2 + n], "big")

    start, length = header(0)
    children, at = [], start
    while at < start + length:
        content, size = header(at)
        children.append(der[at:content + size])
        at = content + size
    return children


def issued_certificate(body: bytes) -> bytes:
    """The first certificate (DER) of a certs-only answer: base64 of ContentInfo { id-signedData,
    [0] SignedData { version, digestAlgorithms, encapContentInfo, [0] certificates, ... } }."""
    content_info = base64.b64decode(b"".join(body.split()))
    signed_data = der_children(der_children(content_info)[1])[0]
    certificates = next(e for e in der_children(signed_data) if e[0] == 0xA0)
    return der_children(certificates)[0]


def serial_hex(certificate: bytes) -> str:
    """The serial number of a DER certificate as the CA store spells it (lower-case hex, even length)."""
    tbs = der_children(der_children(certificate)[0])
    serial = tbs[1] if tbs[0][0] == 0xA0 else tbs[0]  # INTEGER after the optional [0] version; < 128 octets
    return serial[2:].lstrip(b"\x00").hex() or "00"  # the magnitude, as OpenSSL's BN_bn2bin gives it


def pem_to_der(pem: str) -> bytes:
    body = pem.split("-----BEGIN CERTIFICATE-----", 1)[1].split("-----END CERTIFICATE-----", 1)[0]
    return base64.b64decode("".join(body.split()))


def store_rows(db: Path) -> dict[str, bytes]:
    """serial_hex -> cert_der of the CA store's issued table, after its integrity check."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = c.execute("SELECT serial_hex, cert_der FROM issued").fetchall()
    serials = [serial for serial, _ in rows]
    assert len(serials) == len(set(serials)), "a serial repeats in the CA store"
    return {serial: bytes(der) for serial, der in rows}


@dataclass
class Stream:
    """Devices enrolling in threads until stopped; every answer is kept."""

    post: callable  # (csr_der) -> (status, body); raises OSError when the service is down
    csrs: list  # the CSRs (DER) the devices send, in turn; sent again once all were (a retry, or a new certificate)
    answers: list = field(default_factory=list)  # (n, csr_der, status, body)
    errors: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    sent: int = 0

    def device(self):
        while not self.stop.is_set():
            with self.lock:
                n = self.sent
                self.sent += 1
            der = self.csrs[n % len(self.csrs)]
            try:
                status, body = self.post(der)
            except (OSError, http.client.HTTPException):
                with self.lock:
                    self.errors += 1
                time.sleep(0.02)
                continue
            with self.lock:
                self.answers.append((n, der, status, body))

    def run(self, devices: int, while_running):
        threads = [threading.Thread(target=self.device, daemon=True) for _ in range(devices)]
        for t in threads:
            t.start()
        try:
            while_running()
        finally:
            self.stop.set()
            for t in threads:
                t.join(timeout=HTTP_TIMEOUT_S + 5)
        assert not any(t.is_alive() for t in threads), "a device thread did not finish"


def tls_context(lab_dir: Path, chain: str, key: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(lab_dir / "trust" / "anchors.pem"))
    ctx.check_hostname = False  # the gateway's certificate names localhost and 127.0.0.1 (IP)
    ctx.load_cert_chain(str(lab_dir / chain), str(lab_dir / key))
    return ctx


def https_post(ctx: ssl.SSLContext, port: int, path: str, der: bytes) -> tuple[int, bytes]:
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=HTTP_TIMEOUT_S)
    try:
        conn.request("POST", path, body=base64.b64encode(der),
                     headers={"Content-Type": PKCS10, "Content-Transfer-Encoding": "base64"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_sigkill_of_gateway_and_ca_during_a_stream_loses_no_issued_certificate(estlab, lab_copy, tmp_path):
    rng = random.Random(SEED)
    print(f"seed {SEED}")
    port = free_port()
    port_file = tmp_path / "gateway.port"

    def start_gateway() -> Service:
        port_file.unlink(missing_ok=True)
        return Service([estlab.binary, "gateway", "--lab", lab_copy.dir, "--port", port, "--port-file", port_file, "--quiet"],
                       tmp_path / "gateway.log", port_file.exists)

    # The officer may enroll any device subject (PG-AUTH-3); a CSR sent again gets a new certificate.
    officer = lab_copy.item("ra-officer")
    ctx = tls_context(lab_copy.dir, officer["chain"], officer["key"])
    csrs = csr_pool(tmp_path / "csrs", [f"durable-{i}" for i in range(16)])
    stream = Stream(lambda der: https_post(ctx, port, "/.well-known/est/simpleenroll", der), csrs)

    # The CA as a process of its own: `estlab ca issue` on the same store, killed at a random moment.
    ca_issued: list[bytes] = []
    ca_killed = 0

    def ca_writer():
        nonlocal ca_killed
        n = 0
        csr = tmp_path / "ca-cli.der"
        csr.write_bytes(csrs[0])
        while not stream.stop.is_set():
            n += 1
            out = tmp_path / f"ca-{n}.pem"
            proc = subprocess.Popen([str(estlab.binary), "ca", "--store", str(lab_copy.dir / "lab.db"), "issue", "--csr", str(csr),
                                     "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                proc.wait(timeout=rng.uniform(0.0, 0.08))
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=10)
                ca_killed += 1
                continue
            if proc.returncode == 0:
                ca_issued.append(pem_to_der(out.read_text()))

    gateway = start_gateway()
    kills = 0
    ca_thread = threading.Thread(target=ca_writer, daemon=True)

    def kill_and_restart():
        nonlocal gateway, kills
        ca_thread.start()
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.3, 0.8))
            gateway.kill(signal.SIGKILL)
            kills += 1
            gateway = start_gateway()

    try:
        stream.run(4, kill_and_restart)
        ca_thread.join(timeout=20)
    finally:
        gateway.kill(signal.SIGTERM)

    answered = [(n, body) for n, _, status, body in stream.answers if status == 200]
    refused = [(n, status, body[:200]) for n, _, status, body in stream.answers if status != 200]
    print(f"{kills} gateway kills, {len(answered)} enrollments answered 200, {stream.errors} cut off by a kill, "
          f"{len(ca_issued)} `estlab ca issue` runs finished, {ca_killed} killed")
    assert len(answered) >= 20, "the stream was too thin to say anything"
    assert not refused, f"answers other than 200: {refused[:5]}"

    rows = store_rows(lab_copy.dir / "lab.db")
    serials = []
    for n, body in answered:
        cert = issued_certificate(body)
        serial = serial_hex(cert)
        serials.append(serial)
        assert serial in rows, f"request {n}: serial {serial} was answered 200 but is not in the CA store"
        assert rows[serial] == cert, f"request {n}: the store holds another certificate for {serial}"
    for der in ca_issued:
        serial = serial_hex(der)
        serials.append(serial)
        assert rows.get(serial) == der, f"`estlab ca issue` printed serial {serial}, which the store does not hold"
    assert len(serials) == len(set(serials)), "a serial was handed out twice"


def test_sigkill_of_idm_and_gateway_during_a_stream_loses_no_pending_request(idm_lab, tmp_path):
    rng = random.Random(SEED + 1)
    print(f"seed {SEED + 1}")
    # Every CSR names the factory device (PG-ENR-1), each with a key of its own: a request each;
    # sent again, it is the device polling its pending request.
    factory_cn = DEVICE.rsplit("CN=", 1)[1]
    csrs = csr_pool(tmp_path / "csrs", [factory_cn] * 60)
    stream = Stream(lambda der: idm_lab.enroll("simpleenroll", der)[::2], csrs)
    kills = {"idm": 0, "gateway": 0}

    def kill_and_restart():
        for i in range(KILLS):
            time.sleep(rng.uniform(0.3, 0.7))
            which = ["idm", "gateway"][i % 2] if i < 4 else rng.choice(["idm", "gateway"])
            getattr(idm_lab, which).kill(signal.SIGKILL)
            kills[which] += 1
            time.sleep(rng.uniform(0.0, 0.2))  # devices meet the dead service (503 PG-IDM-2, or no answer)
            idm_lab.start_idm() if which == "idm" else idm_lab.start_gateway()

    stream.run(3, kill_and_restart)

    statuses = sorted({status for _, _, status, _ in stream.answers})
    pending = {hashlib.sha256(der).hexdigest(): der for _, der, status, _ in stream.answers if status == 202}
    print(f"kills {kills}, {len(stream.answers)} answers {statuses}, {len(pending)} waiting (202), {stream.errors} cut off by a kill")
    assert len(pending) >= 10, "the stream was too thin to say anything"
    assert set(statuses) <= {202, 503}, statuses  # PG-IDM-1 waits; PG-IDM-2 while the IDM is down

    # Every request answered 202 is in the IDM's store, still pending, once each (FB-19).
    with sqlite3.connect(f"file:{idm_lab.dir / 'idm' / 'idm.db'}?mode=ro", uri=True) as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = c.execute("SELECT id, csr_sha256, state FROM requests").fetchall()
    by_csr: dict[str, list] = {}
    for rid, csr_sha256, state in rows:
        by_csr.setdefault(csr_sha256, []).append((rid, state))
    lost = [digest for digest in pending if digest not in by_csr]
    assert not lost, f"requests answered 202 but not in the IDM: {lost[:5]}"
    assert all(len(v) == 1 and v[0][1] == "pending" for d, v in by_csr.items() if d in pending), by_csr

    # Approved, every one of them gets its certificate on its retry, and the CA store holds it.
    for digest in pending:
        rid = by_csr[digest][0][0]
        status, answer = idm_lab.operator("POST", f"requests/{rid}/approve", {})
        assert status == 200, (rid, answer)
    serials = []
    for digest, der in pending.items():
        status, _, body = idm_lab.enroll("simpleenroll", der)
        assert status == 200, (digest, status, body[:200])
        cert = issued_certificate(body)
        serials.append(serial_hex(cert))
    ca_rows = store_rows(idm_lab.dir / "lab.db")
    assert all(serial in ca_rows for serial in serials), "an approved certificate answered 200 is not in the CA store"
    assert len(serials) == len(set(serials)), "a serial was handed out twice"
