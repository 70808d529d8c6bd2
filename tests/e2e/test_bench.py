"""The benchmark binaries next to the estlab binary under test (build/bench/): they answer --help,
refuse bad arguments with exit code 2, and the CA benchmark measures every key type with ratios
that are rates, not placeholders. Their speed is bench/run.sh's business, never asserted here."""

from __future__ import annotations

import re

import pytest

from conftest import find_binary, run

KEY_TYPES = ["ec-p256", "ec-p384", "rsa2048", "ed25519"]


def bench_binary(name: str):
    path = find_binary().parent.parent / "bench" / name
    if not path.is_file():
        pytest.fail(f"{path} is missing: the build makes the benchmarks beside cli/estlab", pytrace=False)
    return path


@pytest.mark.parametrize("name", ["estlab_ca_bench", "estlab_gateway_bench"])
def test_a_benchmark_answers_help_and_refuses_bad_arguments(name):
    helped = run([bench_binary(name), "--help"])
    assert helped.rc == 0, str(helped)
    assert "--seconds" in helped.out and "Exit codes" in helped.out, str(helped)

    for bad in (["--seconds", "0"], ["--seconds", "fast"], ["--no-such-option"]):
        refused = run([bench_binary(name), *bad])
        assert refused.rc == 2, f"{bad}: {refused}"
        assert refused.err.strip(), f"{bad}: no message says what is wrong\n{refused}"


@pytest.fixture(scope="module")
def ca_bench_run():
    """One short run of the CA benchmark, read by both tests below."""
    r = run([bench_binary("estlab_ca_bench"), "--seconds", "0.05"], timeout=120)
    assert r.rc == 0, str(r)
    return r


def test_the_ca_benchmark_measures_every_key_type_against_its_bound(ca_bench_run):
    r = ca_bench_run
    header = next(line for line in r.out.splitlines() if line.startswith("key"))
    columns = header.split()
    assert columns == ["key", "sign/s", "sign-init/s", "issue/s", "ratio", "verify/s", "csr-parse/s", "ratio",
                       "csr-build/s", "ratio"], header
    rows = {line.split()[0]: line.split()[1:] for line in r.out.splitlines() if line.split() and line.split()[0] in KEY_TYPES}
    assert sorted(rows) == sorted(KEY_TYPES), r.out
    for key, values in rows.items():
        numbers = dict(zip(columns[1:], values))
        assert all(re.fullmatch(r"[0-9]+(\.[0-9]+)?", v) for v in values), f"{key}: {values}"
        rates = [float(v) for c, v in zip(columns[1:], values) if c != "ratio"]
        assert all(rate > 0 for rate in rates), f"{key}: a rate of 0 means nothing was measured: {values}"
        # Each ratio is the rate before it over its bound: recompute the first one from the row.
        issue_ratio = float(values[3])
        assert issue_ratio == pytest.approx(float(numbers["issue/s"]) / float(numbers["sign/s"]), abs=0.01), f"{key}: {values}"


def test_the_ca_benchmark_measures_group_commit_from_one_and_several_threads(ca_bench_run):
    r = ca_bench_run
    lines = r.out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("P-256 issuance from several threads"))
    header = lines[start + 1].split()
    assert header[:4] == ["store", "1", "thread/s", "rec/commit"] and header[-2:] == ["rec/commit", "gain"], lines[start + 1]
    rows = {}
    for line in lines[start + 2:start + 4]:
        name, numbers = line[:28].strip(), line[28:].split()
        rows[name] = [float(v) for v in numbers]
    assert sorted(rows) == ["WAL, synchronous=NORMAL", "fsync every commit (FULL)"], r.out
    for name, (one, one_per_commit, several, several_per_commit, gain) in rows.items():
        assert one > 0 and several > 0, f"{name}: nothing was measured: {rows[name]}"
        # One thread never has company: each of its records is a commit of its own.
        assert one_per_commit == 1.0, f"{name}: {rows[name]}"
        assert several_per_commit >= 1.0, f"{name}: {rows[name]}"
        assert gain == pytest.approx(several / one, rel=0.05, abs=0.01), f"{name}: {rows[name]}"  # of rounded rates
