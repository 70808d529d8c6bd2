"""`estlab ca` interoperating with openssl: openssl makes the CSRs and judges what the CA issues,
revokes and publishes. Every test works on its own copy of the fixture set (`lab_copy`)."""

from __future__ import annotations

import base64
import re

import pytest

from conftest import dn_of_openssl

DEVICE_SUBJECT = "/O=estlab lab devices/CN=device-9"


def make_csr(openssl, directory, *, subject=DEVICE_SUBJECT, san="DNS:x.example", key=("ec", "P-256"), extra=(),
             name="req"):
    """An openssl-made CSR (PEM) and its key; key is ('ec', curve), ('rsa', bits) or ('ed25519',)."""
    csr, keyfile = directory / f"{name}.csr", directory / f"{name}.key"
    if key[0] == "ec":
        newkey = ["-newkey", "ec", "-pkeyopt", f"ec_paramgen_curve:{key[1]}"]
    elif key[0] == "rsa":
        newkey = ["-newkey", f"rsa:{key[1]}"]
    else:
        newkey = ["-newkey", key[0]]
    args = ["req", "-new", *newkey, "-nodes", "-keyout", keyfile, "-subj", subject, "-out", csr]
    if san:
        args += ["-addext", f"subjectAltName={san}"]
    for e in extra:
        args += ["-addext", e]
    openssl.ok(*args)
    return csr


class Ca:
    """`estlab ca --store LAB/lab.db ...` on one fixture copy."""

    def __init__(self, estlab, lab):
        self.estlab, self.lab = estlab, lab

    def __call__(self, *args):
        return self.estlab("ca", "--store", self.lab.store, *args)

    def issue(self, csr, out, *extra):
        r = self("issue", "--csr", csr, "--out", out, *extra)
        assert r.rc == 0, str(r)
        return out


@pytest.fixture
def ca(estlab, lab_copy):
    return Ca(estlab, lab_copy)


def chain(lab):
    return dict(anchors=lab.path("trust/root-ca.pem"), untrusted=[lab.path("ca/issuing.pem")])


# ---------------------------------------------------------------------------------------------
# issue
# ---------------------------------------------------------------------------------------------


def test_issued_certificate_verifies_and_keeps_subject_san_and_key(openssl, ca, lab_copy, tmp_path):
    csr = make_csr(openssl, tmp_path)
    r = ca("issue", "--csr", csr, "--out", tmp_path / "cert.pem")
    assert r.rc == 0, str(r)
    cert = tmp_path / "cert.pem"
    v = openssl.verify(cert, purpose="sslclient", **chain(lab_copy))
    assert v.rc == 0 and "OK" in v.out, str(v)
    assert openssl.subject(cert) == "subject=O = estlab lab devices, CN = device-9"
    assert "DNS:x.example" in openssl.ext(cert, "subjectAltName")
    assert openssl.pubkey(cert) == openssl.ok("req", "-in", csr, "-noout", "-pubkey")
    assert "TLS Web Client Authentication" in openssl.ext(cert, "extendedKeyUsage")  # default profile: device
    assert "CA:FALSE" in openssl.ext(cert, "basicConstraints")
    # The CLI reports the serial it issued, and it is new.
    serial = openssl.serial(cert)
    assert f"issued serial {serial} to O=estlab lab devices,CN=device-9" in r.err
    assert serial not in {item.get("serial") for item in lab_copy.items}


@pytest.mark.parametrize("key", [("ec", "P-384"), ("rsa", "2048"), ("ed25519",)], ids=lambda k: "-".join(k))
def test_issue_accepts_csrs_of_other_key_types(openssl, ca, lab_copy, tmp_path, key):
    csr = make_csr(openssl, tmp_path, key=key)
    cert = ca.issue(csr, tmp_path / "cert.pem")
    assert openssl.verify(cert, purpose="sslclient", **chain(lab_copy)).rc == 0
    assert openssl.pubkey(cert) == openssl.ok("req", "-in", csr, "-noout", "-pubkey")


@pytest.mark.parametrize("encoding", ["der", "base64"])
def test_issue_accepts_der_and_bare_base64_csrs(openssl, ca, lab_copy, tmp_path, encoding):
    pem = make_csr(openssl, tmp_path)
    der = tmp_path / "req.der"
    openssl.ok("req", "-in", pem, "-outform", "DER", "-out", der)
    if encoding == "der":
        csr = der
    else:
        csr = tmp_path / "req.b64"
        csr.write_text(base64.b64encode(der.read_bytes()).decode() + "\n")
    cert = ca.issue(csr, tmp_path / "cert.pem")
    assert openssl.verify(cert, **chain(lab_copy)).rc == 0
    assert openssl.pubkey(cert) == openssl.ok("req", "-in", pem, "-noout", "-pubkey")


