"""The fixture set judged by an independent implementation: the openssl command line.

Every manifest item with a verify block is run through `openssl verify` exactly as the manifest
says; the rest of the file checks that each role the lab needs is present and really is what its
name claims (EKUs, policies, CRL entries, rollover links, twin CAs, tokens, key files, configs),
so a manifest that merely says "expect: ok" cannot hide a wrong certificate.
"""

from __future__ import annotations

import datetime as dt
import re
import stat

import pytest

from conftest import TOKEN_PASSWORD, cert_der, certs_in_pem, dn_of_openssl, parse_openssl_time

OFFICER_POLICY = "2.999.7030.1.1"
CMC_RA_OID = "1.3.6.1.5.5.7.3.28"

# Every item the lab needs, with its role (the list of roles).
REQUIRED_ROLES = {
    "root-ca": "trust-anchor",
    "trust-anchors": "trust-anchor",
    "issuing-ca": "ca",
    "gateway-tls": "gateway-tls",
    "dtls-server": "dtls-server",
    "dtls-server-no-serverauth": "dtls-server",
    "ra-officer": "ra",
    "ra-cmc-only": "ra",
    "device-factory": "device",
    "device-no-clientauth": "device",
    "device-revoked": "device",
    "device-expired": "device",
    "device-superseded": "device",
    "device-current": "device",
    "device-unknown-ca": "device",
    "twin-ca-a": "ca",
    "twin-ca-b": "ca",
    "unknown-root-ca": "ca",
    "rollover-old-with-old": "rollover",
    "rollover-old-with-new": "rollover",
    "rollover-new-with-old": "rollover",
    "rollover-new-with-new": "rollover",
    "crl-issuing": "crl",
    "cacerts-issuing": "cacerts",
    "cacerts-rollover": "cacerts",
    "est-properties": "config",
    "coap-properties": "config",
}

# How openssl must judge the items whose meaning depends on it: (expect, error, purpose, crl needed).
# Pinned here so that a generator that wrote "expect: ok" for a broken item is caught.
PINNED_VERDICTS = {
    "gateway-tls": ("ok", None, "sslserver", False),
    "dtls-server": ("ok", None, "sslserver", False),
    "dtls-server-no-serverauth": ("fail", "unsuitable certificate purpose", "sslserver", False),
    "ra-officer": ("ok", None, "sslclient", False),
    "ra-cmc-only": ("fail", "unsuitable certificate purpose", "sslclient", False),
    "device-factory": ("ok", None, "sslclient", True),
    "device-no-clientauth": ("fail", "unsuitable certificate purpose", "sslclient", False),
    "device-revoked": ("fail", "certificate revoked", "sslclient", True),
    "device-expired": ("fail", "certificate has expired", "sslclient", False),
    "device-superseded": ("ok", None, "sslclient", False),
    "device-current": ("ok", None, "sslclient", False),
    "device-unknown-ca": ("fail", "unable to get local issuer certificate", "sslclient", False),
    "rollover-old-with-new": ("ok", None, None, False),
    "rollover-new-with-old": ("ok", None, None, False),
}


def verify_as_manifest_says(openssl, fixture_set, item):
    v = item["verify"]
    return openssl.verify(
        fixture_set.path(item["file"]),
        anchors=fixture_set.path(v["anchors"]),
        untrusted=[fixture_set.path(u) for u in v.get("untrusted") or []],
        crl=fixture_set.path(v["crl"]) if v.get("crl") else None,
        purpose=v.get("purpose"),
    )


def chain_args(fixture_set, item):
    v = item["verify"]
    return dict(anchors=fixture_set.path(v["anchors"]), untrusted=[fixture_set.path(u) for u in v["untrusted"]])


# ---------------------------------------------------------------------------------------------
# openssl verify, for every item the manifest gives a verdict for
# ---------------------------------------------------------------------------------------------


def test_openssl_verify_agrees_with_manifest(openssl, fixture_set, verify_item_name):
    item = fixture_set.item(verify_item_name)
    v = item["verify"]
    r = verify_as_manifest_says(openssl, fixture_set, item)
    if v["expect"] == "ok":
        assert r.rc == 0 and "OK" in r.out, str(r)
    else:
        assert v["expect"] == "fail", f"expect must be ok or fail, got {v['expect']!r}"
        assert v.get("error"), f"{item['name']}: expect fail without an error text"
        assert r.rc != 0, str(r)
        assert v["error"] in r.text, str(r)


