"""The suite against labs that are not its own: a guard against a conformance suite that only works
against the lab it was written with.

Each variation is a fixture set (`estlab fixtures` with other names, chain depth, subject style, key
types and preregistered credentials) and a gateway configuration (TLS versions, serverkeygen,
fullcmc, CA labels) that differ from the default lab in what a vendor may choose. The reference
gateway is started on that lab like a vendor's product (`estlab gateway --lab DIR`, ephemeral port),
a target file describes it the way a vendor would (only the features it offers), and
`estlab run --target FILE` must give no fail and no error verdict: what the variation lacks must be
skipped (or warned about) with a message that names it.

ESTLAB_VARIATION_SEED=N adds one more variation: a random combination drawn from seed N (for long
runs; the seed is in the test id so a failure can be rerun).
"""

from __future__ import annotations

import json
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from conftest import REPO_ROOT, Estlab, FixtureSet, run, scenario_variants
from gateway_support import Gateway

SCENARIO_DIR = REPO_ROOT / "conformance" / "scenarios"
RUN_TIMEOUT_S = 60
ALL_FEATURES = ["serverkeygen", "fullcmc", "csrattrs", "basic-auth", "labels", "rollover", "tls1.2", "tls1.3"]
KEY_TYPES = ["ec-p256", "ec-p384", "rsa2048", "rsa3072", "ed25519"]  # rsa4096 is too slow for a quick run


@dataclass
class Variation:
    """What differs from the default lab: `estlab fixtures` options and est.properties keys."""

    name: str
    chain_depth: int = 2
    ca_name_prefix: str = "estlab"
    organization: str = "estlab lab"
    subject_style: str = "lab"  # lab, cn-only, cn-first
    key_type: str = "ec-p256"
    ca_key_type: str | None = None
    prereg: tuple[str, str, str] = ("device-0001", "device-0001", "prereg-secret-0001")  # cn, user, password
    tls12_only: bool = False
    tls13_only: bool = False  # RFC 8996 deprecates 1.0 and 1.1 only: a 1.3-only server violates nothing
    serverkeygen: bool = True
    fullcmc: bool = True
    labels: bool = True

    def fixtures_args(self) -> list[str]:
        cn, user, password = self.prereg
        args = ["--chain-depth", str(self.chain_depth), "--ca-name-prefix", self.ca_name_prefix,
                "--organization", self.organization, "--subject-style", self.subject_style, "--key-type", self.key_type,
                "--prereg-cn", cn, "--prereg-user", user, "--prereg-password", password]
        if self.ca_key_type:
            args += ["--ca-key-type", self.ca_key_type]
        return args

    def properties(self) -> dict[str, str]:
        """est.properties keys the variation sets (a vendor's administrator would set these)."""
        props = {"estlab.serverkeygen.enabled": str(self.serverkeygen).lower(),
                 "estlab.fullcmc.enabled": str(self.fullcmc).lower(),
                 "estlab.ca.labels.enabled": str(self.labels).lower()}
        if self.tls12_only:
            props["estlab.tls.max-version"] = "1.2"
        if self.tls13_only:
            props["estlab.tls.min-version"] = "1.3"
        return props

    @property
    def features(self) -> list[str]:
        lacking = set()
        if self.tls12_only:
            lacking.add("tls1.3")
        if self.tls13_only:
            lacking.add("tls1.2")
        if not self.serverkeygen:
            lacking.add("serverkeygen")
        if not self.fullcmc:
            lacking.add("fullcmc")
        if not self.labels:
            lacking |= {"labels", "rollover"}  # the rollover CA is only reachable under its label
        return [f for f in ALL_FEATURES if f not in lacking]

    @property
    def issuing_label(self) -> str:
        return "root" if self.chain_depth == 1 else "issuing"

    def subject(self, cn: str) -> str:
        """A device DN in the variation's style (what the fixture generator writes, encoded order)."""
        org = f"{self.organization} devices"
        return {"lab": f"C=SE,O={org},CN={cn}", "cn-only": f"CN={cn}",
                "cn-first": f"CN={cn},OU={org},L=Uppsala,C=SE"}[self.subject_style]


