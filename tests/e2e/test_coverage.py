"""`estlab coverage` against an independent reading of the same files: the catalog YAML and every
scenario file, read here with PyYAML. A row is gateway-side unless it binds only clients; it is
untestable where the catalog gives an `untestable` reason; it is covered when a scenario names it
(in `requirements` or in a step's `expect.requirement`). A field bug is covered when a scenario
names it in `field_bugs`."""

from __future__ import annotations

import json

import yaml

from conftest import REPO_ROOT, scenario_variants

CATALOG = REPO_ROOT / "conformance" / "catalog" / "requirements.yaml"
SCENARIOS = REPO_ROOT / "conformance" / "scenarios"


def named_requirements() -> dict[str, set[str]]:
    named: dict[str, set[str]] = {}
    for path in SCENARIOS.rglob("*.yaml"):
        doc = yaml.safe_load(path.read_text())
        for scenario_id, _ in scenario_variants(doc):
            for r in doc["requirements"]:
                named.setdefault(r, set()).add(scenario_id)
            for step in doc["steps"]:
                r = (step.get("expect") or {}).get("requirement")
                if r:
                    named.setdefault(r, set()).add(scenario_id)
    return named


def expected_states() -> dict[str, str]:
    named = named_requirements()
    states = {}
    for row in yaml.safe_load(CATALOG.read_text())["requirements"]:
        if row["side"] == "client":
            states[row["id"]] = "client-side"
        elif row.get("untestable"):
            states[row["id"]] = "untestable"
        else:
            states[row["id"]] = "covered" if row["id"] in named else "not covered"
    return states


def test_coverage_json_agrees_with_the_catalog_and_the_scenario_files(estlab):
    r = estlab("coverage", "--format", "json")
    assert r.rc == 0, str(r)
    report = json.loads(r.out)
    want = expected_states()
    got = {row["id"]: row["state"] for row in report["rows"]}
    assert got == want
    gateway = [s for s in want.values() if s in ("covered", "not covered")]
    covered = [s for s in want.values() if s == "covered"]
    assert report["total"]["gateway_rows"] == len(gateway)
    assert report["total"]["covered"] == len(covered)
    assert report["total"]["client_side"] == sum(1 for s in want.values() if s == "client-side")
    assert abs(report["total"]["percent"] - 100.0 * len(covered) / len(gateway)) < 0.06
    named = named_requirements()
    catalog_rows = {row["id"]: row for row in yaml.safe_load(CATALOG.read_text())["requirements"]}
    for row in report["rows"]:
        assert set(row["scenarios"]) == named.get(row["id"], set()), row["id"]
        if row["state"] == "untestable":
            assert row["reason"] == catalog_rows[row["id"]]["untestable"], row
    bugs = yaml.safe_load(CATALOG.read_text())["field_bugs"]
    assert [b["id"] for b in report["field_bugs"]["bugs"]] == [b["id"] for b in bugs]
    by_bug: dict[str, set[str]] = {}
    for path in SCENARIOS.rglob("*.yaml"):
        doc = yaml.safe_load(path.read_text())
        for scenario_id, _ in scenario_variants(doc):
            for bug in doc.get("field_bugs", []):
                by_bug.setdefault(bug, set()).add(scenario_id)
    for bug in report["field_bugs"]["bugs"]:
        assert set(bug["scenarios"]) == by_bug.get(bug["id"], set()), bug
    assert report["field_bugs"]["covered"] == sum(1 for b in bugs if b["id"] in by_bug)


def test_coverage_text_lists_every_uncovered_row_and_the_totals(estlab):
    r = estlab("coverage", "--uncovered")
    assert r.rc == 0, str(r)
    uncovered = sorted(i for i, s in expected_states().items() if s == "not covered")
    listed = sorted(line.split()[0] for line in r.out.split("not covered:\n", 1)[1].splitlines() if line.startswith("  "))
    assert listed == uncovered
    assert any(line.startswith("total") for line in r.out.splitlines()), r.out


def test_coverage_of_a_broken_catalog_names_the_file(estlab, tmp_path):
    broken = tmp_path / "catalog.yaml"
    broken.write_text("version: 1\nrequirements:\n  - id: 7030-4.2-a\n    spec: RFC 7030\n")
    r = estlab("coverage", "--catalog", broken)
    assert r.rc == 2, str(r)
    assert str(broken) in r.err, str(r)
    r = estlab("coverage", "--format", "xml")
    assert r.rc == 2 and "xml" in r.err, str(r)


def test_a_scenario_naming_an_unknown_field_bug_does_not_run(estlab, tmp_path):
    (tmp_path / "s.yaml").write_text(
        "id: x\ntitle: x\nrequirements: [7030-4.1.2-a]\nfield_bugs: [FB-99]\nsteps:\n  - send: {op: cacerts}\n")
    r = estlab("run", "--scenarios", tmp_path, "--out", tmp_path / "out")
    assert r.rc == 2, str(r)
    assert "FB-99" in r.err and "s.yaml" in r.err, str(r)
    (tmp_path / "s.yaml").write_text(
        "id: x\ntitle: x\nrequirements: [7030-4.1.2-a]\nfield_bugs: [bug3]\nsteps:\n  - send: {op: cacerts}\n")
    r = estlab("run", "--scenarios", tmp_path, "--out", tmp_path / "out")
    assert r.rc == 2 and "not an ID like FB-03" in r.err, str(r)