# ---------------------------------------------------------------------------------------------
# The manifest itself
# ---------------------------------------------------------------------------------------------


def test_manifest_header(fixture_set):
    m = fixture_set.manifest
    assert m["estlab_fixtures"] == 1
    assert m["key_type"] == "ec-p256"
    assert m["token_password"] == TOKEN_PASSWORD
    assert fixture_set.store.is_file()
    created = m["created_at"]  # an unquoted ISO timestamp, which YAML reads as a datetime
    if isinstance(created, str):
        created = dt.datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ")
    created = created.replace(tzinfo=dt.timezone.utc)
    assert abs(dt.datetime.now(dt.timezone.utc) - created) < dt.timedelta(hours=1), created


def test_manifest_has_every_required_role(fixture_set):
    missing = sorted(set(REQUIRED_ROLES) - set(fixture_set.by_name))
    assert not missing, f"manifest lacks {missing}"
    wrong = {n: fixture_set.by_name[n]["role"] for n, role in REQUIRED_ROLES.items()
             if fixture_set.by_name[n]["role"] != role}
    assert not wrong, f"items with the wrong role: {wrong}"


def test_manifest_names_are_unique_and_files_exist(fixture_set):
    names = [item["name"] for item in fixture_set.items]
    assert len(names) == len(set(names)), names
    for item in fixture_set.items:
        for field in ("file", "key", "chain", "pkcs12"):
            if field in item:
                assert fixture_set.path(item[field]).is_file(), f"{item['name']}.{field}: {item[field]} missing"
        if "verify" in item:
            v = item["verify"]
            for rel in [v["anchors"], *v["untrusted"], *([v["crl"]] if "crl" in v else [])]:
                assert fixture_set.path(rel).is_file(), f"{item['name']}.verify: {rel} missing"


@pytest.mark.parametrize("name", sorted(PINNED_VERDICTS))
def test_manifest_verdict_is_the_one_the_role_needs(fixture_set, name):
    expect, error, purpose, needs_crl = PINNED_VERDICTS[name]
    v = fixture_set.item(name).get("verify")
    assert v, f"{name} has no verify block"
    assert v["expect"] == expect
    assert v.get("error") == error
    assert v.get("purpose") == purpose
    if needs_crl:
        assert v.get("crl") == "crl/issuing.crl.pem"


@pytest.mark.parametrize("name", ["root-ca", "issuing-ca", "gateway-tls", "device-factory", "device-revoked",
                                  "device-current", "device-unknown-ca", "rollover-new-with-new"])
def test_manifest_subject_and_serial_match_the_certificate(openssl, fixture_set, name):
    item = fixture_set.item(name)
    cert = fixture_set.file(name)
    assert dn_of_openssl(openssl.subject(cert)) == item["subject"]
    assert openssl.serial(cert) == item["serial"]


# ---------------------------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------------------------


def test_gateway_tls_certificate_names_and_eku(openssl, fixture_set):
    cert = fixture_set.file("gateway-tls")
    san = openssl.ext(cert, "subjectAltName")
    assert "DNS:localhost" in san and "IP Address:127.0.0.1" in san and "IP Address:0:0:0:0:0:0:0:1" in san, san
    assert "TLS Web Server Authentication" in openssl.ext(cert, "extendedKeyUsage")
    assert "CA:FALSE" in openssl.ext(cert, "basicConstraints")
    args = chain_args(fixture_set, fixture_set.item("gateway-tls"))
    for host_check in (["-verify_hostname", "localhost"], ["-verify_ip", "127.0.0.1"], ["-verify_ip", "::1"]):
        r = openssl.verify(cert, purpose="sslserver", extra=host_check, **args)
        assert r.rc == 0, str(r)
    r = openssl.verify(cert, purpose="sslserver", extra=["-verify_hostname", "other.example"], **args)
    assert r.rc != 0 and "hostname mismatch" in r.text, str(r)


def test_dtls_server_certificates_differ_only_in_server_auth(openssl, fixture_set):
    with_sa = openssl.ext(fixture_set.file("dtls-server"), "extendedKeyUsage")
    without_sa = openssl.ext(fixture_set.file("dtls-server-no-serverauth"), "extendedKeyUsage")
    assert "TLS Web Server Authentication" in with_sa
    assert "TLS Web Server Authentication" not in without_sa
    # The one without serverAuth is otherwise sound: the chain verifies when no purpose is asked.
    item = fixture_set.item("dtls-server-no-serverauth")
    r = openssl.verify(fixture_set.file(item["name"]), **chain_args(fixture_set, item))
    assert r.rc == 0, str(r)


