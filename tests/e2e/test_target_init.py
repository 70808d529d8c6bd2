"""`estlab target init` writes a commented target file that loads once base_url and trust_anchors
are filled in, and whose commented settings load too when uncommented; `estlab target check`
loads one and names what it understood."""

from __future__ import annotations

import re

import pytest
import yaml

# Keys the generated file documents; the engine's loader learns the last three soon.
KEYS = ["name", "profile", "base_url", "coaps_port", "server_name", "label", "trust_anchors", "key_type", "subject_template",
        "credentials", "ca_labels", "features", "identities", "controls", "readings"]
NEWER_KEYS = {"subject_template", "credentials", "ca_labels"}
FEATURES = ["serverkeygen", "fullcmc", "csrattrs", "basic-auth", "labels", "rollover", "tls1.2", "tls1.3", "manual-approval"]
CONTROLS = ["revoke", "publish-crl", "approve", "reject", "restart"]


def uncomment(text: str, skip_keys=()) -> str:
    """Deletes the '#' of every commented setting ('#key:' and its '#  nested' lines), except skip_keys."""
    out, key = [], None
    for line in text.splitlines():
        m = re.match(r"^#(\w[\w.-]*):", line)
        if m:
            key = m.group(1)
        if (m or line.startswith("#  ")) and key not in skip_keys:
            line = line[1:]
        out.append(line)
    return "\n".join(out) + "\n"


def fill_required(text: str, anchors) -> str:
    text = text.replace("base_url: https://est.example:8443", "base_url: https://127.0.0.1:9")
    return text.replace("trust_anchors: anchors.pem", f"trust_anchors: {anchors}")


@pytest.mark.parametrize("profile", ["rfc7030", "protocol-gateway"])
def test_init_names_every_key_feature_role_and_control(estlab, fixture_set, profile):
    r = estlab("target", "init", "--profile", profile)
    assert r.rc == 0, str(r)
    text = r.out
    for key in KEYS:
        assert re.search(rf"^#?{re.escape(key)}:", text, re.M), f"key {key} missing\n{text}"
    for feature in FEATURES:
        assert re.search(rf"^#  - {re.escape(feature)}\b", text, re.M), f"feature {feature} missing"
    for control in CONTROLS:
        assert re.search(rf"^#  {re.escape(control)}: ", text, re.M), f"control {control} missing"
    assert "{serial} {reason}" in text and "{request}" in text and "{ca}" in text
    assert '"C=SE,O=estlab lab devices,CN={{cn}}"' in text
    for item in fixture_set.items:
        if item.get("role") in ("device", "ra") and item.get("key"):
            assert re.search(rf"^#  {re.escape(item['name'])}: ", text, re.M), f"role {item['name']} missing"
    assert f"profile: {profile}\n" in text
    doc = yaml.safe_load(text)
    assert set(doc) == {"name", "profile", "base_url", "trust_anchors"}, doc  # everything else commented out


def test_generated_file_loads_once_filled_in(estlab, fixture_set, tmp_path):
    out = tmp_path / "target.yaml"
    r = estlab("target", "init", "--profile", "protocol-gateway", "--out", out)
    assert r.rc == 0, str(r)
    r = estlab("target", "check", out)
    assert r.rc == 2 and "target.yaml:" in r.err, str(r)  # anchors.pem does not exist yet
    out.write_text(fill_required(out.read_text(), fixture_set.file("trust-anchors")))
    r = estlab("target", "check", out)
    assert r.rc == 0, str(r)
    assert "profile protocol-gateway, https://127.0.0.1:9" in r.out, str(r)
    assert "features: (none)" in r.out and "warning" not in r.out, str(r)


def test_uncommented_settings_load(estlab, fixture_set, tmp_path):
    text = fill_required(estlab("target", "init").out, fixture_set.file("trust-anchors"))
    # Point every role at the fixture set's identity of the same name.
    for item in fixture_set.items:
        if item.get("chain") and item.get("key"):
            text = text.replace(f"{{certificate: {item['name']}-chain.pem, key: {item['name']}.key}}",
                                f"{{certificate: {fixture_set.path(item['chain'])}, key: {fixture_set.path(item['key'])}}}")
    # The loader on this branch does not know the newer keys yet; uncomment them too once it does.
    target = tmp_path / "full.yaml"
    target.write_text(uncomment(text, skip_keys=NEWER_KEYS))
    r = estlab("target", "check", target)
    assert r.rc == 0, f"{r}\n{target.read_text()}"
    assert "warning" not in r.out, str(r)
    for feature in FEATURES + ["coaps"]:
        assert f" {feature}" in r.out.split("features:")[1].splitlines()[0], str(r)
    for control in CONTROLS:
        assert f" {control}" in r.out.split("controls:")[1].splitlines()[0], str(r)
    assert "device-factory" in r.out and "ra-officer" in r.out, str(r)


def test_check_says_did_you_mean(estlab, fixture_set, tmp_path):
    target = tmp_path / "typo.yaml"
    target.write_text(f"profile: rfc7030\nbase_url: https://127.0.0.1:9\ntrust_anchors: {fixture_set.file('trust-anchors')}\n"
                      "features: [tls13, serverkeygen]\n")
    r = estlab("target", "check", target)
    # A misspelled name is a configuration error (exit 2) naming file:line, never a silent skip later.
    assert r.rc == 2, str(r)
    assert f"{target}:4: unknown feature 'tls13' (did you mean 'tls1.3'?)" in r.err, str(r)


def test_init_refuses_to_overwrite_and_bad_profile(estlab, tmp_path):
    out = tmp_path / "t.yaml"
    out.write_text("mine\n")
    r = estlab("target", "init", "--out", out)
    assert r.rc == 2 and "exists" in r.err, str(r)
    assert out.read_text() == "mine\n"
    assert estlab("target", "init", "--out", out, "--force").rc == 0
    r = estlab("target", "init", "--profile", "est")
    assert r.rc == 2 and "rfc7030 or protocol-gateway" in r.err, str(r)
    r = estlab("target", "init", "--help")
    assert r.rc == 0 and "--profile" in r.out, str(r)
