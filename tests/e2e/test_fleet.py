"""estlab fleet against the embedded lab: the devices really enroll (the CA's SQLite store holds
their certificates), the summary, JSON and HTML agree, each behaviour gets what the profile
gives it, and bad arguments get a clear error."""
from __future__ import annotations

import json
import re
import sqlite3

import pytest


def fleet(estlab, out, *args):
    return estlab("fleet", "--out", out, "--quiet", "--seed", "77", *args)


def issued_subjects(lab_db):
    with sqlite3.connect(f"file:{lab_db}?mode=ro", uri=True) as db:
        return [row[0] for row in db.execute("SELECT subject FROM issued")]


def test_fleet_enrolls_for_real_and_reports_agree(estlab, tmp_path):
    out = tmp_path / "out"
    r = fleet(estlab, out, "--devices", "40", "--concurrency", "6", "--mix", "enroll=2,reenroll=1,basic=1")
    assert r.rc == 0, str(r)
    report = json.loads((out / "fleet.json").read_text())
    assert report["format"] == "estlab-fleet" and report["devices"] == 40
    # 20 enroll, 10 reenroll (an enrollment, then a re-enrollment), 10 basic: 50 exchanges.
    assert report["exchanges"] == 50 and report["errors"] == 0, report
    assert report["outcomes"] == {"enroll simpleenroll": {"200": 20}, "reenroll simpleenroll": {"200": 10},
                                  "reenroll simplereenroll": {"200": 10}, "basic simpleenroll": {"200": 10}}, report
    assert report["latency_ms"]["count"] == 50 and 0 < report["latency_ms"]["p50"] <= report["latency_ms"]["p99"]
    assert sum(report["throughput_per_second"]) == 50
    assert sum(b["count"] for b in report["latency_histogram"]) == 50
    # rfc7030 gives each device a name of its own; every answered enrollment is in the CA's store.
    fleet_names = [s for s in issued_subjects(out / "lab" / "lab.db") if re.search(r"CN=fleet-77-\d+", s)]
    assert len(fleet_names) == 20 + 10 + 10, fleet_names
    assert "50 exchanges" in r.out and "p95" in r.out, r.out
    html = (out / "fleet.html").read_text()
    assert 'id="histogram"' in html and 'id="throughput-over-time"' in html and ">50</b> exchanges" in html


def test_product_profile_refuses_what_it_must(estlab, tmp_path):
    r = fleet(estlab, tmp_path / "out", "--profile", "protocol-gateway", "--devices", "12", "--concurrency", "4",
              "--mix", "enroll,revoked,no-eku,serverkeygen")
    assert r.rc == 0, str(r)
    outcomes = json.loads((tmp_path / "out" / "fleet.json").read_text())["outcomes"]
    assert outcomes["enroll simpleenroll"] == {"200": 3}
    assert outcomes["serverkeygen serverkeygen"] == {"200": 3}
    assert outcomes["revoked simpleenroll"] == {"403": 3}, "PG-ENR-3: a revoked certificate enrolls nothing"
    assert outcomes["no-eku simpleenroll"] == {"403": 3}, "PG-EKU: no clientAuth, no certificate"


def test_open_loop_for_a_duration(estlab, tmp_path):
    r = fleet(estlab, tmp_path / "out", "--rate", "20", "--duration", "1.5", "--mix", "enroll")
    assert r.rc == 0, str(r)
    report = json.loads((tmp_path / "out" / "fleet.json").read_text())
    assert 20 <= report["devices"] <= 31, report  # 20/s for 1.5 s, started on schedule
    assert report["exchanges"] == report["devices"] and report["errors"] == 0


@pytest.mark.parametrize("args,message", [
    (("--mix", "enroll=x"), "whole number"),
    (("--mix", "bogus"), "unknown behaviour 'bogus'"),
    (("--devices", "0"), "--devices"),
    (("--profile", "nope"), "--profile"),
    (("--target", "/nonexistent/target.yaml"), "target.yaml"),
])
def test_bad_arguments_exit_2_naming_the_problem(estlab, tmp_path, args, message):
    r = estlab("fleet", "--out", tmp_path / "out", *args)
    assert r.rc == 2, str(r)
    assert message in r.err, str(r)


def test_help(estlab):
    r = estlab("fleet", "--help")
    assert r.rc == 0 and "--concurrency" in r.out and "--rate" in r.out and "Exit codes" in r.out