# ---------------------------------------------------------------------------------------------
# Registration authorities
# ---------------------------------------------------------------------------------------------


def test_officer_ra_has_client_auth_and_officer_policy(openssl, fixture_set):
    cert = fixture_set.file("ra-officer")
    assert "TLS Web Client Authentication" in openssl.ext(cert, "extendedKeyUsage")
    assert OFFICER_POLICY in openssl.ext(cert, "certificatePolicies")


def test_cmc_only_ra_has_cmc_ra_and_no_client_auth(openssl, fixture_set):
    cert = fixture_set.file("ra-cmc-only")
    eku = openssl.ext(cert, "extendedKeyUsage")
    assert "CMC Registration Authority" in eku or CMC_RA_OID in eku, eku
    assert "TLS Web Client Authentication" not in eku, eku
    assert OFFICER_POLICY not in openssl.ext(cert, "certificatePolicies")
    item = fixture_set.item("ra-cmc-only")
    r = openssl.verify(cert, **chain_args(fixture_set, item))
    assert r.rc == 0, f"only the purpose should be wrong\n{r}"


# ---------------------------------------------------------------------------------------------
# Device identities
# ---------------------------------------------------------------------------------------------


def test_factory_device_has_client_auth(openssl, fixture_set):
    assert "TLS Web Client Authentication" in openssl.ext(fixture_set.file("device-factory"), "extendedKeyUsage")


def test_no_clientauth_device_has_an_eku_without_client_auth(openssl, fixture_set):
    cert = fixture_set.file("device-no-clientauth")
    eku = openssl.ext(cert, "extendedKeyUsage")
    assert eku.strip(), "the EKU extension must be present (absent EKU is device-no-eku's case)"
    assert "TLS Web Client Authentication" not in eku
    item = fixture_set.item("device-no-clientauth")
    assert openssl.verify(cert, **chain_args(fixture_set, item)).rc == 0


def test_revoked_device_is_sound_apart_from_revocation(openssl, fixture_set):
    item = fixture_set.item("device-revoked")
    r = openssl.verify(fixture_set.file(item["name"]), purpose="sslclient", **chain_args(fixture_set, item))
    assert r.rc == 0, f"without a CRL check the revoked device must verify\n{r}"


def test_expired_device_expired_and_is_otherwise_sound(openssl, fixture_set):
    item = fixture_set.item("device-expired")
    cert = fixture_set.file(item["name"])
    now = dt.datetime.now(dt.timezone.utc)
    assert openssl.date(cert, "enddate") < now - dt.timedelta(days=300)
    r = openssl.verify(cert, purpose="sslclient", extra=["-no_check_time"], **chain_args(fixture_set, item))
    assert r.rc == 0, str(r)


def test_superseded_and_current_share_a_subject(openssl, fixture_set):
    old, new = fixture_set.file("device-superseded"), fixture_set.file("device-current")
    assert openssl.subject(old) == openssl.subject(new)
    assert openssl.serial(old) != openssl.serial(new)
    assert openssl.pubkey(old) != openssl.pubkey(new)
    assert fixture_set.item("device-superseded")["subject"] == fixture_set.item("device-current")["subject"]


def test_unknown_ca_device_chains_to_the_unknown_root_only(openssl, fixture_set):
    cert = fixture_set.file("device-unknown-ca")
    unknown_root = fixture_set.file("unknown-root-ca")
    assert openssl.issuer(cert).split("=", 1)[1] == openssl.subject(unknown_root).split("=", 1)[1]
    r = openssl.verify(cert, anchors=unknown_root, purpose="sslclient")
    assert r.rc == 0, f"the device is sound under its own root\n{r}"
    anchors = fixture_set.file("trust-anchors")
    r = openssl.verify(cert, anchors=anchors, purpose="sslclient")
    assert r.rc != 0 and "unable to get local issuer certificate" in r.text, str(r)


def test_duplicate_subject_cas_have_equal_subjects_and_different_keys(openssl, fixture_set):
    a, b = fixture_set.file("twin-ca-a"), fixture_set.file("twin-ca-b")
    assert openssl.subject(a) == openssl.subject(b)
    assert openssl.pubkey(a) != openssl.pubkey(b)
    assert openssl.ext(a, "subjectKeyIdentifier") != openssl.ext(b, "subjectKeyIdentifier")
    assert "CA:TRUE" in openssl.ext(a, "basicConstraints") and "CA:TRUE" in openssl.ext(b, "basicConstraints")


