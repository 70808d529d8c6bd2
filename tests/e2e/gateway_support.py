"""Helpers for driving `estlab gateway` with independent peers: curl as the EST client, the openssl
command line to make requests and to judge answers.

Nothing here links to estlab: requests are made by `openssl req` / `openssl cms`, sent by `curl`,
and answers are read by `openssl pkcs7`, `openssl x509`, `openssl verify` and Python's `email`
package (multipart). The gateway runs as a subprocess on an ephemeral port (`--port 0
--port-file`); its per-request log lines on stderr are captured to a file so a test can check
which rule decided.
"""

from __future__ import annotations

import base64
import email
import json
import os
import re
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import FixtureSet, certs_in_pem

CURL_TIMEOUT_S = 15  # per curl call (connect + request + answer)
COMMAND_TIMEOUT_S = 30  # any other subprocess
START_TIMEOUT_S = 20  # until the port file appears
STOP_TIMEOUT_S = 10  # from SIGTERM to exit

PROFILES = ["protocol-gateway", "rfc7030"]
TLS_VERSIONS = ["1.2", "1.3"]

PKCS10 = "application/pkcs10"
CMC_REQUEST = "application/pkcs7-mime; smime-type=CMC-request"

DEVICE_O = "estlab lab devices"


def device_subject(cn: str) -> str:
    """openssl -subj form of a lab device subject."""
    return f"/C=SE/O={DEVICE_O}/CN={cn}"


def openssl_subject_line(cn: str, o: str = DEVICE_O) -> str:
    """What `openssl x509 -noout -subject` prints for C=SE,O=o,CN=cn."""
    return f"subject=C = SE, O = {o}, CN = {cn}"


# ---------------------------------------------------------------------------------------------
# What a target file says about a lab (read from its manifest and est.properties)
# ---------------------------------------------------------------------------------------------

TARGET_ROLE_KINDS = ("device", "ra")  # manifest roles of TLS client identities; the others are the server's


def lab_properties(lab: FixtureSet) -> dict[str, str]:
    """config/est.properties of a fixture set as key -> value (`key = value` lines)."""
    out = {}
    for line in lab.path("config/est.properties").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip()
    return out


def target_identities(lab: FixtureSet) -> dict[str, dict[str, str]]:
    """role -> {certificate, key} for every client identity (device, RA) of the fixture set."""
    identities = {item["name"]: {"certificate": str(lab.path(item["chain"])), "key": str(lab.path(item["key"]))}
                  for item in lab.items if item.get("role") in TARGET_ROLE_KINDS and item.get("key") and item.get("chain")}
    assert {"device-factory", "ra-officer", "device-no-clientauth"} <= set(identities), sorted(identities)
    return identities


def target_lab_facts(lab: FixtureSet) -> dict:
    """The target-file keys that make a separately started `estlab gateway --lab DIR` look to the
    scenarios as the embedded lab does: how its CA names devices, its preregistered device's
    credentials, and which CA labels are the other CA and the rollover CA."""
    props = lab_properties(lab)
    factory = lab.item("device-factory")["subject"]
    assert ",CN=" in factory, factory
    template = factory.rsplit(",CN=", 1)[0] + ",CN={{cn}}"
    # The lab's preregistered device is the factory device (estlab.prereg.1.factory-cert).
    assert props["estlab.prereg.1.factory-cert"] == factory_file(lab), props
    labels = [label.strip() for label in props["estlab.ca.labels"].split(",")]
    assert {"twin-a", "rollover"} <= set(labels), labels
    return {
        "subject_template": template,
        "credentials": {"preregistered": {"user": props["estlab.prereg.1.user"],
                                          "password": props["estlab.prereg.1.password"], "subject": factory}},
        "ca_labels": {"other": "twin-a", "rollover": "rollover"},
    }


def factory_file(lab: FixtureSet) -> str:
    return lab.item("device-factory")["file"]


# ---------------------------------------------------------------------------------------------
# Subprocesses with bytes
# ---------------------------------------------------------------------------------------------


@dataclass
class RanBytes:
    args: list[str]
    rc: int
    out: bytes
    err: bytes

    def __str__(self) -> str:
        return (f"$ {' '.join(self.args)}\n-> exit {self.rc}\n--- stdout\n{self.out[:4000]!r}\n"
                f"--- stderr\n{self.err.decode(errors='replace')[:4000]}")


