#!/usr/bin/env python3
"""Turns the `dns` records of `mcwan plan -o json` into a Knot zone file and a dnsperf query file.

Zone: the same data mcwan serves for clusterset.local (dns/src/zone): SOA and NS at the apex
(ns.dns.clusterset.local., hostmaster.clusterset.local., 7200 1800 86400 5), TXT dns-version
"1.0.0", and per service
  ClusterSetIP: A/AAAA <svc>.<ns>.svc, SRV _<port>._<proto>.<svc>.<ns>.svc 0 100 <port> <svc>...
  Headless:     A/AAAA <svc>.<ns>.svc (every endpoint), A/AAAA <host>.<cluster>.<svc>.<ns>.svc,
                SRV _<port>._<proto>.<svc>.<ns>.svc 0 100 <port> <host>.<cluster>.<svc>... per endpoint
all with TTL 5.

Queries (--queries N lines, seeded, shuffled): 80% A for services, 10% SRV for named ports,
5% A for headless per-endpoint names, 5% A for names that do not exist (NXDOMAIN).
Also writes DIR/samples.txt: SAMPLES queries of each kind for the dig comparison.
"""
import argparse
import ipaddress
import json
import random

import cli  # bench/dns/cli.py

ORIGIN = "clusterset.local."


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("plan")
    ap.add_argument("--zone", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--samples", required=True)
    ap.add_argument("--count", type=int, default=200000)
    ap.add_argument("--per-kind", type=int, default=20)
    ap.add_argument("--ttl", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    with open(a.plan) as f:
        records = json.load(f)["dns"]
    if not records:
        raise SystemExit("make_zone: the plan has no dns records")
    ttl = a.ttl
    out = [
        f"$ORIGIN {ORIGIN}",
        f"$TTL {ttl}",
        f"@ {ttl} IN SOA ns.dns.clusterset.local. hostmaster.clusterset.local. 1 7200 1800 86400 5",
        f"@ {ttl} IN NS ns.dns.clusterset.local.",
        f'dns-version {ttl} IN TXT "1.0.0"',
    ]

    def addr_rr(owner, ip):
        rtype = "AAAA" if ipaddress.ip_address(ip).version == 6 else "A"
        return f"{owner} {ttl} IN {rtype} {ip}"

    svc_names, srv_names, ep_names = [], [], []
    for r in records:
        base = f"{r['name']}.{r['namespace']}.svc"
        kind = r["kind"]
        named = [p for p in r.get("ports", []) if p.get("name")]
        srv_owners = [(f"_{p['name']}._{p.get('protocol', 'TCP').lower()}.{base}", p["port"]) for p in named]
        if kind["type"] == "ClusterSetIP":
            for ip in sorted(set(kind["ips"])):
                out.append(addr_rr(base, ip))
            for owner, port in srv_owners:
                out.append(f"{owner} {ttl} IN SRV 0 100 {port} {base}.{ORIGIN}")
                srv_names.append(owner)
        elif kind["type"] == "Headless":
            eps = {}
            for ep in kind.get("endpoints", []):
                eps.setdefault((ep["cluster_id"], ep["hostname"]), set()).update(ep["ips"])
            all_ips = sorted({ip for ips in eps.values() for ip in ips})
            for ip in all_ips:
                out.append(addr_rr(base, ip))
            for (cluster, host), ips in sorted(eps.items()):
                if not ips:
                    continue
                name = f"{host}.{cluster}.{base}"
                for ip in sorted(ips):
                    out.append(addr_rr(name, ip))
                ep_names.append(name)
                for owner, port in srv_owners:
                    out.append(f"{owner} {ttl} IN SRV 0 100 {port} {name}.{ORIGIN}")
            if eps:
                srv_names.extend(owner for owner, _ in srv_owners)
        else:
            raise SystemExit(f"make_zone: unknown kind {kind['type']!r}")
        if kind["type"] == "ClusterSetIP" or kind.get("endpoints"):
            svc_names.append(base)
    with open(a.zone, "w") as f:
        f.write("\n".join(out) + "\n")

    rng = random.Random(a.seed)
    srv_names = sorted(set(srv_names))

    def nx():
        n = rng.randrange(10**9)
        return f"missing-{n}.ns-{n % 97:03d}.svc"

    kinds = [("A", svc_names, 80), ("SRV", srv_names, 10), ("A", ep_names, 5), ("A", None, 5)]
    labels = ["service A", "SRV", "headless endpoint A", "NXDOMAIN A"]
    lines = []
    for (qtype, names, pct), label in zip(kinds, labels):
        n = a.count * pct // 100
        if names is None:
            lines += [f"{nx()}.{ORIGIN} {qtype}" for _ in range(n)]
        else:
            if not names:
                raise SystemExit(f"make_zone: no names for {label}")
            lines += [f"{rng.choice(names)}.{ORIGIN} {qtype}" for _ in range(n)]
    rng.shuffle(lines)
    with open(a.queries, "w") as f:
        f.write("\n".join(lines) + "\n")

    with open(a.samples, "w") as f:
        for (qtype, names, _), label in zip(kinds, labels):
            for _ in range(a.per_kind):
                name = nx() if names is None else rng.choice(names)
                f.write(f"{name}.{ORIGIN} {qtype}\n")
        # the apex and the version record, once each
        f.write(f"dns-version.{ORIGIN} TXT\n{ORIGIN} NS\n")
    print(f"zone: {len(out)} records, {len(svc_names)} services, {len(srv_names)} SRV names, "
          f"{len(ep_names)} endpoint names; queries: {len(lines)}")


if __name__ == "__main__":
    cli.run(main)
