"""The `estlab` command line: help, usage errors and exit codes, `estlab fixtures` directory
handling, `estlab run`, and fixture sets of other key types judged by openssl."""

from __future__ import annotations

import json
import re

import pytest

from conftest import FixtureSet, cert_der

KEY_TYPES = ["ec-p256", "ec-p384", "rsa2048", "rsa3072", "rsa4096", "ed25519"]
EXIT_USAGE = 2

# (command words, a line the usage must show, options its help must list)
HELP_CASES = [
    ([], "[OPTIONS] SUBCOMMAND", ["run", "fixtures", "ca", "Exit codes"]),
    (["run"], "run [OPTIONS]", ["--out", "--key-type"]),
    (["fixtures"], "fixtures [OPTIONS] DIR", ["--key-type", "--hostname", "--force"]),
    (["ca"], "ca [OPTIONS] SUBCOMMAND", ["--store", "list", "issue", "revoke", "crl", "last"]),
    (["ca", "list"], "ca list [OPTIONS]", []),
    (["ca", "issue"], "ca issue [OPTIONS]", ["--csr", "--ca", "--profile", "--out"]),
    (["ca", "revoke"], "ca revoke [OPTIONS]", ["--serial", "--reason"]),
    (["ca", "crl"], "ca crl [OPTIONS]", ["--ca", "--out"]),
    (["ca", "last"], "ca last [OPTIONS]", ["--subject", "--out"]),
]


@pytest.mark.parametrize("words,usage,mentions", HELP_CASES, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_help(estlab, words, usage, mentions):
    r = estlab(*words, "--help")
    assert r.rc == 0, str(r)
    assert re.search(r"^Usage: \S*estlab " + re.escape(usage), r.out, re.M), str(r)
    for text in mentions:
        assert text in r.out, f"help of `estlab {' '.join(words)}` does not mention {text}\n{r.out}"


def test_version(estlab):
    r = estlab("--version")
    assert r.rc == 0 and re.fullmatch(r"estlab \d+\.\d+\.\d+\n", r.out), str(r)


@pytest.mark.parametrize("args,message", [
    ([], "A subcommand is required"),
    (["ca"], "A subcommand is required"),
    (["fixtures"], "DIR is required"),
    (["ca", "issue"], "--csr is required"),
    (["ca", "revoke"], "--serial is required"),
    (["ca", "last"], "--subject is required"),
    (["run", "--no-such-option"], "--no-such-option"),
    (["fixtures", "a", "b"], "b"),
], ids=lambda v: " ".join(v) or "no-args" if isinstance(v, list) else None)
def test_usage_errors_exit_2(estlab, tmp_path, args, message):
    r = estlab(*args, cwd=tmp_path)
    assert r.rc == EXIT_USAGE, str(r)
    assert message in r.err, str(r)
    assert list(tmp_path.iterdir()) == [], "a usage error must not write anything"


def test_unknown_subcommand_exits_2(estlab, tmp_path):
    r = estlab("frobnicate", cwd=tmp_path)
    assert r.rc == EXIT_USAGE, str(r)
    assert "--help" in r.err


def test_unknown_subcommand_is_named(estlab, tmp_path):
    r = estlab("frobnicate", cwd=tmp_path)
    assert "frobnicate" in r.err, str(r)


# ---------------------------------------------------------------------------------------------
# estlab fixtures: arguments and directories
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["fixtures", "run"])
def test_unknown_key_type_lists_the_valid_ones(estlab, tmp_path, command):
    args = [tmp_path / "out"] if command == "fixtures" else ["--out", tmp_path / "out"]
    r = estlab(command, *args, "--key-type", "dsa1024")
    assert r.rc == EXIT_USAGE, str(r)
    assert "dsa1024" in r.err
    for key_type in KEY_TYPES:
        assert key_type in r.err, f"{key_type} missing from\n{r.err}"
    assert not (tmp_path / "out").exists(), "nothing is written for a bad key type"


def test_unwritable_directory_is_named(estlab, tmp_path):
    blocker = tmp_path / "FILE"
    blocker.write_text("a regular file\n")
    target = blocker / "sub"
    r = estlab("fixtures", target)
    assert r.rc == EXIT_USAGE, str(r)
    assert str(target) in r.err, str(r)
    assert "internal error" not in r.err
    assert blocker.read_text() == "a regular file\n"


def test_directory_that_is_a_file_is_refused(estlab, tmp_path):
    f = tmp_path / "FILE"
    f.write_text("keep me\n")
    r = estlab("fixtures", f, "--force")
    assert r.rc != 0 and str(f) in r.err, str(r)
    assert f.read_text() == "keep me\n"


