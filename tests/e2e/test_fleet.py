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


def test_shards_split_the_devices_and_merge_into_one_report(estlab, tmp_path):
    reports = []
    for i in range(3):
        out = tmp_path / f"shard{i}"
        r = fleet(estlab, out, "--devices", "16", "--concurrency", "4", "--shard", f"{i}/3", "--mix", "enroll=3,reenroll=1")
        assert r.rc == 0, str(r)
        reports.append(out / "fleet.json")
    devices = [json.loads(p.read_text())["devices"] for p in reports]
    assert devices == [6, 5, 5], devices  # n % 3 == i for n in 0..15
    merged_json, merged_html = tmp_path / "merged.json", tmp_path / "merged.html"
    r = estlab("fleet", "merge", *reports, "--json", merged_json, "--html", merged_html)
    assert r.rc == 0, str(r)
    merged = json.loads(merged_json.read_text())
    # 16 devices of the one mix: 12 enroll, 4 reenroll (two exchanges each).
    assert merged["devices"] == 16 and merged["exchanges"] == 20 and merged["errors"] == 0, merged
    assert merged["outcomes"]["reenroll simplereenroll"] == {"200": 4}, merged["outcomes"]
    assert merged_html.is_file()
    # Two shards only: merged with a warning naming the missing one; a shard twice is refused.
    r = estlab("fleet", "merge", reports[0], reports[1], "--json", tmp_path / "partial.json", "--html", tmp_path / "partial.html")
    assert r.rc == 0 and "shard(s) 2 of 3 missing" in r.err, str(r)
    r = estlab("fleet", "merge", reports[0], reports[0], "--json", tmp_path / "twice.json", "--html", tmp_path / "twice.html")
    assert r.rc == 2 and "shard 0 appears twice" in r.err, str(r)
    r = estlab("fleet", "--shard", "3/3", "--seed", "1", "--out", tmp_path / "x")
    assert r.rc == 2 and "0 <= I < N" in r.err, str(r)


def factory_certificates(lab_db):
    """Certificates the CA holds for the factory certificate's subject (the product binds a CSR's
    subject to the client certificate, PG-ENR-1); the fixture set issued one of them itself."""
    subjects = issued_subjects(lab_db)
    return subjects.count("C=SE,O=estlab lab devices,CN=device-0001") - 1


def test_approval_devices_poll_until_the_operator_approves(estlab, tmp_path):
    out = tmp_path / "out"
    r = fleet(estlab, out, "--profile", "protocol-gateway", "--devices", "8", "--concurrency", "8",
              "--mix", "enroll=1,approval=1", "--approve-after", "2")
    assert r.rc == 0, str(r)
    report = json.loads((out / "fleet.json").read_text())
    # approve-after=2: the first request and the first poll wait (202), the second poll gets the certificate.
    assert report["outcomes"]["approval simpleenroll"] == {"200": 4, "202": 8}, report["outcomes"]
    assert report["outcomes"]["enroll simpleenroll"] == {"200": 4}, report["outcomes"]
    approval = report["time_to_approval_ms"]
    assert approval["count"] == 4 and approval["polls"] == 8, approval
    # Two waits of the lab's Retry-After (1 s) each, honoured by every device.
    assert 2000 <= approval["p50"] <= approval["max"] < 10000, approval
    assert "time to approval" in r.out
    assert factory_certificates(out / "lab" / "lab.db") == 8
    assert 'id="time-to-approval"' in (out / "fleet.html").read_text()


def test_coaps_devices_enroll_through_the_proxy(estlab, tmp_path):
    out = tmp_path / "out"
    r = fleet(estlab, out, "--profile", "protocol-gateway", "--transport", "coaps", "--devices", "12",
              "--concurrency", "6", "--mix", "enroll=2,approval=1")
    assert r.rc == 0, str(r)
    report = json.loads((out / "fleet.json").read_text())
    assert report["options"]["transport"] == "coaps"
    # RFC 9148: 2.04 Changed with the certificate; an approval waits with 5.03 and Max-Age (4.7).
    assert report["outcomes"]["enroll simpleenroll"] == {"204": 8}, report["outcomes"]
    assert report["outcomes"]["approval simpleenroll"] == {"204": 4, "503": 4}, report["outcomes"]
    assert report["time_to_approval_ms"]["count"] == 4 and report["time_to_approval_ms"]["polls"] == 4
    assert factory_certificates(out / "lab" / "lab.db") == 12