def run_bytes(args, *, input: bytes | None = None, timeout: float = COMMAND_TIMEOUT_S, env=None) -> RanBytes:
    args = [str(a) for a in args]
    try:
        proc = subprocess.run(args, input=input, capture_output=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"timed out after {timeout} s: {' '.join(args)}", pytrace=False)
    return RanBytes(args, proc.returncode, proc.stdout, proc.stderr)


def openssl_ok(*args, input: bytes | None = None) -> bytes:
    r = run_bytes(["openssl", *args], input=input)
    assert r.rc == 0, str(r)
    return r.out


# ---------------------------------------------------------------------------------------------
# Bodies (RFC 8951: base64 of DER)
# ---------------------------------------------------------------------------------------------


def b64_strict(body: bytes) -> bytes:
    """The DER inside an EST body: base64 (standard alphabet, padded), whitespace allowed anywhere."""
    compact = re.sub(rb"\s+", b"", body)
    assert compact, "empty body"
    try:
        return base64.b64decode(compact, validate=True)
    except Exception as e:  # binascii.Error
        raise AssertionError(f"body is not base64 ({e}): {body[:200]!r}") from None


def b64_lines(der: bytes, width: int, eol: bytes) -> bytes:
    text = base64.b64encode(der)
    return b"".join(text[i:i + width] + eol for i in range(0, len(text), width))


# ---------------------------------------------------------------------------------------------
# Requests made with openssl
# ---------------------------------------------------------------------------------------------


@dataclass
class Csr:
    der: Path
    key: Path
    subject: str  # the -subj form

    @property
    def der_bytes(self) -> bytes:
        return self.der.read_bytes()

    def body(self) -> bytes:
        """One line of base64, as `openssl base64 -A` writes it."""
        return base64.b64encode(self.der_bytes)

    def public_key_pem(self) -> str:
        return openssl_ok("pkey", "-in", self.key, "-pubout").decode()


def make_csr(directory: Path, name: str, subject: str, *, san: str | None = None,
             attributes: dict[str, str] | None = None, key_type: str = "ec-p256",
             extensions: tuple[str, ...] = ()) -> Csr:
    """An `openssl req` CSR (DER) with a fresh key.

    With attributes (challengePassword, unstructuredName, ...), the subject goes into a config
    file instead of -subj, because `openssl req -subj` drops the config's attribute section.
    """
    directory.mkdir(parents=True, exist_ok=True)
    der, key = directory / f"{name}.csr.der", directory / f"{name}.key"
    if key_type == "ec-p256":
        newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
    elif key_type == "rsa2048":
        newkey = ["-newkey", "rsa:2048"]
    elif key_type == "ed25519":
        newkey = ["-newkey", "ed25519"]
    else:
        raise ValueError(key_type)
    config = directory / f"{name}.cnf"
    lines = ["[req]", "prompt = no", "distinguished_name = dn"]
    if attributes:
        lines.append("attributes = attrs")
    lines += ["[dn]"]
    rdns = [part for part in subject.split("/") if part]
    if attributes:
        lines += [f"{k} = {v}" for k, v in (rdn.split("=", 1) for rdn in rdns)]
        lines += ["[attrs]"] + [f"{k} = {v}" for k, v in attributes.items()]
    else:
        lines.append("CN = unused")  # -subj below replaces it
    config.write_text("\n".join(lines) + "\n")
    args = ["req", "-new", "-config", config, *newkey, "-nodes", "-keyout", key, "-outform", "DER", "-out", der]
    if not attributes:
        args += ["-subj", subject]
    if san:
        args += ["-addext", f"subjectAltName={san}"]
    for extension in extensions:
        args += ["-addext", extension]
    openssl_ok(*args)
    return Csr(der, key, subject)


def corrupt_signature(der: bytes) -> bytes:
    """The CSR with the last byte of its signature changed: still DER, no longer a valid POP.

    The signature BIT STRING is the last element of CertificationRequest, so the last byte of the
    DER is inside it (for ECDSA: the last byte of s)."""
    return der[:-1] + bytes([der[-1] ^ 0x01])


def der_tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        octets = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(octets)]) + octets
    return bytes([tag]) + length + content