@pytest.mark.parametrize("force", [False, True], ids=["plain", "force"])
def test_non_empty_directory_without_a_manifest_is_refused(estlab, tmp_path, force):
    d = tmp_path / "mine"
    d.mkdir()
    (d / "notes.txt").write_text("my notes\n")
    r = estlab("fixtures", d, *(["--force"] if force else []))
    assert r.rc == EXIT_USAGE, str(r)
    assert str(d) in r.err and "not empty" in r.err, str(r)
    assert sorted(p.name for p in d.iterdir()) == ["notes.txt"], "nothing may be written into someone's directory"
    assert (d / "notes.txt").read_text() == "my notes\n"


def test_existing_fixture_set_needs_force(estlab, openssl, tmp_path):
    d = tmp_path / "set"
    r = estlab("fixtures", d)
    assert r.rc == 0, str(r)
    assert re.fullmatch(rf"wrote (\d+) fixtures \(ec-p256\) to {re.escape(str(d))}/manifest.yaml\n", r.out), str(r)
    count = int(re.match(r"wrote (\d+)", r.out).group(1))
    assert count == len(FixtureSet(d).items)
    root_before = cert_der(d / "trust/root-ca.pem")
    manifest_before = (d / "manifest.yaml").read_text()

    r = estlab("fixtures", d)
    assert r.rc == EXIT_USAGE, str(r)
    assert "--force" in r.err and str(d) in r.err, str(r)
    assert (d / "manifest.yaml").read_text() == manifest_before, "a refused run must not touch the set"
    assert cert_der(d / "trust/root-ca.pem") == root_before

    r = estlab("fixtures", d, "--force")
    assert r.rc == 0, str(r)
    assert cert_der(d / "trust/root-ca.pem") != root_before, "--force must write a new PKI"
    replaced = FixtureSet(d)
    # The new set is self-consistent: the device verifies under the new root, and the store is new.
    item = replaced.item("device-factory")
    r = openssl.verify(d / item["file"], anchors=d / "trust/root-ca.pem", untrusted=[d / "ca/issuing.pem"])
    assert r.rc == 0, str(r)
    r = estlab("ca", "--store", replaced.store, "last", "--subject", replaced.item("device-current")["subject"])
    assert r.rc == 0, str(r)
    serial = openssl.ok("x509", "-noout", "-serial", input=r.out).strip().split("=", 1)[1].lower()
    assert serial == replaced.item("device-current")["serial"], "the store was replaced along with the files"


def test_hostname_goes_into_the_gateway_certificate(estlab, openssl, tmp_path):
    d = tmp_path / "set"
    r = estlab("fixtures", d, "--hostname", "est.example.org")
    assert r.rc == 0, str(r)
    cert = d / "gateway/gateway-tls.pem"
    assert openssl.subject(cert).endswith("CN = est.example.org")
    assert "DNS:est.example.org" in openssl.ext(cert, "subjectAltName")
    assert "DNS:localhost" not in openssl.ext(cert, "subjectAltName")
    r = openssl.verify(cert, anchors=d / "trust/root-ca.pem", untrusted=[d / "ca/issuing.pem"], purpose="sslserver",
                       extra=["-verify_hostname", "est.example.org"])
    assert r.rc == 0, str(r)


def test_hostname_that_is_not_a_dns_name_is_refused(estlab, openssl, tmp_path):
    d = tmp_path / "set"
    r = estlab("fixtures", d, "--hostname", "evil,O=injected")
    if r.rc == 0:
        subject = openssl.subject(d / "gateway/gateway-tls.pem")
        assert subject.count("O = ") == 1 and subject.endswith("CN = evil,O=injected"), subject
    assert r.rc == EXIT_USAGE and "evil,O=injected" in r.err, str(r)


# ---------------------------------------------------------------------------------------------
# estlab run
# ---------------------------------------------------------------------------------------------