def test_twin_devices_verify_only_under_their_own_twin(openssl, fixture_set, tmp_path):
    root = fixture_set.file("root-ca")
    twin_a, twin_b = fixture_set.file("twin-ca-a"), fixture_set.file("twin-ca-b")
    dev_a, dev_b = fixture_set.file("device-twin-a"), fixture_set.file("device-twin-b")
    r = openssl.verify(dev_a, anchors=root, untrusted=[twin_b])
    assert r.rc != 0, f"device-twin-a must not verify through twin-b (same name, other key)\n{r}"
    r = openssl.verify(dev_b, anchors=root, untrusted=[twin_a])
    assert r.rc != 0, str(r)
    both = tmp_path / "twins.pem"
    both.write_text(twin_a.read_text() + twin_b.read_text())
    for dev in (dev_a, dev_b):
        r = openssl.verify(dev, anchors=root, untrusted=[both])
        assert r.rc == 0, str(r)


# ---------------------------------------------------------------------------------------------
# Keys, chains, tokens
# ---------------------------------------------------------------------------------------------


def identity_items(fixture_set):
    return [item for item in fixture_set.items if "key" in item]


def test_every_identity_has_key_chain_and_token(fixture_set):
    names = {item["name"] for item in identity_items(fixture_set)}
    for required in ("gateway-tls", "dtls-server", "ra-officer", "ra-cmc-only", "device-factory", "device-revoked"):
        assert required in names
    for item in identity_items(fixture_set):
        assert "chain" in item and "pkcs12" in item, item["name"]


def test_key_files_are_private(fixture_set):
    loose = {}
    for item in identity_items(fixture_set):
        mode = stat.S_IMODE(fixture_set.path(item["key"]).stat().st_mode)
        if mode != 0o600:
            loose[item["key"]] = oct(mode)
    assert not loose, f"key files not mode 0600: {loose}"


def test_keys_match_their_certificates(openssl, fixture_set):
    for item in identity_items(fixture_set):
        key_pub = openssl.ok("pkey", "-in", fixture_set.path(item["key"]), "-pubout")
        assert key_pub == openssl.pubkey(fixture_set.path(item["file"])), item["name"]


def test_chain_files_are_leaf_then_intermediates(openssl, fixture_set):
    for item in identity_items(fixture_set):
        chain = certs_in_pem(fixture_set.path(item["chain"]).read_text())
        expected = [cert_der(fixture_set.path(item["file"]))]
        expected += [cert_der(fixture_set.path(u)) for u in item.get("verify", {}).get("untrusted", [])]
        assert chain == expected, item["name"]


@pytest.mark.parametrize("name", ["gateway-tls", "dtls-server", "ra-officer", "device-factory", "device-rollover"])
def test_pkcs12_tokens_open_with_the_lab_password_only(openssl, fixture_set, name):
    item = fixture_set.item(name)
    p12 = fixture_set.path(item["pkcs12"])
    r = openssl("pkcs12", "-in", p12, "-passin", f"pass:{TOKEN_PASSWORD}", "-nokeys", "-clcerts")
    assert r.rc == 0, str(r)
    assert certs_in_pem(r.out) == [cert_der(fixture_set.path(item["file"]))]
    key = openssl.ok("pkcs12", "-in", p12, "-passin", f"pass:{TOKEN_PASSWORD}", "-nocerts", "-nodes")
    assert openssl.ok("pkey", "-pubout", input=key) == openssl.pubkey(fixture_set.path(item["file"]))
    r = openssl("pkcs12", "-in", p12, "-passin", "pass:not-the-password", "-nokeys")
    assert r.rc != 0, str(r)
    assert "BEGIN CERTIFICATE" not in r.out


def test_all_pkcs12_tokens_open(openssl, fixture_set):
    for item in identity_items(fixture_set):
        r = openssl("pkcs12", "-in", fixture_set.path(item["pkcs12"]), "-passin", f"pass:{TOKEN_PASSWORD}",
                    "-nokeys", "-noout")
        assert r.rc == 0, str(r)


# ---------------------------------------------------------------------------------------------
# CRLs
# ---------------------------------------------------------------------------------------------