def pki_data_with_one_pkcs10(csr_der: bytes, body_part_id: int = 1) -> bytes:
    """RFC 5272 PKIData (IMPLICIT TAGS): no controls, one TaggedCertificationRequest [0]."""
    seq = lambda *items: der_tlv(0x30, b"".join(items))  # noqa: E731
    tcr = der_tlv(0xA0, der_tlv(0x02, bytes([body_part_id])) + csr_der)
    return seq(seq(), seq(tcr), seq(), seq())


def make_full_pki_request(directory: Path, csr: Csr, signer_cert: Path, signer_key: Path) -> bytes:
    """A Full PKI Request: PKIData (composed above) in CMS SignedData with eContentType
    id-cct-PKIData, signed by `openssl cms`. Returns the DER."""
    pki_data = directory / "pkidata.der"
    pki_data.write_bytes(pki_data_with_one_pkcs10(csr.der_bytes))
    out = directory / "fullcmc-request.der"
    openssl_ok("cms", "-sign", "-binary", "-nodetach", "-econtent_type", "1.3.6.1.5.5.7.12.2", "-md", "sha256",
               "-signer", signer_cert, "-inkey", signer_key, "-in", pki_data, "-outform", "DER", "-out", out)
    return out.read_bytes()


# ---------------------------------------------------------------------------------------------
# Answers judged with openssl
# ---------------------------------------------------------------------------------------------


def certs_of_pkcs7(der: bytes, directory: Path, stem: str) -> list[Path]:
    """Every certificate of a CMS/PKCS#7 SignedData (DER), written as PEM files, in order."""
    directory.mkdir(parents=True, exist_ok=True)
    p7 = directory / f"{stem}.p7.der"
    p7.write_bytes(der)
    pem = openssl_ok("pkcs7", "-inform", "DER", "-in", p7, "-print_certs").decode()
    paths = []
    for i, cert in enumerate(certs_in_pem(pem)):
        path = directory / f"{stem}-{i}.pem"
        b64 = base64.encodebytes(cert).decode()
        path.write_text(f"-----BEGIN CERTIFICATE-----\n{b64}-----END CERTIFICATE-----\n")
        paths.append(path)
    return paths


def x509(cert: Path, *args: str) -> str:
    return openssl_ok("x509", "-in", cert, "-noout", *args).decode()


def subject_of(cert: Path) -> str:
    return x509(cert, "-subject").strip()


def issuer_of(cert: Path) -> str:
    return x509(cert, "-issuer").strip()


def pubkey_of_cert(cert: Path) -> str:
    return x509(cert, "-pubkey")


def ext_of(cert: Path, name: str) -> str:
    return x509(cert, "-ext", name)


def media_type(value: str | None) -> tuple[str, dict[str, str]]:
    """('type/subtype' lower-case, {param: value}) of a Content-Type header value."""
    if not value:
        return "", {}
    main, *params = value.split(";")
    out = {}
    for p in params:
        if "=" in p:
            k, v = p.split("=", 1)
            out[k.strip().lower()] = v.strip().strip('"')
    return main.strip().lower(), out


def split_multipart(content_type: str, body: bytes) -> list[email.message.Message]:
    """The parts of a multipart/mixed answer, parsed by Python's email package."""
    message = email.message_from_bytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    assert message.is_multipart(), f"not multipart: {content_type}\n{body[:300]!r}"
    return message.get_payload()


# ---------------------------------------------------------------------------------------------
# The gateway process
# ---------------------------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    log: list[str] = field(default_factory=list)  # gateway request log lines written meanwhile
    curl: RanBytes | None = None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")

    def log_line(self) -> str:
        """The one request log line (`... op=... rule=... status=...`) this exchange produced."""
        lines = [line for line in self.log if " status=" in line and " rule=" in line]
        assert len(lines) == 1, f"expected one request log line, got {len(lines)}:\n" + "\n".join(self.log)
        return lines[0]

    def rule(self) -> str:
        m = re.search(r" rule=(\"(?:[^\"\\]|\\.)*\"|\S+)", self.log_line())
        assert m, self.log_line()
        return m.group(1).strip('"')

    def __str__(self) -> str:
        head = "\n".join(f"{k}: {v}" for k, v in self.headers.items())
        shown = self.body[:600]
        return (f"HTTP {self.status}\n{head}\n\n{shown!r}{' ...' if len(self.body) > 600 else ''}\n"
                f"--- gateway log\n" + "\n".join(self.log) +
                (f"\n--- curl\n{self.curl}" if self.curl is not None and self.curl.rc != 0 else ""))