def test_run_writes_a_passing_report(estlab, tmp_path):
    out = tmp_path / "out"
    r = estlab("run", "--out", out)
    assert r.rc == 0, str(r)
    m = re.search(r"^lab self-check: (\d+) passed, (\d+) failed$", r.out, re.M)
    assert m, str(r)
    passed, failed = int(m.group(1)), int(m.group(2))
    assert failed == 0
    lab = FixtureSet(out / "lab")
    verify_names = [item["name"] for item in lab.verify_items]
    assert passed == len(verify_names) > 0
    check = json.loads((out / "lab-check.json").read_text())
    assert [e["name"] for e in check["results"]] == verify_names
    assert {e["verdict"] for e in check["results"]} == {"pass"}, check

    # The conformance run: every scenario passed against the embedded lab, in both profiles, but
    # those that apply only where a feature is not offered (the lab offers them all), which skip
    # saying so and send nothing.
    report = json.loads((out / "results.json").read_text())
    assert report["format"] == "estlab-conformance" and report["format_version"] == 2
    assert report["all_passed"] is True
    verdicts = {(s["id"], s["profile"]): s["verdict"] for s in report["scenarios"]}
    assert len(verdicts) == len(report["scenarios"]), "each scenario runs once per profile"
    assert set(verdicts.values()) <= {"pass", "skip"}, verdicts
    passed = sum(1 for v in verdicts.values() if v == "pass")
    assert passed >= 40, verdicts
    for s in report["scenarios"]:
        if s["verdict"] == "skip":
            # Only where a feature the lab offers must be absent, or a suite this OpenSSL lacks.
            assert ("is not offered" in s["message"] or "this OpenSSL" in s["message"]) and s["steps"] == [], s
    skipped = len(verdicts) - passed
    assert {p for (_, p) in verdicts} == {"rfc7030", "protocol-gateway"}
    assert report["counts"]["pass"] == passed and report["counts"]["skip"] == skipped
    m = re.search(r"^(\d+) scenarios: (\d+) passed, 0 info, 0 warn, (\d+) skipped, 0 xfail, 0 xpass, 0 failed, 0 errors",
                  r.out, re.M)
    assert m and (int(m.group(1)), int(m.group(2)), int(m.group(3))) == (len(verdicts), passed, skipped), r.out
    for name in ("junit.xml", "report.html", "gateway.log"):
        assert (out / name).stat().st_size > 0, name


def test_run_twice_rebuilds_the_lab(estlab, openssl, tmp_path):
    # One scenario is enough: the lab is built whatever the selection.
    out = tmp_path / "out"
    assert estlab("run", "--out", out, "-k", "cacerts").rc == 0
    first = cert_der(out / "lab/trust/root-ca.pem")
    r = estlab("run", "--out", out, "-k", "cacerts")
    assert r.rc == 0, str(r)
    assert cert_der(out / "lab/trust/root-ca.pem") != first


def test_run_into_an_unwritable_directory_fails(estlab, tmp_path):
    blocker = tmp_path / "FILE"
    blocker.write_text("x")
    r = estlab("run", "--out", blocker / "out")
    assert r.rc == EXIT_USAGE, str(r)
    assert str(blocker / "out") in r.err


def test_run_fails_when_the_report_cannot_be_written(estlab, tmp_path):
    out = tmp_path / "out"
    (out / "results.json").mkdir(parents=True)  # a directory where the report file should go
    r = estlab("run", "--out", out, "-k", "cacerts")
    assert r.rc != 0, str(r)
    assert "results.json" in r.err


# ---------------------------------------------------------------------------------------------
# Other key types, judged by openssl (a smoke test over a few items each)
# ---------------------------------------------------------------------------------------------

SMOKE_ITEMS = ["gateway-tls", "device-factory", "device-revoked", "device-no-clientauth", "rollover-old-with-new",
               "device-rollover"]
KEY_TEXT = {"ed25519": ["Public Key Algorithm: ED25519"],
            "rsa2048": ["Public Key Algorithm: rsaEncryption", "Public-Key: (2048 bit)"]}


@pytest.mark.parametrize("key_type", ["ed25519", "rsa2048"])
def test_other_key_types_verify_with_openssl(key_type_sets, openssl, key_type):
    fs = key_type_sets.get(key_type)
    assert fs.manifest["key_type"] == key_type
    for name in ("root-ca", "device-factory"):
        text = openssl.ok("x509", "-in", fs.file(name), "-noout", "-text")
        for want in KEY_TEXT[key_type]:
            assert want in text, f"{name}: {want!r} not in\n{text}"
    for name in SMOKE_ITEMS:
        item = fs.item(name)
        v = item["verify"]
        r = openssl.verify(fs.path(item["file"]), anchors=fs.path(v["anchors"]),
                           untrusted=[fs.path(u) for u in v["untrusted"]],
                           crl=fs.path(v["crl"]) if v.get("crl") else None, purpose=v.get("purpose"))
        if v["expect"] == "ok":
            assert r.rc == 0 and "OK" in r.out, f"{name}\n{r}"
        else:
            assert r.rc != 0 and v["error"] in r.text, f"{name}\n{r}"
    r = openssl("pkcs12", "-in", fs.path(fs.item("device-factory")["pkcs12"]), "-passin", "pass:estlab", "-nokeys",
                "-noout")
    assert r.rc == 0, str(r)