def test_issuing_crl_lists_the_revoked_device_for_key_compromise(openssl, fixture_set):
    text = openssl.ok("crl", "-in", fixture_set.path("crl/issuing.crl.pem"), "-noout", "-text")
    revoked_serial = fixture_set.item("device-revoked")["serial"].upper()
    entry = rf"Serial Number: {revoked_serial}\n(.*?)(?=\n    Serial Number:|\n    Signature Algorithm|\Z)"
    m = re.search(entry, text, re.S)
    assert m, f"{revoked_serial} not on the CRL\n{text}"
    assert "Key Compromise" in m.group(1), m.group(1)
    # Nothing valid is listed.
    for name in ("device-factory", "device-current", "device-superseded", "ra-officer", "gateway-tls"):
        assert fixture_set.item(name)["serial"].upper() not in text, f"{name} is on the CRL"


@pytest.mark.parametrize("crl_item,ca_item", [("crl-issuing", "issuing-ca"), ("crl-root", "root-ca"),
                                               ("crl-twin-a", "twin-ca-a"), ("crl-twin-b", "twin-ca-b")])
def test_crls_are_signed_by_their_ca_and_current(openssl, fixture_set, crl_item, ca_item):
    crl = fixture_set.file(crl_item)
    r = openssl("crl", "-in", crl, "-CAfile", fixture_set.file(ca_item), "-noout", "-verify")
    assert r.rc == 0 and "verify OK" in r.text, str(r)
    out = openssl.ok("crl", "-in", crl, "-noout", "-issuer", "-lastupdate", "-nextupdate")
    fields = dict(line.split("=", 1) for line in out.strip().splitlines())
    assert fields["issuer"].strip() == openssl.subject(fixture_set.file(ca_item)).split("=", 1)[1].strip()
    now = dt.datetime.now(dt.timezone.utc)
    last_update, next_update = parse_openssl_time(fields["lastUpdate"]), parse_openssl_time(fields["nextUpdate"])
    assert last_update <= now + dt.timedelta(minutes=5) < next_update, fields


def test_twin_crls_are_not_interchangeable(openssl, fixture_set):
    r = openssl("crl", "-in", fixture_set.file("crl-twin-a"), "-CAfile", fixture_set.file("twin-ca-b"), "-noout",
                "-verify")
    # openssl 3.0 `crl -verify` exits 0 either way; its message tells.
    assert "verify failure" in r.text and "verify OK" not in r.text, str(r)


def test_full_chain_crl_check_passes_for_a_valid_device(openssl, fixture_set, tmp_path):
    crls = tmp_path / "crls.pem"
    crls.write_text(fixture_set.file("crl-root").read_text() + fixture_set.file("crl-issuing").read_text())
    item = fixture_set.item("device-factory")
    r = openssl.verify(fixture_set.file(item["name"]), purpose="sslclient", extra=["-crl_check_all", "-CRLfile", crls],
                       **chain_args(fixture_set, item))
    assert r.rc == 0, str(r)


# ---------------------------------------------------------------------------------------------
# /cacerts bags and rollover
# ---------------------------------------------------------------------------------------------


def p7b_certs(openssl, path):
    return certs_in_pem(openssl.ok("pkcs7", "-inform", "DER", "-in", path, "-print_certs"))


def test_cacerts_issuing_holds_issuing_ca_and_root(openssl, fixture_set):
    out = openssl.ok("pkcs7", "-inform", "DER", "-in", fixture_set.file("cacerts-issuing"), "-print_certs", "-noout")
    assert "CN = estlab Issuing CA" in out and "CN = estlab Root CA" in out, out
    got = sorted(p7b_certs(openssl, fixture_set.file("cacerts-issuing")))
    want = sorted(cert_der(fixture_set.file(n)) for n in ("issuing-ca", "root-ca"))
    assert got == want


def test_cacerts_rollover_holds_the_four_rollover_certificates(openssl, fixture_set):
    got = p7b_certs(openssl, fixture_set.file("cacerts-rollover"))
    assert len(got) == 4, got
    want = {cert_der(fixture_set.file(f"rollover-{n}"))
            for n in ("old-with-old", "old-with-new", "new-with-old", "new-with-new")}
    assert set(got) == want


