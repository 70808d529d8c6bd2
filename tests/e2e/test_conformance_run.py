"""`estlab run` and `estlab replay` end to end: the conformance engine against the embedded lab and
against a separately started `estlab gateway` (target mode), its reports judged by independent
readers (xmllint against the JUnit XSD Jenkins reads, headless Chromium for the HTML report, Python's
json and ElementTree), its selection options and exit codes, and replay turning a recorded refusal
into a scenario that reproduces it.

What the verdicts must be is taken from the scenario files themselves (conformance/scenarios/),
never from estlab's own listing, so a run that drops, duplicates or invents scenarios is caught.
Every subprocess runs with a timeout (conftest.run); gateways stop on SIGTERM with exit 0.
"""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from conftest import REPO_ROOT, Estlab, FixtureSet, Ran, headless_chromium, run, scenario_variants
from gateway_support import (PKCS10, Gateway, RunOut, device_subject, make_csr, openssl_ok, target_identities,
                             target_lab_facts)

SCENARIO_DIR = REPO_ROOT / "conformance" / "scenarios"
PROFILES = ("rfc7030", "protocol-gateway")
JUNIT_XSD = Path("/work/shared/junit/junit.xsd")
EXIT_FAILED, EXIT_USAGE = 1, 2
RUN_TIMEOUT_S = 60  # one whole `estlab run` (it takes about a second on the embedded lab)

FAULT = "skip-eku-check"  # breaks PG-ENR-2 and nothing else
FAULT_SCENARIO = "pg-enr-2-client-auth-eku-required"
TARGET_FEATURES = ["serverkeygen", "fullcmc", "csrattrs", "basic-auth", "labels", "rollover", "tls1.2", "tls1.3"]
ENROLL_PATH = "/.well-known/est/simpleenroll"
# What the embedded lab offers (its est.properties enables serverkeygen; one of its gateways does
# manual approval, the product one has the CoAP proxy).
EMBEDDED_FEATURES = {"serverkeygen", "fullcmc", "csrattrs", "basic-auth", "labels", "rollover", "tls1.2", "tls1.3",
                     "manual-approval", "coaps"}
VERDICTS = ("pass", "info", "warn", "skip", "xfail", "xpass", "fail", "error")


# ---------------------------------------------------------------------------------------------
# The scenario files, read independently of estlab
# ---------------------------------------------------------------------------------------------


