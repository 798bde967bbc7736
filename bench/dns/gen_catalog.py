#!/usr/bin/env python3
"""Writes the benchmark's static catalog (docs/catalog.md) into DIR.

cluster-1 exports N services spread over NS namespaces:
  - the first N - HEADLESS are ClusterSetIP services `svc-NNNNN`, one named port http 8080/TCP,
    one EndpointSlice with 2 ready endpoints;
  - the last HEADLESS are headless services `hl-NNNNN` (clusterIP: None), one named port
    pg 5432/TCP, one EndpointSlice with 3 ready endpoints with hostnames `<svc>-0..2`.
Every ServiceExport names the WANPolicy `bench` (port 20000, portCount 20000), present in both
clusters. cluster-2 only has the namespaces (and the policy): it imports everything.
"""
import argparse
import os

import cli  # bench/dns/cli.py


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--services", type=int, default=10000)
    ap.add_argument("--headless", type=int, default=1000)
    ap.add_argument("--namespaces", type=int, default=50)
    a = ap.parse_args()

    os.makedirs(os.path.join(a.dir, "cluster-1"), exist_ok=True)
    os.makedirs(os.path.join(a.dir, "cluster-2"), exist_ok=True)
    with open(os.path.join(a.dir, "clusterset.yaml"), "w") as f:
        f.write(
            "name: dns-bench\nwan: wireguard\ninnerNetwork: 10.255.0.0/16\nclusters:\n"
            "  - id: cluster-1\n    index: 1\n    gateway:\n      wanAddress: 192.0.2.1\n"
            "  - id: cluster-2\n    index: 2\n    gateway:\n      wanAddress: 192.0.2.2\n"
        )
    namespaces = [f"ns-{i:03d}" for i in range(a.namespaces)]
    ns_yaml = "".join(f"---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: {n}\n" for n in namespaces)
    policy = (
        "---\napiVersion: mcw.l7mp.io/v1alpha1\nkind: WANPolicy\nmetadata:\n  name: bench\n"
        "spec:\n  tunnel: default\n  port: 20000\n  portCount: 20000\n"
    )
    for c in ("cluster-1", "cluster-2"):
        with open(os.path.join(a.dir, c, "namespaces.yaml"), "w") as f:
            f.write(ns_yaml)
        with open(os.path.join(a.dir, c, "wanpolicies.yaml"), "w") as f:
            f.write(policy)

    docs = []
    for i in range(a.services):
        ns = namespaces[i % len(namespaces)]
        headless = i >= a.services - a.headless
        name = f"hl-{i:05d}" if headless else f"svc-{i:05d}"
        # pod addresses 10.<1..>.x.y, unique per endpoint
        def addr(k):
            n = i * 4 + k
            return f"10.{1 + n // 65536}.{(n // 256) % 256}.{n % 256}"
        if headless:
            pname, pnum = "pg", 5432
            svc_extra = "  clusterIP: None\n"
            eps = "".join(
                f"- addresses: [\"{addr(k)}\"]\n  hostname: {name}-{k}\n  conditions: {{ready: true}}\n"
                for k in range(3)
            )
        else:
            pname, pnum = "http", 8080
            svc_extra = ""
            eps = "".join(f"- addresses: [\"{addr(k)}\"]\n  conditions: {{ready: true}}\n" for k in range(2))
        docs.append(
            f"---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {ns}\n"
            f"spec:\n{svc_extra}  selector:\n    app: {name}\n  ports:\n"
            f"  - name: {pname}\n    port: {pnum}\n    protocol: TCP\n"
            f"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n"
            f"  name: {name}-abcde\n  namespace: {ns}\n  labels:\n    kubernetes.io/service-name: {name}\n"
            f"addressType: IPv4\nports:\n- name: {pname}\n  port: {pnum}\n  protocol: TCP\nendpoints:\n{eps}"
            f"---\napiVersion: multicluster.x-k8s.io/v1alpha1\nkind: ServiceExport\nmetadata:\n"
            f"  name: {name}\n  namespace: {ns}\n  annotations:\n    mcw.l7mp.io/mc-wan-policy: bench\n"
        )
    # 10 files of ~1000 services each
    per = max(1, (len(docs) + 9) // 10)
    for k in range(0, len(docs), per):
        with open(os.path.join(a.dir, "cluster-1", f"services-{k // per:02d}.yaml"), "w") as f:
            f.write("".join(docs[k:k + per]))


if __name__ == "__main__":
    cli.run(main)
