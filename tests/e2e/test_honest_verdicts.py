"""Honest verdicts: `estlab run` says what it did not judge and why, refuses a target file it does not
understand, stops before any scenario when the target cannot be reached or trusted, replays a run
from its seed, turns known deviations into xfail (and stale ones into xpass) with a baseline, and
under --strict counts a SHOULD-level deviation as a failure.

The target is a separately started `estlab gateway --lab DIR` (one per module, on a private copy of
the session's fixture set); runs against the embedded lab use its gateway faults. What is expected
is derived from the target file each test writes and from the reports' own documents, never from
estlab's listing of itself. Each test takes a few seconds at most.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from conftest import Estlab, FixtureSet, Ran, run
from gateway_support import Gateway, RunOut, target_identities, target_lab_facts

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
RUN_TIMEOUT_S = 30  # one `estlab run` takes about a second
ALL_FEATURES = ["serverkeygen", "fullcmc", "csrattrs", "basic-auth", "labels", "rollover", "tls1.2", "tls1.3"]
PROGRESS = re.compile(r"^\[\s*\d+/\d+\]")

BASELINE_FAULT = "skip-eku-check"  # breaks one MUST row (PG-ENR-2), in one scenario
BASELINE_SCENARIO = ("pg-enr-2-client-auth-eku-required", "protocol-gateway")
BASELINE_KEYWORD = "pg-enr or cacerts"  # the baseline scenario among others the fault leaves passing
# A fault whose scenarios only warn (a SHOULD row of RFC 7030 4.1.3: the rollover certificates).
WARN_FAULT, WARN_KEYWORD = "cacerts-without-rollover", "cacerts-rollover"


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def estlab_run(estlab: Estlab, *args) -> Ran:
    return run([estlab.binary, "run", *args], timeout=RUN_TIMEOUT_S)


def run_into(estlab: Estlab, out: Path, *args) -> RunOut:
    return RunOut(estlab_run(estlab, "--out", out, *args), out)


def case_property(case: ET.Element, name: str) -> str:
    values = [p.get("value") for p in case.iter("property") if p.get("name") == name]
    assert len(values) == 1, f"{name}: {values}"
    return values[0]


def free_port() -> int:
    """A TCP port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def target_doc(lab: FixtureSet, port: int, *, features=ALL_FEATURES, identities=None, anchors: Path | None = None) -> dict:
    return {
        "name": "estlab gateway under test",
        "profile": "protocol-gateway",
        "base_url": f"https://127.0.0.1:{port}",
        "server_name": "localhost",
        "trust_anchors": str(anchors or lab.path("trust/anchors.pem")),
        "features": list(features),
        "identities": target_identities(lab) if identities is None else identities,
        **target_lab_facts(lab),
    }


def write_yaml(path: Path, doc: dict) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def listing(ran: Ran) -> dict[tuple[str, str], str]:
    """`--target F --list`: (id, profile) -> "runs" or the skip reason."""
    assert ran.rc == EXIT_OK, str(ran)
    lines = ran.out.splitlines()
    assert re.fullmatch(r"\d+ scenario run\(s\), \d+ would skip", lines[-1]), ran.out
    out = {}
    for line in lines[:-1]:
        m = re.fullmatch(r"(\S+)\s+(\S+)\s+(runs(?: \(alone: it uses controls\))?|PARTLY: .+|SKIP: .+)", line)
        assert m, f"unexpected --list line {line!r}"
        out[(m.group(1), m.group(2))] = m.group(3)
    total, would_skip = map(int, re.findall(r"\d+", lines[-1]))
    assert total == len(out) and would_skip == sum(1 for v in out.values() if v.startswith("SKIP")), ran.out
    return out


@pytest.fixture(scope="module")
def gateway_lab(fixture_set, tmp_path_factory) -> FixtureSet:
    """A private copy of the session's fixture set (the gateway writes to its CA store)."""
    directory = tmp_path_factory.mktemp("honest") / "lab"
    shutil.copytree(fixture_set.dir, directory)
    return FixtureSet(directory)