def test_issue_ignores_extensions_the_csr_asks_for(openssl, ca, tmp_path):
    """A device CSR asking to be a CA (or a server) gets the device profile, nothing more."""
    csr = make_csr(openssl, tmp_path, extra=["basicConstraints=critical,CA:TRUE", "keyUsage=keyCertSign,cRLSign",
                                             "extendedKeyUsage=serverAuth"])
    cert = ca.issue(csr, tmp_path / "cert.pem")
    assert "CA:FALSE" in openssl.ext(cert, "basicConstraints")
    ku = openssl.ext(cert, "keyUsage")
    assert "Certificate Sign" not in ku and "CRL Sign" not in ku, ku
    eku = openssl.ext(cert, "extendedKeyUsage")
    assert "TLS Web Client Authentication" in eku and "TLS Web Server Authentication" not in eku, eku


@pytest.mark.parametrize("profile,eku_has,eku_lacks", [
    ("device", ["TLS Web Client Authentication"], ["TLS Web Server Authentication"]),
    ("tls-server", ["TLS Web Server Authentication"], ["TLS Web Client Authentication"]),
    ("officer", ["TLS Web Client Authentication"], ["CMC Registration Authority"]),
    ("cmc-ra", ["CMC Registration Authority"], ["TLS Web Client Authentication"]),
    ("no-eku", [], ["TLS Web"]),
])
def test_issue_profiles(openssl, ca, tmp_path, profile, eku_has, eku_lacks):
    cert = ca.issue(make_csr(openssl, tmp_path), tmp_path / "cert.pem", "--profile", profile)
    eku = openssl.ext(cert, "extendedKeyUsage")
    for text in eku_has:
        assert text in eku, eku
    for text in eku_lacks:
        assert text not in eku, eku
    if profile == "no-eku":
        assert eku.strip() == ""
    policies = openssl.ext(cert, "certificatePolicies")
    assert ("2.999.7030.1.1" in policies) == (profile == "officer"), policies


def test_issue_with_unknown_profile_lists_the_valid_ones(openssl, ca, tmp_path):
    r = ca("issue", "--csr", make_csr(openssl, tmp_path), "--profile", "superuser", "--out", tmp_path / "c.pem")
    assert r.rc == 2, str(r)
    for name in ("device", "tls-server", "officer", "cmc-ra", "no-eku"):
        assert name in r.err
    assert not (tmp_path / "c.pem").exists()


def test_issue_from_a_closed_or_unknown_ca_is_refused(openssl, ca, tmp_path):
    csr = make_csr(openssl, tmp_path)
    r = ca("issue", "--csr", csr, "--ca", "unknown", "--out", tmp_path / "a.pem")
    assert r.rc != 0 and "closed" in r.err, str(r)
    assert not (tmp_path / "a.pem").exists()
    r = ca("issue", "--csr", csr, "--ca", "no-such-ca", "--out", tmp_path / "b.pem")
    assert r.rc == 2 and "no-such-ca" in r.err, str(r)


def issued_count(ca, label="issuing"):
    r = ca("list")
    assert r.rc == 0, str(r)
    for line in r.out.splitlines():
        cols = line.split("\t")
        if cols[0] == label:
            return int(cols[-1].split()[-1])
    raise AssertionError(f"no CA {label} in\n{r.out}")


def test_csr_with_a_broken_signature_is_refused(openssl, ca, tmp_path):
    pem = make_csr(openssl, tmp_path)
    openssl.ok("req", "-in", pem, "-outform", "DER", "-out", tmp_path / "req.der")
    der = bytearray((tmp_path / "req.der").read_bytes())
    der[-1] ^= 0x01  # inside the signature value: still valid DER, no longer a valid signature
    broken = tmp_path / "broken.csr"
    body = base64.encodebytes(bytes(der)).decode()
    broken.write_text(f"-----BEGIN CERTIFICATE REQUEST-----\n{body}-----END CERTIFICATE REQUEST-----\n")
    # openssl 3.0 exits 0 either way; its message tells.
    check = openssl("req", "-in", broken, "-noout", "-verify")
    assert "verify failure" in check.text, f"the test's CSR should be broken\n{check}"
    before = issued_count(ca)
    r = ca("issue", "--csr", broken, "--out", tmp_path / "cert.pem")
    assert r.rc == 1, str(r)  # verify_failed is "a check failed" (1), not a usage error
    assert "CSR signature does not verify" in r.err, str(r)
    assert str(broken) in r.err, "the message names the file"
    assert not (tmp_path / "cert.pem").exists()
    assert issued_count(ca) == before


