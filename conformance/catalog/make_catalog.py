#!/usr/bin/env python3
"""Build requirements.yaml from the markdown sources. Run by hand after either source changes:

    python3 conformance/catalog/make_catalog.py \
        /work/shared/spec/catalog.md /work/shared/spec/protocol-gateway-profile.md \
        /work/shared/spec/field-bugs.md conformance/catalog/supplement.md \
        > conformance/catalog/requirements.yaml

supplement.md holds rows of the specifications RFC 9148 builds on (RFC 6347), in catalog.md's format.

Python 3 stdlib + PyYAML. Every table row whose first cell is a requirement ID becomes one entry,
in source order. The script stops (exit 1) when a row does not parse, an ID repeats, a Level has
no mapping below, or the number of entries differs from an independent count of `| <id> |` lines.
"""
import re
import sys

import yaml

# RFC 7030/9148 catalog: ID prefix -> spec.
SPEC_BY_PREFIX = {
    "7030": "RFC 7030",
    "8951": "RFC 8951",
    "8996": "RFC 8996",
    "5929": "RFC 5929",
    "9266": "RFC 9266",
    "csrattrs": "RFC 9908",
    "9148": "RFC 9148",
    "6347": "RFC 6347",  # supplement.md
}

# Source Level cell -> (level, verdict_level). Plain keywords keep their spelling; parenthesised
# words are kept lower-case without the parentheses. Where a cell joins several keywords
# ("MUST / SHOULD") the level keeps the cell and the verdict follows the strongest keyword: a
# failed check means a broken obligation, and a MAY/OPTIONAL part cannot be broken. Cells with
# no RFC 2119 keyword of their own (format, mapping, semantics, definition, ...) are "implied by EST
# without a keyword of its own" in the catalog's own words, so they warn like (derived).
LEVELS = {
    "MUST": ("MUST", "fail"),
    "MUST NOT": ("MUST NOT", "fail"),
    "REQUIRED": ("REQUIRED", "fail"),
    "SHALL": ("SHALL", "fail"),
    "SHOULD": ("SHOULD", "warn"),
    "SHOULD NOT": ("SHOULD NOT", "warn"),
    "RECOMMENDED": ("RECOMMENDED", "warn"),
    "MAY": ("MAY", "info"),
    "OPTIONAL": ("OPTIONAL", "info"),
    # keyword plus a qualifier
    "MUST (method per op)": ("MUST", "fail"),             # qualifier only scopes the row
    "MUST (derived)": ("derived", "warn"),                # every (derived) warns
    "SHOULD (derived)": ("derived", "warn"),
    "must (lower case)": ("must (lower case)", "warn"),   # not a BCP 14 keyword (RFC 8174)
    # compounds: strongest keyword
    "MUST / SHOULD": ("MUST / SHOULD", "fail"),
    "SHOULD / MUST": ("SHOULD / MUST", "fail"),
    "MUST / RECOMMENDED": ("MUST / RECOMMENDED", "fail"),
    "MAY / MUST": ("MAY / MUST", "fail"),
    "MUST / MAY": ("MUST / MAY", "fail"),
    "MUST / OPTIONAL": ("MUST / OPTIONAL", "fail"),
    "MUST / MAY / SHOULD": ("MUST / MAY / SHOULD", "fail"),
    "MUST NOT / MUST": ("MUST NOT / MUST", "fail"),
    "MUST NOT / should": ("MUST NOT / should", "fail"),
    "MAY / SHOULD": ("MAY / SHOULD", "warn"),
    "OPTIONAL / RECOMMENDED": ("OPTIONAL / RECOMMENDED", "warn"),
    # parenthesised
    "(required behaviour)": ("required behaviour", "fail"),
    "(derived)": ("derived", "warn"),
    "(should)": ("should", "warn"),
    "(format)": ("format", "warn"),
    "(mapping)": ("mapping", "warn"),
    "(semantics)": ("semantics", "warn"),
    "(definition)": ("definition", "warn"),
    "(expected)": ("expected", "warn"),
    "(CoAP)": ("coap", "warn"),
    "(server state)": ("server state", "warn"),
    "(policy)": ("policy", "warn"),
    "(update)": ("update", "warn"),
    "(note)": ("note", "warn"),
    "(no requirement on senders)": ("no requirement on senders", "warn"),
    "(MAY)": ("may", "info"),
    "(info)": ("info", "info"),
    "(record)": ("record", "info"),
    "record": ("record", "info"),
    "(config)": ("config", "info"),
    "(new, optional)": ("new, optional", "info"),
}