def load_scenario_files(directory: Path = SCENARIO_DIR) -> dict[str, dict]:
    """id -> {file, title, requirements, profiles, features, controls} of every scenario file."""
    out = {}
    for path in sorted(directory.rglob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        needs = doc.get("needs") or {}
        for variant_id, variant_title in scenario_variants(doc):
            assert variant_id not in out, f"{path}: id {variant_id} is also in {out.get(variant_id, {}).get('file')}"
            out[variant_id] = scenario_facts(path, doc, needs, variant_title)
    assert out, f"no scenario files under {directory}"
    return out


def step_control(step: dict) -> str:
    control = step["control"]
    return control if isinstance(control, str) else next(iter(control))


def scenario_facts(path: Path, doc: dict, needs: dict, title: str) -> dict:
    return {
            "file": path,
            "title": title,
            "requirements": list(doc["requirements"]),
            "profiles": list(doc.get("profiles") or PROFILES),
            "features": list(needs.get("features") or []),
            "absent_features": list(needs.get("absent_features") or []),
            # needs.controls and the controls its steps use (a step's control is a need too).
            "controls": sorted(set(needs.get("controls") or []) | {step_control(step) for step in doc["steps"] if "control" in step}),
            "config": dict(needs.get("config") or {}),
            "roles": list(needs.get("roles") or []),
            "credentials": list(needs.get("credentials") or []),
            "cipher_lists": [(step["connect"].get("tls", "any"), step["connect"]["ciphers"]) for step in doc["steps"]
                             if isinstance(step.get("connect"), dict) and "ciphers" in step["connect"]],
        }


SCENARIOS = load_scenario_files()


def expected_runs(ids, profiles=PROFILES) -> set[tuple[str, str]]:
    return {(i, p) for i in ids for p in SCENARIOS[i]["profiles"] if p in profiles}


def openssl_offers(tls: str, ciphers: str) -> bool:
    """Whether the local openssl can offer this cipher list at this version (asked of its CLI)."""
    version = {"1.0": "-tls1", "1.1": "-tls1_1", "1.2": "-tls1_2", "1.3": "-tls1_3", "any": "-tls1_2"}[tls]
    listed = run(["openssl", "ciphers", "-s", "-psk", version, ciphers], timeout=30)
    return listed.rc == 0 and listed.out.strip() != ""


def embedded_verdict(scenario_id: str) -> str:
    """What a scenario must give against the (correct) embedded lab: pass, or skip when it only
    applies where a feature the lab offers is absent (the "answers 404/501 where not offered" ones)
    or offers cipher suites the local OpenSSL does not have (EXPORT, DES)."""
    s = SCENARIOS[scenario_id]
    if set(s["absent_features"]) & EMBEDDED_FEATURES:
        return "skip"
    return "pass" if all(openssl_offers(tls, ciphers) for tls, ciphers in s["cipher_lists"]) else "skip"


def embedded_verdicts(ids=None, profiles=PROFILES) -> dict[tuple[str, str], str]:
    return {key: embedded_verdict(key[0]) for key in expected_runs(SCENARIOS if ids is None else ids, profiles)}


def by_keyword(word: str) -> set[str]:
    return {i for i, s in SCENARIOS.items() if word in i or word in s["title"] or word in str(s["file"])}


# ---------------------------------------------------------------------------------------------
# Runs and their reports
# ---------------------------------------------------------------------------------------------


def estlab_run(estlab: Estlab, *args, cwd=None) -> Ran:
    return run([estlab.binary, "run", *args], cwd=cwd, timeout=RUN_TIMEOUT_S)


def run_into(estlab: Estlab, out: Path, *args) -> RunOut:
    return RunOut(estlab_run(estlab, "--out", out, *args), out)


@pytest.fixture(scope="module")
def embedded(estlab, tmp_path_factory) -> RunOut:
    """The whole suite against the embedded lab, both profiles, two jobs."""
    r = run_into(estlab, tmp_path_factory.mktemp("embedded") / "out", "-j", "2")
    assert r.ran.rc == 0, str(r.ran)
    return r


@pytest.fixture(scope="module")
def faulty(estlab, tmp_path_factory) -> RunOut:
    """The whole suite against embedded gateways that accept clients without the clientAuth EKU."""
    r = run_into(estlab, tmp_path_factory.mktemp("faulty") / "out", "-j", "2", "--gateway-fault", FAULT)
    assert r.ran.rc == EXIT_FAILED, f"a failing scenario must exit {EXIT_FAILED}\n{r.ran}"
    return r


# ---------------------------------------------------------------------------------------------
# 1. The embedded run: results.json and JUnit
# ---------------------------------------------------------------------------------------------


def test_reports_redact_basic_passwords(embedded):
    """The evidence of Basic-auth steps names the user; no report carries a password or its token."""
    shown = re.compile(r"Authorization: Basic (\S+)")
    tokens = set()
    for name in ("results.json", "report.html", "junit.xml"):
        path = embedded.out / name
        if path.is_file():
            tokens |= set(shown.findall(path.read_text()))
    assert tokens, "the embedded run has Basic-auth steps, so their evidence shows the header"
    assert tokens == {"(redacted:"}, tokens


def test_embedded_run_passes_every_scenario_in_both_profiles(embedded):
    res = embedded.results
    assert res["format"] == "estlab-conformance" and res["format_version"] == 2
    assert res["all_passed"] is True
    assert sorted(res["profiles"]) == sorted(PROFILES)
    want = embedded_verdicts()
    assert "skip" in want.values() and "pass" in want.values()
    assert embedded.verdicts() == want, \
        "every scenario file must run once per profile it names, and pass (or skip where it needs a feature absent)"
    n = len(embedded.scenarios)
    skips = list(want.values()).count("skip")
    assert res["counts"] == {"total": n, "pass": n - skips, "info": 0, "warn": 0, "skip": skips, "xfail": 0,
                             "xpass": 0, "fail": 0, "error": 0, "partially_skipped": 0}
    assert res["skipped"]["runs"] == skips and res["skipped"]["partially"] == 0
    assert res["strict"] is False and res["baseline"] == ""
    assert re.fullmatch(r"\d+", str(res["seed"])) and res["replay"] == f"--seed {res['seed']}"
    for s in embedded.scenarios:
        assert s["requirements"] == SCENARIOS[s["id"]]["requirements"], s["id"]
        assert Path(s["file"]).resolve() == SCENARIOS[s["id"]]["file"].resolve(), s["id"]
        if s["verdict"] == "skip":
            # Skipped for a feature the lab offers, or for suites the local OpenSSL lacks, saying
            # which; nothing was sent.
            assert s["steps"] == [], s["id"]
            assert (any(f"'{f}'" in s["message"] for f in SCENARIOS[s["id"]]["absent_features"]) or
                    any(f"'{ciphers}'" in s["message"] and "this OpenSSL" in s["message"]
                        for _, ciphers in SCENARIOS[s["id"]]["cipher_lists"])), s
            continue
        assert s["unique"], s["id"]
        assert s["steps"] and all(step["verdict"] == "pass" for step in s["steps"]), s["id"]
        for step in s["steps"]:
            for check in step["checks"]:
                assert set(check) == {"what", "verdict", "requirement", "level"}, check
                # A pass, or a fact recorded without a requirement (a handshake that failed,
                # judged by the next request), never a judgement below pass.
                recorded = check["verdict"] == "info" and check["requirement"] == "" and check["level"] == "info"
                assert (check["verdict"] == "pass" or recorded) and check["what"], (s["id"], check)


def junit_cases(root: ET.Element) -> dict[tuple[str, str, int], tuple[str, ET.Element]]:
    """(scenario property, profile property, repetition) -> (suite name, testcase element).

    The testcase name must be `ID [PROFILE]` (+ ` #N` from the second repetition on)."""
    cases = {}
    for suite in root.iter("testsuite"):
        for case in suite.iter("testcase"):
            props = [(p.get("name"), p.get("value")) for p in case.iter("property")]
            profiles = [v for n, v in props if n == "profile"]
            ids = [v for n, v in props if n == "scenario"]
            assert len(profiles) == 1 and len(ids) == 1, ET.tostring(case, encoding="unicode")[:500]
            m = re.fullmatch(re.escape(f"{ids[0]} [{profiles[0]}]") + r"(?: #(\d+))?", case.get("name"))
            assert m, f"testcase name {case.get('name')!r} is not '{ids[0]} [{profiles[0]}]' (+ ' #N')"
            repetition = int(m.group(1)) - 1 if m.group(1) else 0
            assert repetition != 0 or m.group(1) is None, f"the first repetition has no #N: {case.get('name')}"
            key = (ids[0], profiles[0], repetition)
            assert key not in cases, f"testcase {key} appears twice"
            cases[key] = (suite.get("name"), case)
    names = [case.get("name") for _, case in cases.values()]
    assert len(names) == len(set(names)), "testcase names must be unique in the file"
    return cases


def case_verdict(case: ET.Element) -> str:
    verdicts = [p.get("value") for p in case.iter("property") if p.get("name") == "verdict"]
    assert len(verdicts) == 1, ET.tostring(case, encoding="unicode")[:500]
    return verdicts[0]


def test_junit_has_one_suite_per_spec_and_requirement_properties(embedded):
    root = embedded.junit
    assert root.tag == "testsuites"
    suites = [s.get("name") for s in root.iter("testsuite")]
    assert len(suites) == len(set(suites)), f"a spec has several testsuites: {suites}"
    specs = {s["spec"] for s in embedded.scenarios}
    assert {"RFC 7030", "protocol-gateway"} <= specs
    assert set(suites) == specs

    cases = junit_cases(root)
    assert {(i, p) for i, p, _ in cases} == set(embedded.verdicts()), \
        "JUnit and results.json must report the same scenario runs"
    assert len(cases) == len(embedded.scenarios)
    for s in embedded.scenarios:
        suite, case = cases[(s["id"], s["profile"], 0)]
        assert suite == s["spec"], f"{s['id']} is in suite {suite}, its spec is {s['spec']}"
        requirements = [p.get("value") for p in case.iter("property") if p.get("name") == "requirement"]
        assert requirements == SCENARIOS[s["id"]]["requirements"], s["id"]
        assert case_verdict(case) == s["verdict"], s["id"]
        assert case.find("failure") is None and case.find("error") is None, s["id"]
        skipped = case.find("skipped")
        if s["verdict"] == "skip":
            assert skipped is not None and skipped.get("message") == s["message"], s["id"]
        else:
            assert skipped is None, s["id"]
    skips = sum(1 for s in embedded.scenarios if s["verdict"] == "skip")
    assert int(root.get("tests")) == len(cases) and int(root.get("failures")) == 0
    assert int(root.get("skipped")) == skips and int(root.get("errors")) == 0

    # Each suite counts all eight levels and carries the run's seed.
    for suite in root.iter("testsuite"):
        props = {p.get("name"): p.get("value") for p in suite.find("properties").iter("property")}
        in_suite = [s for s in embedded.scenarios if s["spec"] == suite.get("name")]
        for v in VERDICTS:
            assert props.get(f"count.{v}") == str(sum(1 for s in in_suite if s["verdict"] == v)), (suite.get("name"), v)
        assert props.get("seed") == str(embedded.results["seed"]) and props.get("strict") == "false"


@pytest.mark.parametrize("which", ["embedded", "faulty"])
def test_junit_validates_against_the_jenkins_schema(request, which):
    if not JUNIT_XSD.is_file():
        pytest.skip(f"{JUNIT_XSD} is missing (../shared is not checked out here), so there is no copy of the schema")
    if not shutil.which("xmllint"):
        pytest.skip("xmllint is not installed (apt-get install libxml2-utils)")
    report = request.getfixturevalue(which)
    r = run(["xmllint", "--noout", "--schema", JUNIT_XSD, report.out / "junit.xml"])
    assert r.rc == 0, str(r)


# ---------------------------------------------------------------------------------------------
# 2. The HTML report in a real browser, and a run with a gateway fault
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    driver = headless_chromium()
    yield driver
    driver.quit()


def by_css(driver, selector):
    from selenium.webdriver.common.by import By
    return driver.find_elements(By.CSS_SELECTOR, selector)


# Read in one script call: one WebDriver round trip per element and attribute made this test take
# 100 s for the 380 sections of a run.
def visible_scenarios(driver) -> list[tuple[str, str, str]]:
    """(id text, profile, verdict) of every displayed scenario section."""
    rows = driver.execute_script("""
        return Array.from(document.querySelectorAll('section.scenario'))
          .filter(function (s) { return s.checkVisibility(); })
          .map(function (s) { return [s.getAttribute('data-search').split(/\\s+/)[0],
                                      s.getAttribute('data-profile'), s.getAttribute('data-verdict')]; });""")
    return [tuple(r) for r in rows]


def visible_matrix_rows(driver) -> list[str]:
    return driver.execute_script("""
        return Array.from(document.querySelectorAll('#matrix tbody tr'))
          .filter(function (tr) { return tr.checkVisibility(); })
          .map(function (tr) { return tr.getAttribute('data-requirement'); });""")


def test_html_matrix_and_filters(browser, embedded):
    browser.get(embedded.html.resolve().as_uri())
    assert by_css(browser, "#overall")[0].text == "PASSED"

    # One matrix row per requirement ID in results.json; each cell links exactly the scenario
    # runs of that requirement and profile.
    # A scenario's row is every requirement it lists and every one a check of it names (the 401
    # challenge check, the RFC 9908 shape rows of csrattrs_lint).
    def named(s):
        return set(s["requirements"]) | {c["requirement"] for step in s["steps"] for c in step["checks"] if c["requirement"]}
    requirements = {r for s in embedded.scenarios for r in named(s)}
    rows = browser.execute_script("""
        return Array.from(document.querySelectorAll('table#matrix tbody tr')).map(function (tr) {
          return {req: tr.getAttribute('data-requirement'),
                  cells: Array.from(tr.querySelectorAll('td.cell')).map(function (td) {
                    return {profile: td.getAttribute('data-profile'),
                            links: Array.from(td.querySelectorAll('a.scenario-link')).map(function (a) {
                              return a.textContent.trim(); })}; })}; });""")
    row_ids = [row["req"] for row in rows]
    assert len(row_ids) == len(set(row_ids)), f"a requirement has several rows: {row_ids}"
    assert set(row_ids) == requirements
    for row in rows:
        assert sorted(c["profile"] for c in row["cells"]) == sorted(PROFILES), row
        for cell in row["cells"]:
            want = sorted(s["id"] for s in embedded.scenarios
                          if row["req"] in named(s) and s["profile"] == cell["profile"])
            assert sorted(cell["links"]) == want, f"{row['req']} / {cell['profile']}"

    sections = by_css(browser, "section.scenario")
    assert len(sections) == len(embedded.scenarios)
    assert len(visible_scenarios(browser)) == len(sections)

    # The text filter: a scenario id leaves that scenario only (and its requirement's row).
    chosen = "pg-enr-4-last-issued-only"
    assert chosen in SCENARIOS
    text = by_css(browser, "#filter-text")[0]
    text.send_keys(chosen)
    assert visible_scenarios(browser) == [(chosen, "protocol-gateway", "pass")]
    shown_rows = visible_matrix_rows(browser)
    assert shown_rows == ["PG-ENR-4"]
    assert by_css(browser, "#filter-count")[0].text == f"1 of {len(sections)} scenarios shown"
    text.clear()
    browser.execute_script("arguments[0].dispatchEvent(new Event('input'))", text)
    assert len(visible_scenarios(browser)) == len(sections)

    # The verdict filter: without "pass", no passing scenario is shown (here: only the skipped ones),
    # without "skip" too, none at all.
    skipped = sorted((s["id"], s["profile"], "skip") for s in embedded.scenarios if s["verdict"] == "skip")
    assert skipped, "the embedded run has skipped scenarios (features it offers)"
    box = by_css(browser, "input.filter-verdict[value=pass]")[0]
    skip_box = by_css(browser, "input.filter-verdict[value=skip]")[0]
    assert box.is_selected() and skip_box.is_selected()
    box.click()
    assert not box.is_selected()
    assert sorted(visible_scenarios(browser)) == skipped
    skip_box.click()
    assert visible_scenarios(browser) == []
    box.click()
    skip_box.click()
    assert len(visible_scenarios(browser)) == len(sections)

    # What was not judged leads, and the seed is shown.
    assert by_css(browser, "#skip-summary")[0].text.startswith(f"SKIPPED {len(skipped)} scenario runs")
    seed = by_css(browser, "span#seed")[0]
    assert seed.get_attribute("data-seed") == str(embedded.results["seed"]) and str(embedded.results["seed"]) in seed.text


def test_fault_run_html_shows_the_failure_with_its_evidence(browser, faulty):
    browser.get(faulty.html.resolve().as_uri())
    assert by_css(browser, "#overall")[0].text == "FAILED"
    assert by_css(browser, "#count-fail")[0].text == "1 fail"

    section = by_css(browser, f"section.scenario#scenario-{FAULT_SCENARIO}")
    assert len(section) == 1, "the failing scenario has one section"
    section = section[0]
    assert section.get_attribute("data-verdict") == "fail"
    outer = section.find_element("css selector", "details")
    if outer.get_attribute("open") is None:
        outer.find_element("css selector", "summary").click()
    failing_steps = section.find_elements("css selector", "li.step.verdict-fail")
    assert failing_steps, "the failing step is marked"
    exchange = failing_steps[0].find_element("css selector", "details.exchange")
    if exchange.get_attribute("open") is None:
        exchange.find_element("css selector", "summary").click()
    request = exchange.find_element("css selector", "pre.request")
    response = exchange.find_element("css selector", "pre.response")
    assert request.is_displayed() and response.is_displayed()
    assert f"POST {ENROLL_PATH}" in request.text
    assert response.text.startswith("HTTP/1.1 200"), "the evidence is the gateway's wrong 200"

    # Unchecking "pass" and "skip" leaves exactly the failing scenario.
    for value in ("pass", "skip"):
        by_css(browser, f"input.filter-verdict[value={value}]")[0].click()
    assert visible_scenarios(browser) == [(FAULT_SCENARIO, "protocol-gateway", "fail")]


def test_fault_run_results_and_junit_name_the_failing_scenario(faulty):
    verdicts = faulty.verdicts()
    want = embedded_verdicts()
    want[(FAULT_SCENARIO, "protocol-gateway")] = "fail"
    assert verdicts == want
    assert faulty.results["all_passed"] is False
    assert faulty.results["counts"]["fail"] == 1 and faulty.results["counts"]["error"] == 0
    failed = faulty.scenario(FAULT_SCENARIO)
    assert "PG-ENR-2" in failed["requirements"]
    failing_steps = [step for step in failed["steps"] if step["verdict"] == "fail"]
    assert any(ENROLL_PATH in (step["exchange"] or {}).get("request", "") for step in failing_steps)
    # The failing check names its catalog row at MUST level.
    failing_checks = [c for step in failing_steps for c in step["checks"] if c["verdict"] == "fail"]
    assert failing_checks and all(c["level"] == "MUST" and c["requirement"] == "PG-ENR-2" for c in failing_checks), \
        failing_checks

    cases = junit_cases(faulty.junit)
    failures = {key for key, (_, case) in cases.items() if case.find("failure") is not None}
    assert failures == {(FAULT_SCENARIO, "protocol-gateway", 0)}
    case = cases[(FAULT_SCENARIO, "protocol-gateway", 0)][1]
    assert case.get("name") == f"{FAULT_SCENARIO} [protocol-gateway]" and case_verdict(case) == "fail"
    failure = case.find("failure")
    assert failure.get("type") == "assertion"
    assert f"POST {ENROLL_PATH}" in failure.text and "200" in failure.text
    assert int(faulty.junit.get("failures")) == 1


# ---------------------------------------------------------------------------------------------
# 3. Selection, exit codes, broken scenario files, --fail-fast, --repeat
# ---------------------------------------------------------------------------------------------


def test_list_prints_every_scenario_without_building_a_lab(estlab, tmp_path):
    r = estlab_run(estlab, "--list", "--out", tmp_path / "out", cwd=tmp_path)
    assert r.rc == 0, str(r)
    lines = r.out.splitlines()
    assert lines[-1] == f"{len(SCENARIOS)} scenario(s)", r.out
    assert sorted(line.split()[0] for line in lines[:-1]) == sorted(SCENARIOS)
    assert list(tmp_path.iterdir()) == [], "--list must not build a lab or write anything"


def test_keyword_selects_matching_scenarios_only(estlab, tmp_path):
    r = run_into(estlab, tmp_path / "out", "-k", "tls-versions")
    assert r.ran.rc == 0, str(r.ran)
    assert by_keyword("tls-versions")
    assert set(r.verdicts()) == expected_runs(by_keyword("tls-versions"))
    assert set(r.verdicts().values()) == {"pass"}


def test_requirement_and_profile_select_exactly_one_run(estlab, tmp_path):
    r = run_into(estlab, tmp_path / "out", "--id", "PG-ENR-4", "--profile", "protocol-gateway")
    assert r.ran.rc == 0, str(r.ran)
    tied = {i for i, s in SCENARIOS.items() if any(req.startswith("PG-ENR-4") for req in s["requirements"])}
    assert "pg-enr-4-last-issued-only" in tied
    # Each scenario tied to PG-ENR-4, once, under protocol-gateway only, and passing.
    assert sorted((s["id"], s["profile"], s["repetition"], s["verdict"]) for s in r.scenarios) == \
        sorted((i, "protocol-gateway", 0, "pass") for i, _ in expected_runs(tied, ("protocol-gateway",)))


@pytest.mark.parametrize("args,message", [
    (["-k", "no-scenario-is-called-this"], "no scenario matches"),
    (["--id", "PG-NOPE-9"], "no scenario matches"),
    (["--profile", "nope"], "nope"),
], ids=["keyword", "requirement", "profile"])
def test_bad_selection_exits_2(estlab, tmp_path, args, message):
    r = estlab_run(estlab, "--out", tmp_path / "out", *args)
    assert r.rc == EXIT_USAGE, str(r)
    assert message in r.err, str(r)
    assert not (tmp_path / "out" / "results.json").exists()


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize("breakage", ["unknown-key", "bad-status"])
def test_broken_scenario_file_exits_2_naming_file_and_line(estlab, tmp_path, breakage):
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    shutil.copy(SCENARIOS["cacerts-anonymous"]["file"], scenarios / "good.yaml")
    text = SCENARIOS[FAULT_SCENARIO]["file"].read_text()
    if breakage == "unknown-key":
        text = text.replace("profiles:", "colour: red\nprofiles:", 1)
        needle = "colour: red"
    else:
        text = text.replace("expect: {refused: true}", "expect: {status: 4O3}", 1)
        needle = "4O3"
    assert needle in text, "the breakage must change the file"
    broken = scenarios / "broken.yaml"
    broken.write_text(text)
    line = line_of(text, needle)
    for extra in (["--list"], ["--out", tmp_path / "out"]):
        r = estlab_run(estlab, "--scenarios", scenarios, *extra)
        assert r.rc == EXIT_USAGE, str(r)
        assert f"{broken}:{line}:" in r.err, f"stderr must name {broken}:{line}\n{r}"
    assert not (tmp_path / "out" / "results.json").exists()


def test_fail_fast_stops_after_the_first_failure(estlab, tmp_path):
    r = run_into(estlab, tmp_path / "out", "-j", "1", "--fail-fast", "--gateway-fault", FAULT)
    assert r.ran.rc == EXIT_FAILED, str(r.ran)
    verdicts = [s["verdict"] for s in r.scenarios]
    assert len(r.scenarios) == len(expected_runs(SCENARIOS)), "skipped runs are still reported"
    assert verdicts.count("fail") == 1, verdicts
    first = verdicts.index("fail")
    assert r.scenarios[first]["id"] == FAULT_SCENARIO
    assert set(verdicts[:first]) <= {"pass"}
    before = r.scenarios[:first]
    assert all(s["verdict"] == embedded_verdict(s["id"]) for s in before), before
    after = [s for s in r.scenarios[first + 1:] if embedded_verdict(s["id"]) == "pass"]
    assert after, "the failing scenario must not be the last one for this test to mean anything"
    for s in after:
        assert s["verdict"] == "skip" and "fail-fast" in s["message"], s
    # The ones that skip anyway (a feature the lab offers) stay skipped, for their own reason or fail-fast.
    for s in r.scenarios[first + 1:]:
        assert s["verdict"] == "skip", s
    assert r.results["counts"]["skip"] == len(r.scenarios) - 1 - first + sum(1 for s in before if s["verdict"] == "skip")


def test_repeat_runs_each_scenario_n_times_per_profile(estlab, tmp_path):
    r = run_into(estlab, tmp_path / "out", "--repeat", "2", "-k", "cacerts-anonymous")
    assert r.ran.rc == 0, str(r.ran)
    runs = sorted((s["id"], s["profile"], s["repetition"], s["verdict"]) for s in r.scenarios)
    assert runs == sorted((i, p, rep, "pass") for (i, p) in expected_runs(by_keyword("cacerts-anonymous"))
                          for rep in (0, 1))
    assert len(runs) == 4
    # JUnit keeps one history per run: `ID [PROFILE]`, then `ID [PROFILE] #2`.
    names = sorted(case.get("name") for case in r.junit.iter("testcase"))
    assert names == sorted(f"cacerts-anonymous [{p}]{suffix}" for p in PROFILES for suffix in ("", " #2"))
    assert set(junit_cases(r.junit)) == {(i, p, rep) for i, p, rep, _ in runs}


# ---------------------------------------------------------------------------------------------
# 4. Target mode against `estlab gateway`, and 5. bad target files
# ---------------------------------------------------------------------------------------------


def write_target(path: Path, lab: FixtureSet, estlab: Estlab, port: int, *, revoke: bool = True,
                 coaps_port: int | None = None) -> Path:
    target = {
        "name": "estlab gateway as a vendor",
        "profile": "protocol-gateway",
        "base_url": f"https://127.0.0.1:{port}",
        "server_name": "localhost",
        "trust_anchors": str(lab.path("trust/anchors.pem")),
        "features": TARGET_FEATURES,
        "identities": target_identities(lab),
        **target_lab_facts(lab),
    }
    if coaps_port:
        target["coaps_port"] = coaps_port
    if revoke:
        target["controls"] = {
            "revoke": f"{estlab.binary} ca --store {lab.path('lab.db')} revoke --serial {{serial}} --reason {{reason}}"}
    path.write_text(yaml.safe_dump(target, sort_keys=False))
    return path


def test_target_mode_gives_the_embedded_verdicts(estlab, embedded, tmp_path):
    # The hook passes the scenario's reason through: `ca revoke` must take that spelling.
    assert "keyCompromise" in run([estlab.binary, "ca", "revoke", "--help"]).out
    lab = estlab.generate(tmp_path / "lab")
    gateway = Gateway(estlab.binary, lab, tmp_path / "gw", profile="protocol-gateway", args=("--quiet",)).start()
    # The product's CoAP proxy in front of it, started the same way (port file, SIGTERM), so the
    # coaps scenarios run in target mode too.
    proxy = Gateway(estlab.binary, lab, tmp_path / "coap")
    proxy.args = [str(estlab.binary), "coap-proxy", "--lab", str(lab.dir), "--port", "0", "--port-file", str(proxy.port_file),
                  "--est-url", f"https://127.0.0.1:{gateway.port}/.well-known/est", "--quiet"]
    proxy.start()
    try:
        with_revoke = run_into(estlab, tmp_path / "out", "--target",
                               write_target(tmp_path / "t.yaml", lab, estlab, gateway.port, coaps_port=proxy.port))
        without_revoke = run_into(estlab, tmp_path / "out-norevoke", "--target",
                                  write_target(tmp_path / "t-norevoke.yaml", lab, estlab, gateway.port, revoke=False,
                                               coaps_port=proxy.port))
        assert gateway.alive(), f"the gateway died during the runs\n{gateway.stderr()[-3000:]}"
        assert proxy.alive(), f"the CoAP proxy died during the runs\n{proxy.stderr()[-3000:]}"
    finally:
        proxy_rc = proxy.stop()
        rc = gateway.stop()
    assert rc == 0, f"estlab gateway must exit 0 on SIGTERM, got {rc}\n{gateway.stderr()[-3000:]}"
    assert proxy_rc == 0, f"estlab coap-proxy must exit 0 on SIGTERM, got {proxy_rc}\n{proxy.stderr()[-3000:]}"

    assert with_revoke.ran.rc == 0, str(with_revoke.ran)
    assert with_revoke.results["profiles"] == ["protocol-gateway"]
    embedded_pg = embedded.verdicts("protocol-gateway")
    target_pg = with_revoke.verdicts()
    assert set(target_pg) == set(embedded_pg), "the target runs the protocol-gateway scenarios, all of them"
    # Only scenarios that need what this target file does not offer may differ: the manual-approval
    # ones (no manual-approval feature, no approve/reject control) and any needing another control.
    manual = {i for i, s in SCENARIOS.items() if "manual-approval" in s["features"] and "protocol-gateway" in s["profiles"]}
    assert manual, "the suite has scenarios that need manual approval"
    # A target file's gateway cannot be reconfigured, so scenarios needing a configuration skip too.
    lacking = {i: [f for f in s["features"] if f not in TARGET_FEATURES] + [c for c in s["controls"] if c != "revoke"] +
               (["config"] if s["config"] else [])
               for i, s in SCENARIOS.items() if "protocol-gateway" in s["profiles"]}
    unmet = {i for i, missing in lacking.items() if missing}
    assert manual <= unmet
    differing = {i for (i, _), v in target_pg.items() if v != embedded_pg[(i, "protocol-gateway")]}
    assert differing == unmet, "only the scenarios needing manual approval (or a control the target lacks) may differ"
    for scenario_id in unmet:
        s = with_revoke.scenario(scenario_id)
        assert s["verdict"] == "skip" and s["steps"] == [], s
        if scenario_id not in manual:
            assert any(("(needs.config)" if m == "config" else f"'{m}'") in s["message"] for m in lacking[scenario_id]), s

    # The revoke control ran the hook command against the gateway's CA store.
    revoked = with_revoke.scenario("revoked-at-ca-then-refused")
    assert revoked["verdict"] == "pass"
    control = [step for step in revoked["steps"] if step["kind"] == "control"]
    assert len(control) == 1 and control[0]["verdict"] == "pass", control
    evidence = "\n".join(check["what"] for check in control[0]["checks"]) + control[0]["message"]
    assert f"ran: {estlab.binary} ca --store" in evidence and "(keyCompromise)" in evidence, evidence
    serial = re.search(r"serial=([0-9a-f]+)", control[0]["summary"]).group(1)
    assert f"revoked {serial} (keyCompromise)" in evidence, evidence
    crl = tmp_path / "issuing.crl.pem"
    r = run([estlab.binary, "ca", "--store", lab.path("lab.db"), "crl", "--out", crl])
    assert r.rc == 0, str(r)
    crl_text = openssl_ok("crl", "-in", crl, "-noout", "-text").decode()
    assert f"Serial Number: {serial.upper()}" in crl_text and "Key Compromise" in crl_text, crl_text

    # Without the revoke control the revoke scenario is skipped, naming the control; nothing else changes.
    assert without_revoke.ran.rc == 0, str(without_revoke.ran)
    skipped = without_revoke.scenario("revoked-at-ca-then-refused")
    assert skipped["verdict"] == "skip" and "'revoke'" in skipped["message"] and "control" in skipped["message"], skipped
    needs_revoke = {i for i, s in SCENARIOS.items() if "revoke" in s["controls"] and i not in manual}
    others = {k: v for k, v in without_revoke.verdicts().items() if k[0] not in needs_revoke}
    assert others == {k: v for k, v in target_pg.items() if k[0] not in needs_revoke}

    # Last, so that everything above is checked first: the manual-approval scenarios are skipped
    # with a reason that says they need manual approval.
    for scenario_id in sorted(manual):
        message = with_revoke.scenario(scenario_id)["message"]
        assert "manual-approval" in message, \
            f"{scenario_id} is skipped with the reason {message!r}, which does not mention manual-approval"


GOOD_TARGET = """\
name: broken on purpose
profile: protocol-gateway
base_url: https://127.0.0.1:8443
server_name: localhost
trust_anchors: anchors.pem
features: [tls1.2, tls1.3]
"""


@pytest.mark.parametrize("change,needle", [
    (("features:", "flavour: vanilla\nfeatures:"), "flavour"),
    (("base_url: https://127.0.0.1:8443", "base_url: http://127.0.0.1:8443"), "base_url"),
    (("trust_anchors: anchors.pem", "trust_anchors: no-such-anchors.pem"), "trust_anchors"),
], ids=["unknown-key", "base-url-not-https", "missing-trust-anchors"])
def test_bad_target_file_exits_2_naming_file_and_line(estlab, fixture_set, tmp_path, change, needle):
    shutil.copy(fixture_set.path("trust/anchors.pem"), tmp_path / "anchors.pem")
    good = tmp_path / "good.yaml"
    good.write_text(GOOD_TARGET)
    # The unbroken file loads: --list judges it (which scenarios would run) without connecting.
    r = estlab_run(estlab, "--target", good, "--list")
    assert r.rc == 0 and re.search(r"^cacerts-anonymous +protocol-gateway +runs$", r.out, re.M), \
        f"the unbroken target file must load\n{r}"

    text = GOOD_TARGET.replace(*change)
    assert text != GOOD_TARGET
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    r = estlab_run(estlab, "--target", bad, "--out", tmp_path / "out")
    assert r.rc == EXIT_USAGE, str(r)
    assert f"{bad}:{line_of(text, needle)}:" in r.err, f"stderr must name {bad}:{line_of(text, needle)}\n{r}"
    assert not (tmp_path / "out" / "results.json").exists()


# ---------------------------------------------------------------------------------------------
# 6. estlab replay
# ---------------------------------------------------------------------------------------------


def replay(estlab: Estlab, *args) -> Ran:
    return run([estlab.binary, "replay", *args])


def written_scenario(directory: Path) -> tuple[Path, dict]:
    files = sorted(p for p in directory.glob("*.yaml"))
    assert len(files) == 1, f"expected one scenario file in {directory}: {files}"
    return files[0], yaml.safe_load(files[0].read_text())


def test_replay_turns_a_recorded_refusal_into_a_scenario(estlab, lab_copy, tmp_path):
    transcripts = tmp_path / "transcripts"
    gateway = Gateway(estlab.binary, lab_copy, tmp_path / "gw", profile="protocol-gateway",
                      args=("--transcript", transcripts)).start()
    try:
        factory_cn = lab_copy.item("device-factory")["subject"].split("CN=")[-1]
        csr = make_csr(tmp_path / "csr", "other", device_subject(f"not-{factory_cn}"))
        answer = gateway.request("simpleenroll", identity="device-factory", data=csr.body(), content_type=PKCS10)
        assert answer.status == 403, str(answer)
    finally:
        rc = gateway.stop()
    assert rc == 0, gateway.stderr()[-3000:]
    recorded = transcripts / "000001-simpleenroll.yaml"
    assert recorded.is_file(), sorted(p.name for p in transcripts.iterdir()) if transcripts.exists() else "no dir"

    # Mapped to device-factory it runs in the embedded lab and reproduces the refusal.
    rdir2 = tmp_path / "replayed-factory"
    r = replay(estlab, "--role", "device-factory", "--out", rdir2, recorded)
    assert r.rc == 0, str(r)
    _, doc2 = written_scenario(rdir2)
    assert doc2["needs"]["roles"] == ["device-factory"]
    as_factory = run_into(estlab, tmp_path / "out-factory", "--scenarios", rdir2, "--profile", "protocol-gateway")
    assert as_factory.ran.rc == 0, str(as_factory.ran)
    s = as_factory.scenario(doc2["id"])
    assert s["verdict"] == "pass", json.dumps(s, indent=1)[:3000]
    sends = [step for step in s["steps"] if step["kind"] == "send"]
    assert len(sends) == 1
    assert sends[0]["exchange"]["request"].startswith(f"POST {ENROLL_PATH}")
    assert sends[0]["exchange"]["response"].startswith("HTTP/1.1 403"), sends[0]["exchange"]["response"][:500]
    replayed_csr = rdir2 / doc2["steps"][1]["send"]["csr"]["file"]
    assert openssl_ok("req", "-in", replayed_csr, "-outform", "DER") == csr.der_bytes, "the recorded CSR is replayed"

    # As recorded, without --role: the skeleton must load as written (estlab checks its own names
    # of roles, so the default role must be one of them) and it runs or skips, never a usage error.
    rdir = tmp_path / "replayed"
    r = replay(estlab, "--out", rdir, recorded)
    assert r.rc == 0, f"replay without --role must write a scenario that loads\n{r}"
    path, doc = written_scenario(rdir)
    assert str(path) in r.out
    assert doc["steps"][1]["expect"]["status"] == 403, "the recorded status is the expectation"
    assert len(doc["needs"]["roles"]) == 1, doc["needs"]
    listed = estlab_run(estlab, "--scenarios", rdir, "--list")
    assert listed.rc == 0, str(listed)
    assert [line.split()[0] for line in listed.out.splitlines()[:-1]] == [doc["id"]]

    as_recorded = run_into(estlab, tmp_path / "out-client", "--scenarios", rdir, "--profile", "protocol-gateway")
    assert as_recorded.ran.rc == 0, str(as_recorded.ran)
    s = as_recorded.scenario(doc["id"])
    assert s["verdict"] in ("pass", "skip"), s
    if s["verdict"] == "skip":
        assert f"'{doc['needs']['roles'][0]}'" in s["message"], s


def test_replay_of_a_csr_file(estlab, tmp_path):
    key, csr_pem = tmp_path / "field.key", tmp_path / "field.csr.pem"
    openssl_ok("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
               "-subj", device_subject("field-device-7"), "-out", csr_pem)
    out = tmp_path / "d"
    r = replay(estlab, "--csr", csr_pem, "--out", out)
    assert r.rc == 0, str(r)
    _, doc = written_scenario(out)
    send = doc["steps"][1]["send"]
    assert send["op"] == "simpleenroll"
    copied = out / send["csr"]["file"]
    want = openssl_ok("req", "-in", csr_pem, "-outform", "DER")
    assert openssl_ok("req", "-in", copied, "-outform", "DER") == want, "the scenario carries the CSR as given"
    listed = estlab_run(estlab, "--scenarios", out, "--list")
    assert listed.rc == 0 and listed.out.split()[0] == doc["id"], str(listed)


def test_replay_without_input_exits_2(estlab, tmp_path):
    r = replay(estlab, "--out", tmp_path / "d")
    assert r.rc == EXIT_USAGE, str(r)
    assert "--csr" in r.err
    assert not (tmp_path / "d").exists()