@pytest.fixture(scope="module")
def gateway(estlab, gateway_lab, tmp_path_factory):
    gw = Gateway(estlab.binary, gateway_lab, tmp_path_factory.mktemp("honest-gw"), profile="protocol-gateway",
                 args=("--quiet",)).start()
    yield gw
    rc = gw.stop()
    assert rc == 0, f"estlab gateway must exit 0 on SIGTERM, got {rc}\n{gw.stderr()[-3000:]}"


# ---------------------------------------------------------------------------------------------
# 1. A target file estlab does not understand is refused, naming the closest known name
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind,wrong,right", [
    ("role", "device-factroy", "device-factory"),
    ("feature", "serverkeygn", "serverkeygen"),
    ("control", "revok", "revoke"),
    ("key", "featurs", "features"),
    ("credential", "preregistred", "preregistered"),
], ids=["role", "feature", "control", "top-level-key", "credential"])
def test_misspelled_name_exits_2_with_did_you_mean(estlab, gateway_lab, gateway, tmp_path, kind, wrong, right):
    good = target_doc(gateway_lab, gateway.port)
    # The unbroken file loads and lists.
    listed = estlab_run(estlab, "--target", write_yaml(tmp_path / "good.yaml", good), "--list")
    assert listed.rc == EXIT_OK, str(listed)

    bad = dict(good)
    if kind == "role":
        identities = dict(bad["identities"])
        identities[wrong] = identities.pop(right)
        bad["identities"] = identities
    elif kind == "feature":
        bad["features"] = [wrong if f == right else f for f in bad["features"]]
        assert wrong in bad["features"]
    elif kind == "control":
        bad["controls"] = {wrong: "true"}
    elif kind == "key":
        bad = {(wrong if k == right else k): v for k, v in bad.items()}
    elif kind == "credential":
        bad["credentials"] = {wrong: bad["credentials"][right]}
    path = write_yaml(tmp_path / "bad.yaml", bad)
    text = path.read_text()
    # The line that names it: a key (`wrong:`) or a list item (`- wrong`).
    line = next(n for n, l in enumerate(text.splitlines(), 1) if re.match(rf"\s*(- )?{re.escape(wrong)}\s*(:|$)", l))

    r = run_into(estlab, tmp_path / "out", "--target", path)
    assert r.ran.rc == EXIT_USAGE, str(r.ran)
    assert f"{path}:{line}:" in r.ran.err, f"stderr must name {path}:{line}\n{r.ran}"
    assert f"'{wrong}'" in r.ran.err and f"did you mean '{right}'" in r.ran.err, str(r.ran)
    assert not (tmp_path / "out" / "results.json").exists(), "nothing may run on a file estlab does not understand"
    # --list refuses it the same way: it is the loading that fails, not the run.
    listed = estlab_run(estlab, "--target", path, "--list")
    assert listed.rc == EXIT_USAGE and f"did you mean '{right}'" in listed.err, str(listed)


# ---------------------------------------------------------------------------------------------
# 2. Pre-flight: an unreachable or untrusted target stops the run before any scenario
# ---------------------------------------------------------------------------------------------


def assert_preflight_refusal(r: RunOut, needles: tuple[str, ...]):
    assert r.ran.rc == EXIT_USAGE, str(r.ran)
    lines = [line for line in r.ran.err.splitlines() if line.strip()]
    preflight = [line for line in lines if "pre-flight" in line]
    assert len(preflight) == 1, f"exactly one pre-flight error, got:\n{r.ran.err}"
    assert all(needle in preflight[0].lower() for needle in needles), f"{needles} not in {preflight[0]!r}"
    assert len(lines) <= 2, f"one error (and at most a hint), not a failure per scenario:\n{r.ran.err}"
    assert not any(PROGRESS.match(line) for line in r.ran.out.splitlines()), f"no scenario may run\n{r.ran}"
    assert not (r.out / "results.json").exists(), "no results: nothing was judged"


def test_unreachable_target_is_one_preflight_error(estlab, gateway_lab, tmp_path):
    port = free_port()
    path = write_yaml(tmp_path / "t.yaml", target_doc(gateway_lab, port))
    r = run_into(estlab, tmp_path / "out", "--target", path)
    assert_preflight_refusal(r, ("connect", f"127.0.0.1:{port}"))


