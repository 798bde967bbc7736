#!/usr/bin/env bash
# Runs the IPVS programming benchmark (ipvs/benches/program.rs) in one VM
# booted with virtme-ng, so that flushing the IPVS table between runs
# touches nothing else. Prints the benchmark's table.
#
#   ipvs/benches/ipvs.sh [--sizes 1000,10000,20000] [--dests 10] [--changes 101]
#
# Environment: MCWAN_VM_TIMEOUT (seconds, default 3600), MCWAN_VM_KERNEL,
# MCWAN_VM_MEMORY (default 4G), MCWAN_VM_CPUS (default 2).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

for tool in vng qemu-system-x86_64 ipvsadm jq cargo; do
    command -v "$tool" > /dev/null || { echo "bench: $tool not found" >&2; exit 1; }
done
kernel=${MCWAN_VM_KERNEL:-$(ls /boot/vmlinuz-*-amd64 2> /dev/null | sort -V | tail -n 1)}
[[ -r "$kernel" ]] || { echo "bench: no /boot/vmlinuz-*-amd64 kernel" >&2; exit 1; }

exe=$(cd "$root" && cargo bench -p ipvs-netlink --bench program --no-run --message-format=json |
    jq -r 'select(.reason == "compiler-artifact" and .target.name == "program") | .executable' | tail -n 1)
[[ -x "$exe" ]] || { echo "bench: build failed" >&2; exit 1; }

mkdir -p "$root/target"
results=$(mktemp -d "$root/target/bench-ipvs.XXXXXX")
args=$(printf "'%s' " "$@")
inner="modprobe -a ip_vs ip_vs_rr; '$exe' $args > '$results/bench.txt' 2> '$results/bench.err'; echo \$? > '$results/rc'"
echo "bench: booting $kernel, results in $results" >&2
timeout --kill-after=30 "${MCWAN_VM_TIMEOUT:-3600}" \
    vng --disable-kvm -r "$kernel" --user root \
        --memory "${MCWAN_VM_MEMORY:-4G}" --cpus "${MCWAN_VM_CPUS:-2}" \
        --rwdir "$results" -- "$inner" > "$results/console.log" 2>&1 < /dev/null

cat "$results/bench.txt" 2> /dev/null
if [[ "$(cat "$results/rc" 2> /dev/null)" != 0 ]]; then
    echo "bench: FAILED (rc $(cat "$results/rc" 2> /dev/null || echo none))" >&2
    tail -n 20 "$results/bench.err" "$results/console.log" >&2
    exit 1
fi