@pytest.mark.parametrize("content", [b"\x00\x01garbage\xff" * 20, b"hello\n",
                                     b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"],
                         ids=["binary", "text", "pem-not-a-csr"])
def test_garbage_csr_gets_a_clear_error(ca, tmp_path, content):
    garbage = tmp_path / "garbage.csr"
    garbage.write_bytes(content)
    r = ca("issue", "--csr", garbage, "--out", tmp_path / "cert.pem")
    assert r.rc == 2, str(r)
    assert r.err.startswith("estlab ca issue: ") and str(garbage) in r.err and "CSR" in r.err, str(r)
    assert "internal error" not in r.err
    assert not (tmp_path / "cert.pem").exists()


def test_missing_csr_file_is_named(ca, tmp_path):
    r = ca("issue", "--csr", tmp_path / "absent.csr")
    assert r.rc != 0 and str(tmp_path / "absent.csr") in r.err, str(r)


def test_missing_store_is_a_usage_error(estlab, openssl, tmp_path):
    r = estlab("ca", "--store", tmp_path / "none.db", "issue", "--csr", make_csr(openssl, tmp_path))
    assert r.rc == 2 and str(tmp_path / "none.db") in r.err and "estlab fixtures" in r.err, str(r)
    assert not (tmp_path / "none.db").exists(), "a missing store must not be created"


# ---------------------------------------------------------------------------------------------
# revoke and crl
# ---------------------------------------------------------------------------------------------


def test_issue_revoke_publish_and_openssl_sees_the_revocation(openssl, ca, lab_copy, tmp_path):
    cert = ca.issue(make_csr(openssl, tmp_path), tmp_path / "cert.pem")
    before = tmp_path / "before.pem"
    assert ca("crl", "--ca", "issuing", "--out", before).rc == 0
    r = openssl.verify(cert, crl=before, **chain(lab_copy))
    assert r.rc == 0, f"not revoked yet\n{r}"

    # openssl prints the serial in upper case; the CLI must take it as the README shows.
    serial_upper = openssl.serial(cert).upper()
    r = ca("revoke", "--serial", serial_upper, "--reason", "keyCompromise")
    assert r.rc == 0, str(r)
    assert serial_upper.lower() in r.out and "keyCompromise" in r.out, str(r)

    crl = tmp_path / "crl.pem"
    r = ca("crl", "--ca", "issuing", "--out", crl)
    assert r.rc == 0, str(r)
    r = openssl("crl", "-in", crl, "-CAfile", lab_copy.path("ca/issuing.pem"), "-noout", "-verify")
    assert r.rc == 0 and "verify OK" in r.text, str(r)
    r = openssl.verify(cert, crl=crl, **chain(lab_copy))
    assert r.rc != 0 and "certificate revoked" in r.text, str(r)
    text = openssl.ok("crl", "-in", crl, "-noout", "-text")
    assert serial_upper in text and "Key Compromise" in text
    # Earlier revocations stay on the new CRL.
    assert lab_copy.item("device-revoked")["serial"].upper() in text
    # Other certificates are not affected.
    factory = lab_copy.item("device-factory")
    assert openssl.verify(lab_copy.path(factory["file"]), crl=crl, **chain(lab_copy)).rc == 0


def test_crl_numbers_increase(openssl, ca, lab_copy, tmp_path):
    def number(path):
        return int(openssl.ok("crl", "-in", path, "-noout", "-crlnumber").strip().split("=", 1)[1], 16)

    first = number(lab_copy.path("crl/issuing.crl.pem"))
    r = ca("crl")  # to stdout, default CA issuing
    assert r.rc == 0 and r.out.startswith("-----BEGIN X509 CRL-----"), str(r)
    (tmp_path / "a.pem").write_text(r.out)
    assert ca("crl", "--out", tmp_path / "b.pem").rc == 0
    assert first < number(tmp_path / "a.pem") < number(tmp_path / "b.pem")


@pytest.mark.parametrize("reason,text", [("superseded", "Superseded"),
                                         ("cessationOfOperation", "Cessation Of Operation"),
                                         ("affiliationChanged", "Affiliation Changed")])
def test_revocation_reason_reaches_the_crl(openssl, ca, lab_copy, tmp_path, reason, text):
    serial = lab_copy.item("device-factory")["serial"]
    assert ca("revoke", "--serial", serial, "--reason", reason).rc == 0
    assert ca("crl", "--out", tmp_path / "crl.pem").rc == 0
    crl_text = openssl.ok("crl", "-in", tmp_path / "crl.pem", "-noout", "-text")
    entry = crl_text.split(f"Serial Number: {serial.upper()}", 1)[1].split("Serial Number:", 1)[0]
    assert text in entry, entry


def test_revoke_errors(ca, lab_copy):
    r = ca("revoke", "--serial", "0123abcd")
    assert r.rc == 2 and "0123abcd" in r.err, str(r)
    r = ca("revoke", "--serial", "not-hex")
    assert r.rc == 2 and "not-hex" in r.err, str(r)
    r = ca("revoke", "--serial", lab_copy.item("device-factory")["serial"], "--reason", "boredom")
    assert r.rc == 2 and "keyCompromise" in r.err, f"the message lists the valid reasons\n{r}"
    r = ca("revoke", "--serial", lab_copy.item("device-revoked")["serial"])
    assert r.rc != 0 and "already revoked" in r.err, str(r)


# ---------------------------------------------------------------------------------------------
# last, list
# ---------------------------------------------------------------------------------------------


def test_last_returns_device_current_not_superseded(openssl, ca, lab_copy, tmp_path):
    subject = lab_copy.item("device-current")["subject"]
    assert subject == lab_copy.item("device-superseded")["subject"]
    r = ca("last", "--subject", subject, "--out", tmp_path / "last.pem")
    assert r.rc == 0, str(r)
    assert openssl.serial(tmp_path / "last.pem") == lab_copy.item("device-current")["serial"]
    # openssl's slash form names the same subject.
    r = ca("last", "--subject", "/C=SE/O=estlab lab devices/CN=device-0006")
    assert r.rc == 0, str(r)
    (tmp_path / "slash.pem").write_text(r.out)
    assert openssl.serial(tmp_path / "slash.pem") == lab_copy.item("device-current")["serial"]


def test_last_follows_a_new_issue_for_the_subject(openssl, ca, lab_copy, tmp_path):
    subject = lab_copy.item("device-current")["subject"]
    csr = make_csr(openssl, tmp_path, subject="/C=SE/O=estlab lab devices/CN=device-0006", san=None)
    cert = ca.issue(csr, tmp_path / "renewed.pem")
    assert dn_of_openssl(openssl.subject(cert)) == subject
    r = ca("last", "--subject", subject, "--out", tmp_path / "last.pem")
    assert r.rc == 0, str(r)
    assert openssl.serial(tmp_path / "last.pem") == openssl.serial(cert)


def test_last_for_a_subject_never_issued(ca):
    r = ca("last", "--subject", "C=SE,O=estlab lab devices,CN=device-nobody")
    assert r.rc == 2 and "device-nobody" in r.err, str(r)
    assert r.out == ""


def test_last_round_trips_the_subject_issue_printed(openssl, ca, tmp_path):
    csr = make_csr(openssl, tmp_path, subject="/O=estlab lab devices/CN=trailing ", san=None)
    r = ca("issue", "--csr", csr, "--out", tmp_path / "cert.pem")
    assert r.rc == 0, str(r)
    printed = re.search(r"issued serial [0-9a-f]+ to (.*)\n", r.err).group(1)
    r = ca("last", "--subject", printed)
    assert r.rc == 0, str(r)
    (tmp_path / "last.pem").write_text(r.out)
    assert openssl.serial(tmp_path / "last.pem") == openssl.serial(tmp_path / "cert.pem")


def test_list_shows_the_cas_and_what_they_issued(ca, lab_copy):
    r = ca("list")
    assert r.rc == 0, str(r)
    rows = {cols[0]: cols for cols in (line.split("\t") for line in r.out.splitlines())}
    for label in ("root", "issuing", "twin-a", "twin-b", "rollover", "unknown"):
        assert label in rows, r.out
    assert rows["unknown"][2] == "closed" and rows["issuing"][2] == "open"
    assert rows["twin-a"][4] == rows["twin-b"][4] == "C=SE,O=estlab lab,CN=estlab Twin CA"
    leaves_of_issuing = [i for i in lab_copy.items if i.get("ca") == "issuing" and "key" in i]
    assert issued_count(ca) == len(leaves_of_issuing)