VARIATIONS = [
    # CA names without "estlab", a three-tier chain, CN-first subjects with OU and L, other credentials.
    Variation("three-tier-cn-first", chain_depth=3, ca_name_prefix="Fabrikam", organization="Fabrikam Industrial",
              subject_style="cn-first", prereg=("meter-4711", "enrol-meter4711", "Wq7-zz.Pk!2")),
    # The root issues devices directly; CN-only subjects; TLS 1.2 only.
    Variation("one-tier-cn-only-tls12", chain_depth=1, ca_name_prefix="Northwind", organization="Northwind Grid",
              subject_style="cn-only", prereg=("sensor-a1", "sensor-a1-user", "s3nsor-pass"), tls12_only=True),
    # An RSA-3072 CA with P-384 devices; serverkeygen and fullcmc off.
    Variation("rsa3072-ca-p384-devices", ca_name_prefix="Contoso", organization="Contoso Ltd", key_type="ec-p384",
              ca_key_type="rsa3072", prereg=("plc-0815", "plc0815", "plc-secret-0815"), serverkeygen=False,
              fullcmc=False),
    # Ed25519 devices under a P-256 CA; no CA labels.
    Variation("ed25519-devices-no-labels", ca_name_prefix="Tailspin", organization="Tailspin Toys", key_type="ed25519",
              ca_key_type="ec-p256", subject_style="cn-only", prereg=("gw-77", "gateway77", "gw77-Secret"), labels=False),
    # TLS 1.3 only (no tls-unique: linking scenarios skip, tls-exporter ones run); RSA-2048 devices.
    Variation("tls13-only-rsa2048-devices", ca_name_prefix="Woodgrove", organization="Woodgrove Utilities", key_type="rsa2048",
              subject_style="cn-first", prereg=("relay-9", "relay9", "r3lay-9-pass"), tls13_only=True),
]


def random_variation(seed: int) -> Variation:
    rng = random.Random(seed)
    key_type = rng.choice(KEY_TYPES)
    return Variation(
        f"seed-{seed}", chain_depth=rng.choice([1, 2, 3]), ca_name_prefix=rng.choice(["Adatum", "Litware", "Proseware"]),
        organization=rng.choice(["Adatum Energy", "Litware Rail", "Proseware Water"]),
        subject_style=rng.choice(["lab", "cn-only", "cn-first"]), key_type=key_type,
        ca_key_type=rng.choice([None, *[k for k in KEY_TYPES if k != "ed25519"]]),
        prereg=(f"node-{rng.randrange(10000):04d}", f"user{rng.randrange(1000)}", f"pw-{rng.randrange(10**6)}"),
        **dict(zip(("tls12_only", "tls13_only"), rng.choice([(False, False), (True, False), (False, True)]))),
        serverkeygen=rng.random() < 0.5, fullcmc=rng.random() < 0.5,
        labels=rng.random() < 0.5)


def variations() -> list:
    params = [pytest.param(v, id=v.name) for v in VARIATIONS]
    seed = os.environ.get("ESTLAB_VARIATION_SEED")
    if seed:
        assert seed.isdigit(), f"ESTLAB_VARIATION_SEED must be a number, not {seed!r}"
        params.append(pytest.param(random_variation(int(seed)), id=f"seed-{seed}"))
    return params


# ---------------------------------------------------------------------------------------------
# The lab, the gateway and the target file
# ---------------------------------------------------------------------------------------------


def set_properties(path: Path, values: dict[str, str]) -> None:
    """Sets keys in a .properties file: replaces the line of a key that is there, appends the others."""
    lines = path.read_text().splitlines()
    left = dict(values)
    for i, line in enumerate(lines):
        key = re.split(r"\s*[=:]\s*|\s+", line.strip(), maxsplit=1)[0]
        if key in left and not line.lstrip().startswith(("#", "!")):
            lines[i] = f"{key} = {left.pop(key)}"
    lines += [f"{key} = {value}" for key, value in left.items()]
    path.write_text("\n".join(lines) + "\n")


def write_target(path: Path, v: Variation, lab: FixtureSet, estlab: Estlab, port: int) -> dict:
    identities = {item["name"]: {"certificate": str(lab.path(item["chain"])), "key": str(lab.path(item["key"]))}
                  for item in lab.items if item.get("key") and item.get("chain") and item.get("role") in ("device", "ra")}
    cn, user, password = v.prereg
    store = lab.path(lab.manifest["store"])
    target = {
        "name": f"variation {v.name}",
        "profile": "protocol-gateway",
        "base_url": f"https://127.0.0.1:{port}",
        "server_name": "localhost",
        "trust_anchors": str(lab.path("trust/anchors.pem")),
        "key_type": v.key_type,
        "subject_template": v.subject("{{cn}}"),
        "credentials": {"preregistered": {"user": user, "password": password, "subject": v.subject(cn)}},
        "features": v.features,
        "identities": identities,
        # The vendor's own CA tools behind the hooks: the CA that issues devices is the variation's.
        "controls": {
            "revoke": f"{estlab.binary} ca --store {store} revoke --serial {{serial}} --reason {{reason}}",
            "publish-crl": f"{estlab.binary} ca --store {store} crl --ca {v.issuing_label} --out {path.parent / 'crl.pem'}",
        },
    }
    if v.labels:
        target["ca_labels"] = {"other": "twin-a", "rollover": "rollover"}
    path.write_text(yaml.safe_dump(target, sort_keys=False))
    return target