def test_coaps_devices_enroll_through_an_impaired_network(estlab, tmp_path):  # issue 13: the relay from the fleet
    out = tmp_path / "out"
    r = fleet(estlab, out, "--profile", "protocol-gateway", "--transport", "coaps", "--devices", "12",
              "--concurrency", "6", "--mix", "enroll=1", "--network", "loss=10%,duplicate=10%,seed=3")
    assert r.rc == 0, str(r)
    report = json.loads((out / "fleet.json").read_text())
    # Every device got its certificate through the lossy path (CoAP and DTLS retransmit), once.
    assert report["outcomes"]["enroll simpleenroll"] == {"204": 12}, report["outcomes"]
    assert factory_certificates(out / "lab" / "lab.db") == 12
    assert re.search(r"seed 3\): \d+ datagrams to the server, \d+ back, \d+ lost, \d+ duplicated", report["network"]), report["network"]
    assert "network: loss 10%" in r.out, r.out


@pytest.mark.parametrize("args,message", [
    (("--transport", "coaps"), "offers no EST-coaps"),  # the rfc7030 lab gateway has no CoAP proxy
    (("--transport", "coaps", "--profile", "protocol-gateway", "--mix", "basic"), "'basic' has no EST-coaps"),
    (("--transport", "udp"), "--transport"),
    (("--network", "loss=20%"), "--network impairs EST-coaps datagrams"),
    (("--transport", "coaps", "--profile", "protocol-gateway", "--mix", "enroll", "--network", "loss=2"), "network loss: '2'"),
    (("--virtual-days", "30", "--renew-at", "1.5"), "--renew-at"),
    (("--virtual-days", "30", "--rate", "5"), "--virtual-days runs HTTPS devices by count"),
])
def test_transport_and_virtual_time_arguments(estlab, tmp_path, args, message):
    r = estlab("fleet", "--out", tmp_path / "out", "--quiet", *args)
    assert r.rc == 2, str(r)
    assert message in r.err, str(r)


def test_a_virtual_year_renews_as_the_lifetime_arithmetic_says(estlab, tmp_path):
    out = tmp_path / "out"
    r = fleet(estlab, out, "--virtual-days", "365", "--renew-at", "0.3", "--devices", "20", "--concurrency", "8")
    assert r.rc == 0, str(r)
    year = json.loads((out / "virtual-year.json").read_text())
    assert year["format"] == "estlab-fleet-virtual-year" and len(year["days"]) == 365
    lifetime = year["lifetime_days"]  # what the lab's CA issues, read from its certificates
    period = 0.3 * lifetime
    renewals_each = int(365 // period)  # a renewal every 0.3 lifetimes, each at most a day late
    assert renewals_each >= 1, year
    t = year["totals"]
    assert t["enrollments"] == 20 and t["renewals"] == 20 * renewals_each, t
    assert t["expired"] == 0 and t["failures"] == 0 and t["rollover_renewals"] == 0, t
    busy = [i for i, d in enumerate(year["days"]) if d["renewals"]]
    for k, day in enumerate(busy, start=1):
        assert k * period <= day <= k * period + k + 1, (busy, period)
    assert sum(w["renewals"] for w in year["weeks"]) == t["renewals"]
    assert year["days"][0]["enrollments"] == 20 and year["peak_day"] == 0
    # Every issuance is a certificate in the CA's store, under the devices' own names.
    names = [s for s in issued_subjects(out / "lab" / "lab.db") if re.search(r"CN=year-77-\d+$", s)]
    assert len(names) == 20 * (1 + renewals_each), len(names)
    html = (out / "virtual-year.html").read_text()
    assert 'id="load-per-day"' in html and 'id="load-per-week"' in html


def test_a_virtual_year_with_a_ca_rollover(estlab, tmp_path):
    out = tmp_path / "out"
    r = fleet(estlab, out, "--virtual-days", "120", "--renew-at", "0.5", "--devices", "14", "--rollover-day", "30",
              "--rollover-spread", "7")
    assert r.rc == 0, str(r)
    year = json.loads((out / "virtual-year.json").read_text())
    assert "rolled the CA root over" in year["rollover"], year["rollover"]
    t = year["totals"]
    # Every device fetches /cacerts and renews once, spread over days 30..36; none is due otherwise.
    assert t["cacerts"] == 14 and t["rollover_renewals"] == 14 and t["renewals"] == 0, t
    assert [d["rollover_renewals"] for d in year["days"][30:37]] == [2] * 7, year["days"][28:40]