def test_rollover_links_carry_the_right_keys(openssl, fixture_set):
    key = {n: openssl.pubkey(fixture_set.file(f"rollover-{n}"))
           for n in ("old-with-old", "old-with-new", "new-with-old", "new-with-new")}
    assert key["old-with-new"] == key["old-with-old"]
    assert key["new-with-old"] == key["new-with-new"]
    assert key["old-with-old"] != key["new-with-new"]


def test_rollover_links_verify_only_under_the_other_key(openssl, fixture_set):
    f = {n: fixture_set.file(f"rollover-{n}") for n in ("old-with-old", "old-with-new", "new-with-old", "new-with-new")}
    assert openssl.verify(f["old-with-new"], anchors=f["new-with-new"]).rc == 0
    assert openssl.verify(f["new-with-old"], anchors=f["old-with-old"]).rc == 0
    r = openssl.verify(f["old-with-new"], anchors=f["old-with-old"])
    assert r.rc != 0, f"OldWithNew must be signed by the new key\n{r}"
    r = openssl.verify(f["new-with-old"], anchors=f["new-with-new"])
    assert r.rc != 0, f"NewWithOld must be signed by the old key\n{r}"


def test_device_issued_after_rollover_reaches_the_old_anchor_through_new_with_old(openssl, fixture_set):
    dev = fixture_set.file("device-rollover")
    old = fixture_set.file("rollover-old-with-old")
    r = openssl.verify(dev, anchors=old, purpose="sslclient")
    assert r.rc != 0, f"the device is signed by the new key, not the old one\n{r}"
    r = openssl.verify(dev, anchors=old, untrusted=[fixture_set.file("rollover-new-with-old")], purpose="sslclient")
    assert r.rc == 0, f"a client that only trusts the old root must reach it through NewWithOld\n{r}"


def test_new_with_new_has_the_latest_not_after(openssl, fixture_set):
    # A margin, not just '>': a one-second difference only appears when generation happens to cross
    # a clock tick, and a client cannot rely on it.
    end = {n: openssl.date(fixture_set.file(f"rollover-{n}"), "enddate")
           for n in ("old-with-old", "old-with-new", "new-with-old", "new-with-new")}
    for other in ("old-with-old", "old-with-new", "new-with-old"):
        assert end["new-with-new"] - end[other] >= dt.timedelta(minutes=1), end


def test_trust_anchors_bundle_is_root_and_new_root_only(openssl, fixture_set):
    got = certs_in_pem(fixture_set.file("trust-anchors").read_text())
    want = [cert_der(fixture_set.file(n)) for n in ("root-ca", "rollover-new-with-new")]
    assert sorted(got) == sorted(want)
    assert cert_der(fixture_set.file("unknown-root-ca")) not in got


# ---------------------------------------------------------------------------------------------
# Sample configuration
# ---------------------------------------------------------------------------------------------


def read_properties(path):
    props = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        key, _, value = re.split(r"\s*([=:])\s*", line, maxsplit=1)
        props[key] = value
    return props


def test_est_properties_use_the_product_keys(fixture_set):
    props = read_properties(fixture_set.file("est-properties"))
    for key in ("allowRenewalWithOldCertificates", "enroll.use-authentication-cert", "enroll.mandatorypassword",
                "enroll.check-subject-values"):
        assert key in props, f"est.properties lacks {key}"
        assert props[key] in ("true", "false"), f"{key} = {props[key]!r}"
    tokens = {k: v for k, v in props.items() if re.fullmatch(r"handler\.\d+\.idm\.tls\.token", k)}
    assert tokens, "no handler.<n>.idm.tls.token"
    for key, token in tokens.items():
        assert fixture_set.path(token).is_file(), f"{key} = {token} does not exist in the fixture set"
        password_key = key.replace(".token", ".password")
        assert props.get(password_key) == TOKEN_PASSWORD, password_key


def test_coap_properties_name_the_dtls_token_with_server_auth(openssl, fixture_set):
    props = read_properties(fixture_set.file("coap-properties"))
    assert "tlsToken" in props
    token = fixture_set.path(props["tlsToken"])
    assert token.is_file(), props["tlsToken"]
    assert props.get("tlsToken.password") == TOKEN_PASSWORD
    certs = openssl.ok("pkcs12", "-in", token, "-passin", f"pass:{props['tlsToken.password']}", "-nokeys", "-clcerts")
    eku = openssl.ok("x509", "-noout", "-ext", "extendedKeyUsage", input=certs)
    assert "TLS Web Server Authentication" in eku, "tlsToken must be the DTLS certificate with serverAuth"