def load_scenario_needs() -> dict[str, dict]:
    """id -> what the scenario file needs (features, controls, roles) and its profiles, read without estlab."""
    out = {}
    for path in sorted(SCENARIO_DIR.rglob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        needs = doc.get("needs") or {}
        # A control a step uses is a need too; a needed gateway configuration skips a target file
        # (its skip message says "(needs.config)").
        controls = set(needs.get("controls") or [])
        for step in doc["steps"]:
            if "control" in step:
                controls.add(step["control"] if isinstance(step["control"], str) else next(iter(step["control"])))
        for scenario_id, _ in scenario_variants(doc):
            out[scenario_id] = {"file": path, "profiles": list(doc.get("profiles") or ["rfc7030", "protocol-gateway"]),
                                "features": list(needs.get("features") or []), "controls": sorted(controls),
                                "roles": list(needs.get("roles") or []),
                                "config": ["(needs.config)"] if needs.get("config") else []}
    assert out, f"no scenario files under {SCENARIO_DIR}"
    return out


def check_lab_is_different(v: Variation, lab: FixtureSet) -> None:
    """The generator did vary what the variation asks for, so a pass below means something."""
    cas = [i for i in lab.items if i["role"] in ("trust-anchor", "ca", "rollover") and i.get("subject")]
    assert cas and not [i["subject"] for i in cas if "estlab" in i["subject"].lower()], "a CA name still says estlab"
    factory = lab.item("device-factory")
    assert factory["subject"] == v.subject(v.prereg[0]), factory
    chain = lab.path(factory["chain"]).read_text().count("BEGIN CERTIFICATE")
    assert chain == v.chain_depth, f"device-factory presents {chain} certificates, expected leaf + {v.chain_depth - 1} CAs"
    assert lab.manifest["key_type"] == v.key_type


# ---------------------------------------------------------------------------------------------
# The test
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variation", variations())
def test_suite_passes_against_a_lab_that_is_not_its_own(estlab, tmp_path, variation: Variation):
    v = variation
    lab = estlab.generate(tmp_path / "lab", *v.fixtures_args())
    check_lab_is_different(v, lab)
    set_properties(lab.file("est-properties"), v.properties())

    gateway = Gateway(estlab.binary, lab, tmp_path / "gw", args=("--quiet",)).start()
    try:
        target = write_target(tmp_path / "target.yaml", v, lab, estlab, gateway.port)
        ran = run([estlab.binary, "run", "--target", tmp_path / "target.yaml", "--out", tmp_path / "out"],
                  timeout=RUN_TIMEOUT_S)
        assert gateway.alive(), f"the gateway died during the run\n{gateway.stderr()[-3000:]}"
    finally:
        rc = gateway.stop()
    assert rc == 0, f"estlab gateway must exit 0 on SIGTERM, got {rc}\n{gateway.stderr()[-3000:]}"
    results_file = tmp_path / "out" / "results.json"
    assert results_file.is_file(), f"no results.json\n{ran}"
    results = json.loads(results_file.read_text())
    scenarios = results["scenarios"]
    assert scenarios, f"the run reported no scenarios\n{ran}"

    broken = [f"{s['id']} ({s['profile']}): {s['verdict']}: {s.get('message', '')}"
              for s in scenarios if s["verdict"] in ("fail", "error")]
    assert not broken, f"variation {v.name}: {len(broken)} scenarios fail or err\n" + "\n".join(broken)
    assert ran.rc == 0, str(ran)

    # What the variation lacks is skipped or warned about, by name.
    needs = load_scenario_needs()
    offered_roles = set(target["identities"])
    for s in scenarios:
        need = needs.get(s["id"])
        assert need, f"{s['id']} is reported but no scenario file has that id"
        missing = ([f for f in need["features"] if f not in target["features"]]
                   + [c for c in need["controls"] if c not in target["controls"]]
                   + [r for r in need["roles"] if r not in offered_roles] + need["config"])
        if not missing:
            continue
        assert s["verdict"] in ("skip", "warn"), f"{s['id']} needs {missing}, which {v.name} lacks, yet: {s}"
        assert any(m in s.get("message", "") for m in missing), \
            f"{s['id']} is {s['verdict']} with a message that names none of {missing}: {s.get('message')!r}"