# Rows whose Black-box test column makes the whole row warn-only, against the keyword. A fallback
# inside one check ("warn on other 4xx") is not listed here: the scenario handles those per check.
VERDICT_OVERRIDES = {
    # MUST NOT, but "Warning only, because EST allows persistent connections" (catalog part 4 #23).
    "9266-4-a": "warn",
}

# Gateway-side rows a black-box suite cannot judge, with the reason (this suite's decision, kept
# here so that `estlab coverage` lists them and no scenario pretends to cover them).
UNTESTABLE = {
    "7030-3.5-g": "What an EST server tells its back-end CA (e.g. a CMC RA POP Witness) never reaches "
                  "the client; only a review of the server or a capture between server and CA shows it.",
    "7030-4.4-a": "Whether /serverkeygen is on in a product's default install is a fact about its "
                  "installer, not about the running configuration a black-box suite reaches; a "
                  "deployment that enabled it on purpose is not wrong.",
    "9148-5-j": "Entropy cannot be observed from outside; keys that differ across requests are "
                "necessary, not sufficient, so a passing check would claim more than it knows.",
}

SIDES = {
    "S": "server",
    "C": "client",
    "B": "both",
    "R": "proxy",
    "S, C": "both",
    "C (S warn)": "both",      # client MUST; the server half is a per-check warning
    "S, R": "server+proxy",
    "R, S": "server+proxy",
}

ID_RE = re.compile(r"^\|\s*([A-Za-z0-9]+-[A-Za-z0-9.\-]+)\s*\|")


def cells(line):
    """Split a markdown table row on unescaped pipes outside backticks."""
    out, cur, in_code = [], [], False
    body = line.strip()
    assert body.startswith("|") and body.endswith("|"), line
    for ch in body[1:-1]:
        if ch == "`":
            in_code = not in_code
        if ch == "|" and not in_code:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur).strip())
    return out


def die(msg):
    sys.stderr.write("make_catalog: " + msg + "\n")
    sys.exit(1)


def id_section(rid):
    # "7030-3.2.2-b" -> "3.2.2", "csrattrs-3.2-a" -> "3.2", "PG-ENR-3" -> "PG-ENR"
    if rid.startswith("PG-"):
        return rid.rsplit("-", 1)[0]
    return rid.split("-")[1]


def parse_catalog(path):
    rows, id_lines = [], 0
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not ID_RE.match(line):
                continue
            id_lines += 1
            c = cells(line)
            if len(c) != 6:
                die(f"{path}:{n}: expected 6 cells, got {len(c)}")
            rid, refs, level_cell, text, test, applies = c
            prefix = rid.split("-")[0]
            if prefix not in SPEC_BY_PREFIX:
                die(f"{path}:{n}: unknown ID prefix {prefix!r}")
            if level_cell not in LEVELS:
                die(f"{path}:{n}: no mapping for Level {level_cell!r}")
            if applies not in SIDES:
                die(f"{path}:{n}: no mapping for Applies {applies!r}")
            level, verdict = LEVELS[level_cell]
            verdict = VERDICT_OVERRIDES.get(rid, verdict)
            rows.append({
                "id": rid,
                "spec": SPEC_BY_PREFIX[prefix],
                "section": id_section(rid),
                "refs": refs,
                "level": level,
                "verdict_level": verdict,
                "side": SIDES[applies],
                "text": text,
                "test": test,
            })
    return rows, id_lines