def parse_curl_headers(raw: bytes) -> dict[str, str]:
    """The last header block of a `curl -D` dump (after any 100 Continue), names lower-cased."""
    text = raw.decode("iso-8859-1")
    blocks = [b for b in re.split(r"\r?\n\r?\n", text) if b.strip()]
    if not blocks:
        return {}
    headers: dict[str, str] = {}
    for line in blocks[-1].splitlines()[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return headers


def curl_env() -> dict[str, str]:
    """The environment for curl: without SSLKEYLOGFILE (the key-log test must see the gateway's
    writes only) and without proxies."""
    env = {k: v for k, v in os.environ.items()
           if k.upper() not in ("SSLKEYLOGFILE", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")}
    return env


class Gateway:
    """One `estlab gateway` subprocess on its own lab."""

    def __init__(self, binary: Path, lab: FixtureSet, workdir: Path, *, profile: str | None = None,
                 args: tuple = (), env: dict | None = None):
        self.binary, self.lab, self.workdir = binary, lab, workdir
        self.profile = profile
        workdir.mkdir(parents=True, exist_ok=True)
        self.port_file = workdir / "port"
        self.stdout_file = workdir / "gateway.stdout"
        self.stderr_file = workdir / "gateway.stderr"
        self.args = [str(binary), "gateway", "--lab", str(lab.dir), "--port", "0", "--port-file", str(self.port_file)]
        if profile:
            self.args += ["--profile", profile]
        self.args += [str(a) for a in args]
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self._counter = 0
        self.stopped_rc: int | None = None

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self) -> "Gateway":
        env = dict(os.environ) if self.env is None else self.env
        with open(self.stdout_file, "wb") as out, open(self.stderr_file, "wb") as err:
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"estlab gateway exited with {self.proc.returncode} before listening\n"
                            f"$ {' '.join(self.args)}\n--- stdout\n{self.stdout()}--- stderr\n{self.stderr()}",
                            pytrace=False)
            text = self.port_file.read_text() if self.port_file.exists() else ""
            if text.endswith("\n") and text.strip().isdigit():
                self.port = int(text)
                return self
            time.sleep(0.02)
        self.kill()
        pytest.fail(f"estlab gateway wrote no port file within {START_TIMEOUT_S} s\n$ {' '.join(self.args)}\n"
                    f"--- stdout\n{self.stdout()}--- stderr\n{self.stderr()}", pytrace=False)

    def stop(self, sig=signal.SIGTERM) -> int:
        """Sends `sig`; returns the exit code (fails when the gateway does not exit in time)."""
        if self.proc is None:
            return 0
        if self.stopped_rc is not None:
            return self.stopped_rc
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.stopped_rc = self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"estlab gateway did not exit within {STOP_TIMEOUT_S} s of {sig.name}\n"
                        f"--- stderr (tail)\n{self.stderr()[-3000:]}", pytrace=False)
        return self.stopped_rc

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT_S)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stdout(self) -> str:
        return self.stdout_file.read_text(errors="replace") if self.stdout_file.exists() else ""

    def stderr(self) -> str:
        return self.stderr_file.read_text(errors="replace") if self.stderr_file.exists() else ""

    # --- addresses ------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}/.well-known/est"

    def url(self, op: str, label: str | None = None, scheme: str = "https") -> str:
        path = f"{label}/{op}" if label else op
        return f"{scheme}://127.0.0.1:{self.port}/.well-known/est/{path}"

    @property
    def anchors(self) -> Path:
        return self.lab.path("trust/anchors.pem")

    def identity(self, name: str) -> tuple[Path, Path]:
        """(chain PEM, key) of a manifest item, what a TLS client presents."""
        item = self.lab.item(name)
        return self.lab.path(item["chain"]), self.lab.path(item["key"])

    # --- requests -------------------------------------------------------------------------------
    def request(self, op: str, *, label: str | None = None, method: str | None = None, identity: str | None = None,
                cert_key: tuple[Path, Path] | None = None, basic: tuple[str, str] | None = None,
                data: bytes | None = None, content_type: str | None = None, headers: tuple = (),
                tls: str | None = None, url: str | None = None, expect_transfer: bool = True) -> Response:
        """One curl request. `tls`: '1.2' or '1.3' pins the version (both ends of the range)."""
        self._counter += 1
        n = self._counter
        tmp = self.workdir / "curl"
        tmp.mkdir(exist_ok=True)
        body_out, head_out = tmp / f"{n}.body", tmp / f"{n}.headers"
        args = ["curl", "-sS", "--max-time", str(CURL_TIMEOUT_S - 3), "--cacert", self.anchors,
                "-o", body_out, "-D", head_out, "-w", "%{http_code}"]
        if tls == "1.2":
            args += ["--tlsv1.2", "--tls-max", "1.2"]
        elif tls == "1.3":
            args += ["--tlsv1.3", "--tls-max", "1.3"]
        if identity:
            cert_key = self.identity(identity)
        if cert_key:
            args += ["--cert", cert_key[0], "--key", cert_key[1]]
        if basic:
            args += ["--basic", "-u", f"{basic[0]}:{basic[1]}"]
        if data is not None:
            data_file = tmp / f"{n}.request"
            data_file.write_bytes(data)
            args += ["--data-binary", f"@{data_file}"]
            # curl's default for --data-binary is application/x-www-form-urlencoded; remove it
            # unless the test sets one, so "no Content-Type" means none.
            args += ["-H", f"Content-Type: {content_type}" if content_type is not None else "Content-Type:"]
        elif content_type is not None:
            args += ["-H", f"Content-Type: {content_type}"]
        for h in headers:
            args += ["-H", h]
        if method:
            args += ["-X", method]
        args.append(url or self.url(op, label))
        before = self.stderr_file.stat().st_size if self.stderr_file.exists() else 0
        ran = run_bytes(args, timeout=CURL_TIMEOUT_S, env=curl_env())
        log = self._log_since(before)
        code = ran.out.decode(errors="replace").strip()
        if expect_transfer:
            assert ran.rc == 0 and code.isdigit() and code != "000", \
                f"curl failed (exit {ran.rc}, http_code '{code}')\n{ran}\n--- gateway log\n" + "\n".join(log)
        status = int(code) if code.isdigit() else 0
        headers_dict = parse_curl_headers(head_out.read_bytes()) if head_out.exists() else {}
        body = body_out.read_bytes() if body_out.exists() else b""
        return Response(status, headers_dict, body, log, ran)

    def _log_since(self, offset: int) -> list[str]:
        # The gateway writes its log line before it writes the answer, so it is on disk by now;
        # a short grace covers a line being flushed by another I/O thread.
        text = b""
        for _ in range(20):
            with open(self.stderr_file, "rb") as f:
                f.seek(offset)
                text = f.read()
            if b" status=" in text:
                break
            time.sleep(0.01)
        return text.decode(errors="replace").splitlines()


