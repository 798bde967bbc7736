#!/bin/bash
# Runs inside the VM booted by tests/vm/run.
#
# usage: inside.sh RESULTS_DIR NAME|EXECUTABLE|WORKDIR...
#
# Loads the kernel modules the suites need, runs each test binary with
# --ignored --test-threads=1 in its package directory, and leaves in
# RESULTS_DIR (shared with the host): NAME.log, NAME.rc, modules.log, and
# `done` once every suite has run.

results=$1
shift
echo "booted $(uname -r)" > "$results/booted"

modprobe -a ip_vs ip_vs_rr ip_vs_wrr ip_vs_sh wireguard dummy nf_conntrack \
    > "$results/modules.log" 2>&1 || echo "modprobe failed: $?" >> "$results/modules.log"
ip link set lo up

for spec in "$@"; do
    IFS='|' read -r name exe workdir <<< "$spec"
    (
        cd "$workdir" || exit 97
        MCWAN_TEST_LOGS="$results" RUST_BACKTRACE=0 "$exe" --ignored --test-threads=1
    ) > "$results/$name.log" 2>&1
    echo $? > "$results/$name.rc"
done

echo done > "$results/done"