def test_unreachable_coaps_endpoint_is_one_preflight_error(estlab, gateway_lab, gateway, tmp_path):
    """HTTPS answers but nothing serves EST-coaps on coaps_port: one DTLS pre-flight error, exit 2."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        udp_port = s.getsockname()[1]
    doc = target_doc(gateway_lab, gateway.port)
    doc["coaps_port"] = udp_port
    path = write_yaml(tmp_path / "t.yaml", doc)
    r = run_into(estlab, tmp_path / "out", "--target", path, "--transport", "coaps", "--step-timeout", "2")
    assert_preflight_refusal(r, ("dtls handshake", f"127.0.0.1:{udp_port}"))


def test_wrong_trust_anchor_is_one_preflight_error(estlab, gateway_lab, gateway, key_type_sets, tmp_path):
    other = key_type_sets.get("ec-p256")  # another fixture set: another root
    assert other.path("trust/anchors.pem").read_text() != gateway_lab.path("trust/anchors.pem").read_text()
    path = write_yaml(tmp_path / "t.yaml", target_doc(gateway_lab, gateway.port, anchors=other.path("trust/anchors.pem")))
    r = run_into(estlab, tmp_path / "out", "--target", path)
    assert_preflight_refusal(r, ("handshake",))
    assert re.search(r"verif|trust", r.ran.err, re.I), f"the error must say the certificate is not trusted\n{r.ran}"
    # The same file with the right anchors runs (so it was the trust anchor, nothing else).
    fixed = write_yaml(tmp_path / "fixed.yaml", target_doc(gateway_lab, gateway.port))
    ok = run_into(estlab, tmp_path / "out-ok", "--target", fixed, "-k", "cacerts-anonymous")
    assert ok.ran.rc == EXIT_OK and ok.verdicts() == {("cacerts-anonymous", "protocol-gateway"): "pass"}, str(ok.ran)


# ---------------------------------------------------------------------------------------------
# 3. What is not judged is said: --list with a target, the skip summary, --max-skips
# ---------------------------------------------------------------------------------------------


def test_list_says_which_scenarios_skip_and_why(estlab, gateway_lab, gateway, tmp_path):
    without = [f for f in ALL_FEATURES if f != "serverkeygen"]
    path = write_yaml(tmp_path / "t.yaml", target_doc(gateway_lab, gateway.port, features=without))
    listed = listing(estlab_run(estlab, "--target", path, "--list"))
    assert set(p for _, p in listed) == {"protocol-gateway"}
    entry = listed[("serverkeygen-key-and-certificate", "protocol-gateway")]
    assert entry.startswith("SKIP") and "feature 'serverkeygen'" in entry, entry
    assert listed[("cacerts-anonymous", "protocol-gateway")] == "runs"
    # --list connects to nothing and writes nothing.
    assert not (tmp_path / "estlab-out").exists()

    # With serverkeygen declared, the same scenario runs.
    full = write_yaml(tmp_path / "full.yaml", target_doc(gateway_lab, gateway.port))
    assert listing(estlab_run(estlab, "--target", full, "--list"))[
        ("serverkeygen-key-and-certificate", "protocol-gateway")] == "runs"


@pytest.mark.parametrize("identities", ["all", "factory-only"])
def test_list_agrees_with_the_run(estlab, gateway_lab, gateway, tmp_path, identities):
    """Every run --list calls "runs" is judged, every one it calls SKIP is skipped, for the same reason."""
    ids = target_identities(gateway_lab)
    if identities == "factory-only":
        ids = {"device-factory": ids["device-factory"]}
    path = write_yaml(tmp_path / "t.yaml", target_doc(gateway_lab, gateway.port, features=["tls1.2", "tls1.3", "csrattrs"],
                                                     identities=ids))
    listed = listing(estlab_run(estlab, "--target", path, "--list"))
    r = run_into(estlab, tmp_path / "out", "--target", path)
    assert r.ran.rc == EXIT_OK, str(r.ran)
    ran = {(s["id"], s["profile"]): s for s in r.results["scenarios"]}
    assert set(ran) == set(listed)
    wrong = []
    for key, said in sorted(listed.items()):
        s = ran[key]
        partly = [step for step in s["steps"] if step["verdict"] == "skip"]
        if said.startswith("runs") and (s["verdict"] == "skip" or partly):
            wrong.append(f"{key[0]}: --list says it runs, the run skipped (some of) it: {s['message']}")
        elif said.startswith("PARTLY") and not partly:
            wrong.append(f"{key[0]}: --list says {said!r}, the run skipped no step")
        elif said.startswith("PARTLY") and any("no identity for role" not in step["message"] and "is missing because" not in step["message"]
                                               for step in partly):
            wrong.append(f"{key[0]}: --list says {said!r}, the run skipped steps for other reasons: {[p['message'] for p in partly]}")
        elif said.startswith("SKIP") and (s["verdict"] != "skip" or s["message"] not in said):
            wrong.append(f"{key[0]}: --list says {said!r}, the run gave {s['verdict']}: {s['message']}")
    assert not wrong, "\n".join(wrong)


def summary_lines(out: str) -> list[str]:
    """The console summary: the unindented lines after the last progress line."""
    lines = out.splitlines()
    last = max(i for i, line in enumerate(lines) if PROGRESS.match(line))
    return [line for line in lines[last + 1:] if line.strip() and not line[0].isspace()]


def test_max_skips_fails_a_run_that_skips_too_much(estlab, gateway_lab, gateway, tmp_path):
    lacking = ["tls1.2", "tls1.3"]  # no serverkeygen, fullcmc, csrattrs, basic-auth, labels, rollover
    path = write_yaml(tmp_path / "t.yaml", target_doc(gateway_lab, gateway.port, features=lacking))

    plain = run_into(estlab, tmp_path / "out", "--target", path)
    assert plain.ran.rc == EXIT_OK, f"skips alone do not fail a run\n{plain.ran}"
    res = plain.results
    skipped = res["counts"]["skip"]
    assert skipped > 0 and res["all_passed"] is True
    for feature in set(ALL_FEATURES) - set(lacking):
        assert any(f"feature '{feature}'" in s["message"] for s in res["scenarios"] if s["verdict"] == "skip"), feature
    assert res["skipped"]["runs"] == skipped + res["counts"]["partially_skipped"]
    # The summary leads with what was not judged.
    summary = summary_lines(plain.ran.out)
    assert summary[0].startswith(f"SKIPPED {res['skipped']['runs']} scenario runs"), "\n".join(summary)
    assert "feature 'serverkeygen'" in summary[0], summary[0]
    counts_line = next(i for i, line in enumerate(summary) if re.match(r"\d+ scenarios: ", line))
    assert counts_line > 0 and f"{skipped} skipped" in summary[counts_line], summary[counts_line]

    strict_skips = run_into(estlab, tmp_path / "out0", "--target", path, "--max-skips", "0")
    assert strict_skips.ran.rc == EXIT_FAILED, str(strict_skips.ran)
    assert "--max-skips" in strict_skips.ran.out and f"{skipped}" in strict_skips.ran.out, str(strict_skips.ran)
    assert strict_skips.verdicts() == plain.verdicts(), "--max-skips changes the exit code, not the verdicts"

    enough = run_into(estlab, tmp_path / "out-n", "--target", path, "--max-skips", str(skipped))
    assert enough.ran.rc == EXIT_OK, f"exactly N skips are allowed by --max-skips N\n{enough.ran}"


# ---------------------------------------------------------------------------------------------
# 4. --seed replays a run
# ---------------------------------------------------------------------------------------------


def uniques(r: RunOut) -> dict[tuple[str, str, int], str]:
    return {(s["id"], s["profile"], s["repetition"]): s["unique"] for s in r.results["scenarios"] if s["verdict"] != "skip"}


# Runs of a few scenarios (both profiles, several ids): three whole-suite runs took 30 s and told no more.
SEED_KEYWORD = "pg-enr"


def test_seed_is_reported_and_replays_the_run(estlab, tmp_path):
    first = run_into(estlab, tmp_path / "a", "--seed", "42", "-k", SEED_KEYWORD, "--skip-lab-check")
    second = run_into(estlab, tmp_path / "b", "--seed", "42", "-k", SEED_KEYWORD, "--skip-lab-check")
    other = run_into(estlab, tmp_path / "c", "--seed", "43", "-k", SEED_KEYWORD, "--skip-lab-check")
    for r in (first, second, other):
        assert r.ran.rc == EXIT_OK, str(r.ran)

    a, b, c = uniques(first), uniques(second), uniques(other)
    assert len(a) >= 5 and {profile for _, profile, _ in a} == {"rfc7030", "protocol-gateway"}, a
    assert all(re.fullmatch(r"[0-9a-z]{6,}", u) for u in a.values()), a
    assert a == b, "the same seed must give every scenario the same {{unique}}"
    assert set(c) == set(a)
    same = [key for key in a if a[key] == c[key]]
    assert not same, f"another seed must give other uniques: {same}"
    assert len(set(a.values())) == len(a), "uniques differ between scenario runs"

    for r, seed in ((first, "42"), (other, "43")):
        res = r.results
        assert str(res["seed"]) == seed and res["replay"] == f"--seed {seed}", res
        assert re.search(rf"^seed {seed} \(replay with --seed {seed}\)", r.ran.out, re.M), r.ran.out
        assert re.search(rf"^estlab run: \d+ scenario run\(s\) against .*, seed {seed}\b", r.ran.out, re.M), r.ran.out
        suites = list(r.junit.iter("testsuite"))
        assert suites
        for suite in suites:
            props = {p.get("name"): p.get("value") for p in suite.find("properties").iter("property")}
            assert props.get("seed") == seed and props.get("replay") == f"--seed {seed}", props
        html = (r.out / "report.html").read_text()
        assert re.search(rf'<span id="seed" data-seed="{seed}"[^>]*>seed {seed} ', html), "report.html must show the seed"


# ---------------------------------------------------------------------------------------------
# 5. Baselines: known failures become xfail, a known one that passes becomes xpass
# ---------------------------------------------------------------------------------------------


def test_baseline_turns_known_failures_into_xfail_and_stale_ones_into_xpass(estlab, tmp_path):
    baseline = tmp_path / "baseline.yaml"
    # The scenarios of the baseline's keyword: its own and its neighbours, which must stay as they are.
    recorded = run_into(estlab, tmp_path / "recorded", "--gateway-fault", BASELINE_FAULT, "--write-baseline", baseline,
                        "-k", BASELINE_KEYWORD, "--skip-lab-check")
    assert recorded.ran.rc == EXIT_FAILED, str(recorded.ran)
    failing = {key for key, v in recorded.verdicts().items() if v in ("fail", "error")}
    assert failing == {BASELINE_SCENARIO}, failing
    doc = yaml.safe_load(baseline.read_text())
    entries = [(e["scenario"], e["profile"]) for e in doc["entries"]]
    assert entries == [BASELINE_SCENARIO], doc
    assert doc["entries"][0]["verdict"] == "fail" and doc["entries"][0]["reason"], doc

    known = run_into(estlab, tmp_path / "known", "--gateway-fault", BASELINE_FAULT, "--baseline", baseline,
                     "-k", BASELINE_KEYWORD, "--skip-lab-check")
    assert known.ran.rc == EXIT_OK, f"a known failure must not fail the run\n{known.ran}"
    res = known.results
    assert res["baseline"] and Path(res["baseline"]).name == baseline.name
    assert res["all_passed"] is True and res["counts"]["xfail"] == 1 and res["counts"]["fail"] == 0
    s = known.scenario(*BASELINE_SCENARIO)
    assert s["verdict"] == "xfail" and s["baseline_reason"] == doc["entries"][0]["reason"], s
    # Everything else is as in the recorded run.
    others = {k: v for k, v in known.verdicts().items() if k != BASELINE_SCENARIO}
    assert len(others) >= 5, others
    assert others == {k: v for k, v in recorded.verdicts().items() if k != BASELINE_SCENARIO}
    case = known.junit_case(*BASELINE_SCENARIO)
    assert case_property(case, "verdict") == "xfail"
    skipped = case.find("skipped")
    assert skipped is not None and skipped.get("message", "").startswith("xfail:"), ET.tostring(case, encoding="unicode")[:800]
    assert case.find("failure") is None

    fixed = run_into(estlab, tmp_path / "fixed", "--baseline", baseline, "-k", BASELINE_KEYWORD, "--skip-lab-check")
    assert fixed.ran.rc == EXIT_OK, f"a stale baseline entry is reported, it does not fail the run\n{fixed.ran}"
    s = fixed.scenario(*BASELINE_SCENARIO)
    assert s["verdict"] == "xpass" and s["baseline_reason"], s
    assert fixed.results["counts"]["xpass"] == 1 and fixed.results["counts"]["xfail"] == 0
    assert "xpass" in fixed.ran.out and BASELINE_SCENARIO[0] in fixed.ran.out
    case = fixed.junit_case(*BASELINE_SCENARIO)
    assert case_property(case, "verdict") == "xpass"
    failure = case.find("failure")
    assert failure is not None and failure.get("type") == "xpass", ET.tostring(case, encoding="unicode")[:800]


def test_strict_counts_an_xpass_as_a_failure(estlab, tmp_path):
    baseline = tmp_path / "baseline.yaml"
    baseline.write_text(yaml.safe_dump({"entries": [{"scenario": BASELINE_SCENARIO[0], "profile": BASELINE_SCENARIO[1],
                                                     "verdict": "fail", "reason": "known to accept no-EKU devices"}]}))
    r = run_into(estlab, tmp_path / "out", "--baseline", baseline, "--strict", "-k", BASELINE_SCENARIO[0])
    assert r.verdicts() == {BASELINE_SCENARIO: "xpass"}, r.verdicts()
    assert r.results["strict"] is True and r.results["all_passed"] is False
    assert r.ran.rc == EXIT_FAILED, f"under --strict an xpass fails the run (the reports say FAILED)\n{r.ran}"


# ---------------------------------------------------------------------------------------------
# 6. --strict turns a warning into a failure
# ---------------------------------------------------------------------------------------------


def test_strict_turns_a_warning_into_a_failure(estlab, tmp_path):
    lenient = run_into(estlab, tmp_path / "lenient", "--gateway-fault", WARN_FAULT, "-k", WARN_KEYWORD, "--skip-lab-check")
    verdicts = lenient.verdicts()
    assert verdicts and set(verdicts.values()) == {"warn"}, \
        f"the premise: fault {WARN_FAULT} makes {WARN_KEYWORD} warn and nothing else\n{verdicts}"
    assert lenient.ran.rc == EXIT_OK, f"a warning alone does not fail a run\n{lenient.ran}"
    res = lenient.results
    assert res["strict"] is False and res["all_passed"] is True and res["counts"]["warn"] == len(verdicts)
    for s in res["scenarios"]:
        warned = [c for step in s["steps"] for c in step["checks"] if c["verdict"] == "warn"]
        assert warned and all(c["level"] == "SHOULD" for c in warned), (s["id"], warned)
        case = lenient.junit_case(s["id"], s["profile"])
        assert case_property(case, "verdict") == "warn"
        assert case.find("failure") is None and case.find("error") is None

    strict = run_into(estlab, tmp_path / "strict", "--gateway-fault", WARN_FAULT, "-k", WARN_KEYWORD, "--strict",
                      "--skip-lab-check")
    assert strict.ran.rc == EXIT_FAILED, f"--strict: a warning fails the run\n{strict.ran}"
    res = strict.results
    assert res["strict"] is True and res["all_passed"] is False
    assert set(strict.verdicts()) == set(verdicts)
    for s in res["scenarios"]:
        assert s["verdict"] in ("warn", "fail"), s
        assert strict.junit_case(s["id"], s["profile"]).find("failure") is not None, \
            "under --strict the warning is a JUnit failure"

    # Without the fault the same selection passes under --strict: it is the fault that fails.
    clean = run_into(estlab, tmp_path / "clean", "-k", WARN_KEYWORD, "--strict", "--skip-lab-check")
    assert clean.ran.rc == EXIT_OK and set(clean.verdicts().values()) == {"pass"}, str(clean.ran)
