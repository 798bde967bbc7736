#!/usr/bin/env bash
# Load-tests the DNS server against Knot DNS on this machine, loopback only.
#
#   dns/bench/compare_knot.sh [services] [seconds] [rounds]
#
# Both servers get core 0 and serve the same zone (one ClusterSetIP service
# with an SRV record per name, as `cargo run --example serve` builds it);
# dnsperf runs on core 1 with the same query mix (60% A, 20% SRV, 10% AAAA
# NODATA, 10% NXDOMAIN). Prints QPS and server CPU time per query, the latter
# being what "QPS on one core" comes to once the client is not the bottleneck.
# Needs: knot, dnsperf, python3, taskset. Stops only the servers it started.
set -euo pipefail

services=${1:-1000}
seconds=${2:-8}
rounds=${3:-3}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
knot_port=5399
our_port=5300
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

python3 - "$services" "$work" <<'PY'
import random, sys
count, work = int(sys.argv[1]), sys.argv[2]
zone = ["$ORIGIN clusterset.local.", "$TTL 5",
        "@ SOA ns.dns.clusterset.local. hostmaster.clusterset.local. 1 7200 1800 86400 5",
        "@ NS ns.dns", 'dns-version TXT "1.0.0"']
for i in range(count):
    name = f"svc-{i}.ns-{i % 10}.svc"
    zone += [f"{name} A 10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}",
             f"_http._tcp.{name} SRV 0 100 80 {name}"]
open(f"{work}/clusterset.local.zone", "w").write("\n".join(zone) + "\n")
random.seed(1)
queries = []
for _ in range(30000):
    i = random.randrange(count)
    name = f"svc-{i}.ns-{i % 10}.svc.clusterset.local"
    r = random.random()
    queries.append(f"{name} A" if r < 0.6 else f"_http._tcp.{name} SRV" if r < 0.8
                   else f"{name} AAAA" if r < 0.9 else f"nope-{i}.ns-{i % 10}.svc.clusterset.local A")
open(f"{work}/queries.txt", "w").write("\n".join(queries) + "\n")
PY

cat > "$work/knot.conf" <<CONF
server:
    listen: 127.0.0.1@$knot_port
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
    rundir: $work
database:
    storage: $work
zone:
  - domain: clusterset.local
    file: $work/clusterset.local.zone
log:
  - target: stderr
    any: warning
CONF

cargo build --quiet --release -p mcwan-dns --example serve --manifest-path "$root/Cargo.toml"
taskset -c 0 knotd -c "$work/knot.conf" >"$work/knot.log" 2>&1 &
pids+=($!)
taskset -c 0 "$root/target/release/examples/serve" "127.0.0.1:$our_port" "$services" >"$work/serve.log" 2>&1 &
pids+=($!)
sleep 2
knot_pid=${pids[0]}
our_pid=${pids[1]}

measure() { # name pid port
    local t0 t1 out done qps
    t0=$(awk '{print $14 + $15}' "/proc/$2/stat")
    out=$(taskset -c 1 dnsperf -s 127.0.0.1 -p "$3" -d "$work/queries.txt" -l "$seconds" -c 4 -q 500 2>&1)
    t1=$(awk '{print $14 + $15}' "/proc/$2/stat")
    done=$(awk '/Queries completed/ {print $3}' <<<"$out")
    qps=$(awk '/Queries per second/ {print $4}' <<<"$out")
    awk -v n="$1" -v q="$qps" -v d="$done" -v c="$((t1 - t0))" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%-6s qps %8.0f   cpu/query %5.2f us\n", n, q, c / hz * 1e6 / d }'
}

for _ in $(seq "$rounds"); do
    measure knot "$knot_pid" "$knot_port"
    measure mcwan "$our_pid" "$our_port"
done