class RunOut:
    """One finished `estlab run`: the command's result and the reports in its --out directory."""

    def __init__(self, ran, out: Path):
        self.ran, self.out = ran, out

    @property
    def results(self) -> dict:
        path = self.out / "results.json"
        assert path.is_file(), f"no results.json\n{self.ran}"
        return json.loads(path.read_text())

    @property
    def scenarios(self) -> list[dict]:
        return self.results["scenarios"]

    def verdicts(self, profile: str | None = None) -> dict[tuple[str, str], str]:
        got = {}
        for s in self.scenarios:
            if profile and s["profile"] != profile:
                continue
            key = (s["id"], s["profile"])
            assert key not in got, f"{key} reported twice"
            got[key] = s["verdict"]
        return got

    def scenario(self, scenario_id: str, profile: str = "protocol-gateway") -> dict:
        found = [s for s in self.scenarios if s["id"] == scenario_id and s["profile"] == profile]
        assert len(found) == 1, f"{scenario_id} ({profile}) reported {len(found)} times"
        return found[0]

    @property
    def junit(self) -> ET.Element:
        return ET.parse(self.out / "junit.xml").getroot()

    def junit_case(self, scenario_id: str, profile: str) -> ET.Element:
        cases = [c for c in self.junit.iter("testcase") if c.get("name") == f"{scenario_id} [{profile}]"]
        assert len(cases) == 1, f"{scenario_id} [{profile}]: {len(cases)} testcases"
        return cases[0]

    @property
    def html(self) -> Path:
        return self.out / "report.html"