def parse_profile(path):
    rows, id_lines, heading = [], 0, ""
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.startswith("## "):
                heading = line[3:].strip()
            m = ID_RE.match(line)
            if not m or not m.group(1).startswith("PG-"):
                continue
            id_lines += 1
            c = cells(line)
            if len(c) != 3:
                die(f"{path}:{n}: expected 3 cells, got {len(c)}")
            rid, text, test = c
            rows.append({
                "id": rid,
                "spec": "protocol-gateway",
                "section": id_section(rid),
                "refs": "protocol-gateway profile: " + heading,
                "level": "product rule",  # no keyword column; a broken rule is a failure
                "verdict_level": "fail",
                "side": "proxy" if rid.startswith("PG-COAP-") else "server",
                "text": text,
                "test": test,
            })
    return rows, id_lines


FB_RE = re.compile(r"^\|\s*(FB-\d+)\s+`([^`]+)`\s*\|")


def parse_field_bugs(path, known_ids):
    bugs, id_lines = [], 0
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            m = FB_RE.match(line)
            if not m:
                continue
            id_lines += 1
            c = cells(line)
            if len(c) != 5:
                die(f"{path}:{n}: expected 5 cells, got {len(c)}")
            _, seen_in, symptom, scenario, rows = c
            ids = [r.strip() for r in rows.split(",") if r.strip()]
            for rid in ids:
                if rid not in known_ids:
                    die(f"{path}:{n}: {m.group(1)} names unknown requirement {rid!r}")
            bugs.append({"id": m.group(1), "name": m.group(2), "seen_in": seen_in, "symptom": symptom,
                         "test": scenario, "requirements": ids})
    if len(bugs) != id_lines:
        die("field bug count mismatch")
    return bugs


def main(argv):
    if len(argv) != 5:
        die("usage: make_catalog.py catalog.md protocol-gateway-profile.md field-bugs.md supplement.md > requirements.yaml")
    cat, cat_lines = parse_catalog(argv[1])
    pg, pg_lines = parse_profile(argv[2])
    extra, extra_lines = parse_catalog(argv[4])
    if len(cat) != cat_lines or len(pg) != pg_lines or len(extra) != extra_lines:
        die("row count mismatch")
    rows = cat + pg + extra
    bugs = parse_field_bugs(argv[3], {r["id"] for r in rows})
    for name, table in (("VERDICT_OVERRIDES", VERDICT_OVERRIDES), ("UNTESTABLE", UNTESTABLE)):
        unused = set(table) - {r["id"] for r in rows}
        if unused:
            die(name + " names unknown ids: " + ", ".join(sorted(unused)))
    for r in rows:
        if r["id"] in UNTESTABLE:
            r["untestable"] = UNTESTABLE[r["id"]]
    seen = set()
    for r in rows:
        if r["id"] in seen:
            die("duplicate id " + r["id"])
        seen.add(r["id"])
        if r["spec"] != "protocol-gateway" and r["section"] not in r["refs"]:
            sys.stderr.write(f"note: {r['id']}: section {r['section']} not in refs {r['refs']!r}\n")
    counts = {}
    for r in rows:
        counts[r["spec"]] = counts.get(r["spec"], 0) + 1
    sys.stderr.write(f"{len(rows)} requirements: " + ", ".join(f"{k} {v}" for k, v in counts.items()) +
                     f"; {len(bugs)} field bugs\n")

    header = (
        "# EST / EST-coaps requirement catalog as data. GENERATED by make_catalog.py from\n"
        "# catalog.md, protocol-gateway-profile.md, field-bugs.md and supplement.md (see the script for\n"
        "# the Level mapping and the untestable rows); regenerate rather than edit by hand.\n"
        "#\n"
        "# requirements: id, spec, section (from the id), refs (the source's RFC/section cell), level\n"
        "# (source keyword), verdict_level (what a failed check yields: fail | warn | info),\n"
        "# side (server | client | both | proxy | server+proxy), text, test, and untestable (why a\n"
        "# black-box suite cannot judge the row) where that applies.\n"
        "# field_bugs: id, name, seen_in, symptom, test, requirements (catalog rows).\n"
    )
    body = yaml.safe_dump({"version": 1, "requirements": rows, "field_bugs": bugs}, sort_keys=False, allow_unicode=True,
                          width=100000, default_flow_style=False)
    sys.stdout.write(header + body)


if __name__ == "__main__":
    main(sys.argv)
