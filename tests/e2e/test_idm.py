"""The simulated identity manager end to end: `estlab idm` and `estlab gateway --approval manual`
as processes, a device posting with Python's TLS client, an operator using the CLI, the REST API
and the page (headless Chromium through Selenium), and SIGKILL restarts of both services.

Every wait is bounded; the module runs in well under a minute.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from conftest import FixtureSet, headless_chromium
from gateway_support import CMC_REQUEST, PKCS10, make_csr, make_full_pki_request

START_TIMEOUT_S = 15
HTTP_TIMEOUT_S = 10
PAGE_TIMEOUT_S = 10
DEVICE = "/C=SE/O=estlab lab devices/CN=device-0001"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, what: str, timeout: float = START_TIMEOUT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Service:
    """One estlab process with its output in a file; stop() ends it and waits (bounded)."""

    def __init__(self, args: list, log: Path, ready):
        self.args, self.log = args, log
        self.proc = subprocess.Popen([str(a) for a in args], stdout=log.open("w"), stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: ready() or self.proc.poll() is not None, f"{args[1]} to start")
        finally:
            if self.proc.poll() is not None:
                raise AssertionError(f"{args[1]} exited with {self.proc.returncode}:\n{log.read_text()}")

    def kill(self, sig=signal.SIGKILL):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(timeout=10)


class Lab:
    def __init__(self, estlab, lab: FixtureSet, tmp: Path):
        self.estlab, self.lab, self.tmp = estlab, lab, tmp
        self.idm_port, self.gateway_port = free_port(), free_port()
        self.idm = self.gateway = None

    @property
    def dir(self) -> Path:
        return self.lab.dir

    def start_idm(self, *extra):
        url_file = self.dir / "idm" / "url"
        if url_file.exists():
            url_file.unlink()
        self.idm = Service([self.estlab.binary, "idm", "--lab", self.dir, "--port", self.idm_port, "--quiet", *extra],
                           self.tmp / "idm.log", url_file.exists)

    def start_gateway(self):
        port_file = self.tmp / "gateway.port"
        if port_file.exists():
            port_file.unlink()
        url = f"https://127.0.0.1:{self.idm_port}/idm/ws/processes/est-enroll"
        self.gateway = Service([self.estlab.binary, "gateway", "--lab", self.dir, "--port", self.gateway_port, "--port-file",
                                port_file, "--approval", "manual", "--idm-url", url, "--quiet"],
                               self.tmp / "gateway.log", port_file.exists)

    def stop(self):
        for service in (self.gateway, self.idm):
            if service:
                service.kill(signal.SIGTERM)

    def context(self, identity: str | None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.dir / "trust" / "anchors.pem"))
        ctx.check_hostname = False  # the lab's server certificate names localhost and 127.0.0.1 (IP)
        if identity:
            ctx.load_cert_chain(str(self.dir / "devices" / f"{identity}-chain.pem"), str(self.dir / "devices" / f"{identity}.key"))
        return ctx

    def post(self, port: int, path: str, body: bytes, headers: dict, identity: str | None = "device-factory"):
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=self.context(identity), timeout=HTTP_TIMEOUT_S)
        try:
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()

    def enroll(self, op: str, body: bytes, content_type: str = PKCS10, identity: str = "device-factory"):
        return self.post(self.gateway_port, f"/.well-known/est/{op}", base64.b64encode(body),
                         {"Content-Type": content_type, "Content-Transfer-Encoding": "base64"}, identity)

    def operator(self, method: str, path: str, body: dict | None = None, headers: dict | None = None):
        token = (self.dir / "idm" / "operator-token").read_text().strip()
        sent = {"Authorization": f"Bearer {token}", "X-IDM-Request": "1", "Content-Type": "application/json"}
        sent.update(headers or {})
        sent = {k: v for k, v in sent.items() if v is not None}
        conn = http.client.HTTPSConnection("127.0.0.1", self.idm_port, context=self.context(None), timeout=HTTP_TIMEOUT_S)
        try:
            conn.request(method, "/idm/api/" + path, body=json.dumps(body) if body is not None else None, headers=sent)
            response = conn.getresponse()
            data = response.read()
            return response.status, json.loads(data) if data else None
        finally:
            conn.close()

    def cli(self, *args):
        return self.estlab("idm", *args, "--lab", self.dir)

    def pending(self) -> list[dict]:
        status, data = self.operator("GET", "requests?state=pending")
        assert status == 200, data
        return data["requests"]


@pytest.fixture
def idm_lab(estlab, lab_copy, tmp_path):
    lab = Lab(estlab, lab_copy, tmp_path)
    lab.start_idm()
    lab.start_gateway()
    yield lab
    lab.stop()


def only_pending(lab: Lab, operation: str) -> dict:
    requests = [r for r in lab.pending() if r["operation"] == operation]
    assert len(requests) == 1, f"one pending {operation} request expected (FB-19: no duplicates): {requests}"
    return requests[0]


def test_every_issuing_operation_waits_for_the_cli_operator(idm_lab, tmp_path):
    csr = make_csr(tmp_path / "csr", "device", DEVICE)
    requests = {"simpleenroll": (csr.der_bytes, PKCS10), "serverkeygen": (make_csr(tmp_path / "skg", "skg", DEVICE).der_bytes, PKCS10)}
    for op, (body, content_type) in requests.items():
        for _ in range(2):
            status, headers, answer = idm_lab.enroll(op, body, content_type)
            assert status == 202, (op, status, answer)
            assert "retry-after" in headers, headers
        request = only_pending(idm_lab, op)
        assert request["subject"].endswith("CN=device-0001") and request["polls"] == 2
        shown = idm_lab.cli("show", request["id"][:16])
        assert shown.rc == 0 and "EC P-256" in shown.out and "device-0001" in shown.out, shown
        approved = idm_lab.cli("approve", request["id"][:16], "--operator", "carol")
        assert approved.rc == 0, approved
        status, headers, answer = idm_lab.enroll(op, body, content_type)
        assert status == 200, (op, answer)
    assert idm_lab.cli("list").out.strip() == "no pending requests"
    # A retry after issuance gets the same certificate, not a second one (RFC 7030 4.2.3).
    first = idm_lab.enroll("simpleenroll", csr.der_bytes)[2]
    assert idm_lab.enroll("simpleenroll", csr.der_bytes)[2] == first


def test_fullcmc_is_pending_until_approved(idm_lab, tmp_path):
    csr = make_csr(tmp_path, "cmc", DEVICE)
    devices = idm_lab.dir / "devices"
    request = make_full_pki_request(tmp_path, csr, devices / "device-factory.pem", devices / "device-factory.key")
    status, headers, _ = idm_lab.enroll("fullcmc", request, CMC_REQUEST)
    assert status == 202 and "retry-after" in headers
    assert headers["content-type"].startswith("application/pkcs7-mime")  # a CMC response with status pending
    pending = only_pending(idm_lab, "fullcmc")
    assert idm_lab.cli("approve", pending["id"]).rc == 0
    assert idm_lab.enroll("fullcmc", request, CMC_REQUEST)[0] == 200


def test_rejection_reason_reaches_the_device(idm_lab, tmp_path):
    csr = make_csr(tmp_path, "device", DEVICE)
    assert idm_lab.enroll("simpleenroll", csr.der_bytes)[0] == 202
    pending = only_pending(idm_lab, "simpleenroll")
    missing = idm_lab.cli("reject", pending["id"][:16])
    assert missing.rc == 2 and "--reason" in missing.text, missing
    assert idm_lab.cli("reject", pending["id"][:16], "--reason", "serial not in the asset register").rc == 0
    status, _, answer = idm_lab.enroll("simpleenroll", csr.der_bytes)
    assert 400 <= status < 500 and b"serial not in the asset register" in answer


def test_operator_api_refuses_anonymous_and_cross_site_requests_and_bad_input(idm_lab, tmp_path):
    csr = make_csr(tmp_path, "device", DEVICE)
    assert idm_lab.enroll("simpleenroll", csr.der_bytes)[0] == 202
    rid = only_pending(idm_lab, "simpleenroll")["id"]
    assert idm_lab.operator("GET", "requests", headers={"Authorization": None})[0] == 401
    assert idm_lab.operator("POST", f"requests/{rid}/approve", {}, {"Authorization": "Bearer guessed"})[0] == 401
    # What a form on another site could send: no custom header, or a foreign Origin.
    assert idm_lab.operator("POST", f"requests/{rid}/approve", {}, {"X-IDM-Request": None})[0] == 403
    assert idm_lab.operator("POST", f"requests/{rid}/approve", {}, {"Origin": "https://evil.example"})[0] == 403
    status, data = idm_lab.operator("POST", f"requests/{rid}/reject", {})
    assert status == 400 and "reason" in data["error"]
    status, data = idm_lab.operator("POST", "requests/0000/approve", {})
    assert status == 404 and "0000" in data["error"]
    # The gateway API: only the gateway's own client certificate.
    status, _, answer = idm_lab.post(idm_lab.idm_port, "/idm/ws/processes/est-enroll/check", b"{}", {}, "device-factory")
    assert status == 403 and b"not the gateway" in answer
    assert only_pending(idm_lab, "simpleenroll")["state"] == "pending"  # nothing above decided it


def test_sigkill_of_idm_and_gateway_loses_no_pending_request(idm_lab, tmp_path):
    csr = make_csr(tmp_path, "device", DEVICE)
    assert idm_lab.enroll("simpleenroll", csr.der_bytes)[0] == 202
    rid = only_pending(idm_lab, "simpleenroll")["id"]
    idm_lab.idm.kill()
    status, headers, answer = idm_lab.enroll("simpleenroll", csr.der_bytes)
    assert status == 503 and "retry-after" in headers, answer  # PG-IDM-2
    idm_lab.start_idm()
    assert [r["id"] for r in idm_lab.pending()] == [rid]
    idm_lab.gateway.kill()
    idm_lab.start_gateway()
    assert idm_lab.enroll("simpleenroll", csr.der_bytes)[0] == 202
    assert [r["id"] for r in idm_lab.pending()] == [rid], "a restart must not open a second request"
    assert idm_lab.cli("approve", rid).rc == 0
    assert idm_lab.enroll("simpleenroll", csr.der_bytes)[0] == 200


@pytest.fixture(scope="module")
def browser():
    # The IDM's certificate chains to the lab's CA, which this throwaway browser does not know.
    driver = headless_chromium(accept_insecure_certs=True)
    yield driver
    driver.quit()


def test_operator_page_approves_and_rejects(idm_lab, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    token = (idm_lab.dir / "idm" / "operator-token").read_text().strip()
    browser.get(f"https://127.0.0.1:{idm_lab.idm_port}/idm/")
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.ID, "use-token").click()
    wait = WebDriverWait(browser, PAGE_TIMEOUT_S, poll_frequency=0.1)

    def row_for(_subject_cn: str, rid: str):
        # One query by id: a row the page removes meanwhile is simply not found (never stale).
        rows = browser.find_elements(By.CSS_SELECTOR, f'#pending tr.request[data-id="{rid}"]')
        return rows[0] if rows else None

    # A device's request appears (the page polls), Approve is clicked, the retry gets its certificate.
    good = make_csr(tmp_path / "good", "good", DEVICE)
    assert idm_lab.enroll("simpleenroll", good.der_bytes)[0] == 202
    rid = only_pending(idm_lab, "simpleenroll")["id"]
    row = wait.until(lambda d: row_for("device-0001", rid))
    assert "device-0001" in row.text and "EC P-256" in row.text
    row.find_element(By.CSS_SELECTOR, "button.approve").click()
    wait.until(lambda d: row_for("device-0001", rid) is None)
    assert idm_lab.enroll("simpleenroll", good.der_bytes)[0] == 200
    wait.until(lambda d: "approved" in d.find_element(By.ID, "history").text)

    # Reject with a reason: the device is told it.
    bad = make_csr(tmp_path / "bad", "bad", DEVICE)
    assert idm_lab.enroll("simpleenroll", bad.der_bytes)[0] == 202
    rid = only_pending(idm_lab, "simpleenroll")["id"]
    row = wait.until(lambda d: row_for("device-0001", rid))
    row.find_element(By.CSS_SELECTOR, "input.reason").send_keys("unknown device")
    row.find_element(By.CSS_SELECTOR, "button.reject").click()
    wait.until(lambda d: row_for("device-0001", rid) is None)
    status, _, answer = idm_lab.enroll("simpleenroll", bad.der_bytes)
    assert status == 403 and b"unknown device" in answer
    wait.until(lambda d: "unknown device" in d.find_element(By.ID, "history").text)


@pytest.mark.parametrize("args", [["idm", "--help"], ["idm", "list", "--help"], ["idm", "show", "--help"],
                                  ["idm", "approve", "--help"], ["idm", "reject", "--help"]])
def test_every_idm_command_has_help(estlab, args):
    r = estlab(*args)
    assert r.rc == 0 and "Usage" in r.out, r


def test_idm_commands_say_what_is_wrong(estlab, tmp_path):
    r = estlab("idm", "list", "--lab", tmp_path)
    assert r.rc == 1 and "no running IDM" in r.err, r
    r = estlab("idm", "--lab", tmp_path, "--port", "0")
    assert r.rc == 2 and "est.properties does not exist" in r.err, r
    r = estlab("idm", "reject", "abc", "--lab", tmp_path)
    assert r.rc == 2 and "--reason" in r.text, r
