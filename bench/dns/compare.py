#!/usr/bin/env python3
"""Asks two servers the same sample queries with dig and compares rcode and answer set.

  compare.py SAMPLES PORT_A PORT_B [NAME_A NAME_B [--coredns-multicluster]]

With --coredns-multicluster, the differences CoreDNS's kubernetes plugin is known to have from
the MCS DNS specification that mcwan implements are noted, not failed: SRV weights (CoreDNS
splits 100 among a name's records, mcwan gives each 100; the weight has no meaning among
records of equal priority that a client picks from at random), the schema version (CoreDNS
answers its cluster.local schema "1.1.0" with a TTL of 28800; the MCS specification's schema is
"1.0.0"), and the zone apex NS record (CoreDNS has none in a `multicluster` zone).

SAMPLES: lines "name type". Records are compared as sets of normalized text (owner, TTL, class,
type, data; lower-cased). The additional section is compared too (OPT left out); a difference
there is printed as a note, not a failure. Exit 1 on any rcode or answer difference.
"""
import subprocess
import sys

import cli  # bench/dns/cli.py


def ask(port, name, qtype):
    out = subprocess.run(
        ["dig", "@127.0.0.1", "-p", str(port), name, qtype, "+norec", "+tries=2", "+time=2",
         "+noall", "+comments", "+answer", "+additional", "+nottlunits"],
        capture_output=True, text=True, timeout=15,
    ).stdout
    rcode, section, answer, additional = None, None, set(), set()
    for line in out.splitlines():
        if "->>HEADER<<-" in line and "status:" in line:
            rcode = line.split("status:")[1].split(",")[0].strip()
        elif line.startswith(";; ANSWER SECTION"):
            section = answer
        elif line.startswith(";; ADDITIONAL SECTION"):
            section = additional
        elif line.startswith(";") or not line.strip():
            if line.startswith(";;") and "SECTION" in line:
                section = None
            continue
        elif section is not None:
            section.add(" ".join(line.lower().split()))
    return rcode, answer, additional


def srv_without_weight(record):
    """An SRV record's text with its weight left out (other records as they are)."""
    f = record.split()
    if len(f) == 8 and f[3] == "srv":
        del f[5]
    return " ".join(f)


def main():
    samples, port_a, port_b = sys.argv[1], sys.argv[2], sys.argv[3]
    na, nb = (sys.argv[4], sys.argv[5]) if len(sys.argv) > 5 else ("mcwan", "knot")
    lenient = "--coredns-multicluster" in sys.argv[6:]
    known = 0
    failures, notes, n = 0, 0, 0
    kinds = {}
    for line in open(samples):
        if not line.strip():
            continue
        name, qtype = line.split()
        n += 1
        a, b = ask(port_a, name, qtype), ask(port_b, name, qtype)
        kinds[qtype] = kinds.get(qtype, 0) + 1
        if a[0] is None or b[0] is None:
            print(f"  FAIL {name} {qtype}: no answer ({na} {a[0]}, {nb} {b[0]})")
            failures += 1
        elif lenient and a[0] == b[0] and (
                {srv_without_weight(r) for r in a[1]} == {srv_without_weight(r) for r in b[1]}
                or name.startswith("dns-version.") and qtype == "TXT"
                or qtype == "NS" and name.count(".") == 2) and a[1] != b[1]:
            known += 1
            if known <= 3:
                print(f"  known difference {name} {qtype}: {na} {sorted(a[1])} / {nb} {sorted(b[1])}")
        elif a[0] != b[0] or a[1] != b[1]:
            print(f"  FAIL {name} {qtype}: {na} {a[0]} {sorted(a[1])} / {nb} {b[0]} {sorted(b[1])}")
            failures += 1
        elif a[2] != b[2]:
            notes += 1
            if notes <= 3:
                print(f"  note {name} {qtype}: additional differs: {na} {sorted(a[2])} / {nb} {sorted(b[2])}")
        if a[0] == "NOERROR" and not a[1] and qtype in ("A", "SRV"):
            print(f"  FAIL {name} {qtype}: empty answer from both")
            failures += 1
    print(f"compared {n} queries ({', '.join(f'{v} {k}' for k, v in sorted(kinds.items()))}): "
          f"{failures} differ in rcode/answer, {notes} in the additional section only"
          + (f", {known} by a known difference" if lenient else ""))
    sys.exit(1 if failures or n == 0 else 0)


if __name__ == "__main__":
    cli.run(main)
