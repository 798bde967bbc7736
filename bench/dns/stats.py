#!/usr/bin/env python3
"""dnsperf output -> JSON, and the final table.

  stats.py pass OUT PID SERVER_CPU CLIENT_CPU TIMEOUT -- DNSPERF ARGS...
                                  runs dnsperf (its output to OUT), prints one JSON line: the
                                  summary, percentiles when -v was given, and CPU accounting
  stats.py summary OUT            dnsperf's summary (any run): sent, completed, lost, qps, avg latency
  stats.py latency OUT            plus percentiles from -v lines ("> RCODE name type secs";
                                  "> T name" = timed out, "> I name" = interrupted)
  stats.py line PASS.json LABEL   one line about a pass
  stats.py report RESULTS.json    the table (RESULTS: {"servers": {name: {...}}, ...})
"""
import json
import os
import re
import resource
import subprocess
import sys
import time

import cli  # bench/dns/cli.py

HZ = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid):
    """utime + stime of a process and all its threads, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def core_ticks(cpu):
    """(busy, total, softirq) ticks of one core: busy = user nice system irq softirq steal."""
    with open("/proc/stat") as f:
        for line in f:
            p = line.split()
            if p[0] == f"cpu{cpu}":
                v = [int(x) for x in p[1:9]]
                return v[0] + v[1] + v[2] + v[5] + v[6] + v[7], sum(v), v[6]
    raise SystemExit(f"stats: no cpu{cpu} in /proc/stat")


def run_pass(out, pid, server_cpu, client_cpu, limit, cmd):
    pid = int(pid)
    c0, s0, k0 = proc_cpu_s(pid), core_ticks(server_cpu), core_ticks(client_cpu)
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    w0 = time.monotonic()
    with open(out, "w") as f:
        code = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, timeout=float(limit)).returncode
    wall = time.monotonic() - w0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    c1, s1, k1 = proc_cpu_s(pid), core_ticks(server_cpu), core_ticks(client_cpu)
    text = open(out, errors="replace").read()
    if code < 0 or "Testing complete (interruption)" in text:
        raise KeyboardInterrupt  # Ctrl-C: dnsperf stopped early
    if code != 0:
        sys.stderr.write(text[-3000:])
        raise SystemExit(f"stats: dnsperf exited with {code}")
    r = latency(out) if "-v" in cmd else summary(out)
    client = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    busy = lambda a, b: 100.0 * (b[0] - a[0]) / (b[1] - a[1]) if b[1] > a[1] else 0.0
    r.update({
        "wall_s": wall,
        "server_cpu_s": c1 - c0,
        "client_cpu_s": client,
        # share of its core each side got, and how busy the cores were with anything
        "server_share": 100.0 * (c1 - c0) / r["runtime_s"] if r["runtime_s"] else 0.0,
        "client_share": 100.0 * client / wall if wall else 0.0,
        "server_core_busy": busy(s0, s1),
        # network receive work the kernel does outside any process (loopback delivery)
        "server_core_softirq": 100.0 * (s1[2] - s0[2]) / (s1[1] - s0[1]) if s1[1] > s0[1] else 0.0,
        "client_core_busy": busy(k0, k1),
    })
    return r


def summary(path):
    text = open(path, errors="replace").read()

    def num(label, cast=float):
        m = re.search(r"^\s*" + re.escape(label) + r":\s+([0-9.]+)", text, re.M)
        if not m:
            raise SystemExit(f"stats: no '{label}' in {path}; dnsperf said:\n{text[-2000:]}")
        return cast(m.group(1))

    m = re.search(r"Average Latency \(s\):\s+([0-9.]+) \(min ([0-9.]+), max ([0-9.]+)\)", text)
    size = re.search(r"Average packet size:\s+request (\d+), response (\d+)", text)
    codes = re.search(r"Response codes:[ \t]*(.*)$", text, re.M)
    return {
        "sent": num("Queries sent", int),
        "completed": num("Queries completed", int),
        "lost": num("Queries lost", int),
        "qps": num("Queries per second"),
        "runtime_s": num("Run time (s)"),
        "avg_latency_s": float(m.group(1)) if m else None,
        "max_latency_s": float(m.group(3)) if m else None,
        "rcodes": codes.group(1).strip() if codes else "",
        "response_bytes": int(size.group(2)) if size else None,
    }


def pct(sorted_values, p):
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def latency(path):
    out = summary(path)
    lat, timeouts, interrupted = [], 0, 0
    with open(path, errors="replace") as f:
        for line in f:
            if not line.startswith("> "):
                continue
            parts = line.split()
            if parts[1] == "T":
                timeouts += 1
            elif parts[1] == "I":
                interrupted += 1
            elif len(parts) >= 5:
                try:
                    lat.append(float(parts[-1]))
                except ValueError:
                    pass
    lat.sort()
    out.update({
        "samples": len(lat),
        "timeouts": timeouts,
        "interrupted": interrupted,
        "p50_s": pct(lat, 50),
        "p99_s": pct(lat, 99),
        "p999_s": pct(lat, 99.9),
        "mean_s": sum(lat) / len(lat) if lat else None,
    })
    return out


def line(path, label):
    """One pass, one line: what dnsperf saw and where the CPU went."""
    r = json.load(open(path))
    per_cpu = r["completed"] / r["server_cpu_s"] if r["server_cpu_s"] else 0.0
    print(f"   {label:17} {r['qps']:7.0f} qps  lost {r['lost']}/{r['sent']} | server {r['server_cpu_s']:.1f} CPU-s "
          f"= {r['server_share']:.0f}% of its core (+{r['server_core_softirq']:.0f}% softirq, core "
          f"{r['server_core_busy']:.0f}% busy), {per_cpu:.0f} q/CPU-s | dnsperf {r['client_share']:.0f}% of its core")


def ms(v):
    return "-" if v is None else f"{v * 1000:.3f}"


def report(path):
    r = json.load(open(path))
    s = r["servers"]
    print()
    print(f"DNS benchmark: {r['services']} services ({r['headless']} headless), "
          f"{r['zone_records']} zone records, {r['queries']} queries in the file")
    print(f"saturation: dnsperf -c {r['clients']} -q {r['outstanding']} -l {r['duration']}, "
          f"passes in order {' '.join(r['order'])}; latency: -Q {r['lat_qps']} -l {r['lat_duration']} -v")
    print()
    hdr = ("server", "QPS", "QPS/CPU-s", "lost", "sat avg ms", "p50 ms", "p99 ms", "p99.9 ms",
           "avg ms", "lat lost", "resp B", "RSS MiB", "peak MiB")
    rows = []
    names = [n for n in ("mcwan", "knot", "coredns", "coredns-mc") if n in s]
    for name in names:
        x = s[name]
        rows.append((
            name,
            f"{x['qps']:.0f}",
            f"{x['qps_per_cpu_s']:.0f}",
            f"{x['lost']}/{x['sent']}",
            ms(x["sat_avg_latency_s"]),
            ms(x["lat"]["p50_s"]),
            ms(x["lat"]["p99_s"]),
            ms(x["lat"]["p999_s"]),
            ms(x["lat"]["mean_s"]),
            f"{x['lat']['lost']}/{x['lat']['sent']}",
            f"{x['passes'][0]['response_bytes']}",
            f"{x['rss_kib'] / 1024:.1f}",
            f"{x['hwm_kib'] / 1024:.1f}",
        ))
    widths = [max(len(str(v)) for v in col) for col in zip(hdr, *rows)]
    line = lambda vals: "  ".join(str(v).rjust(w) for v, w in zip(vals, widths))
    print(line(hdr))
    for row in rows:
        print(line(row))
    print()
    for name in names:
        x = s[name]
        passes = ", ".join(
            f"{p['qps']:.0f} qps ({p['server_share']:.0f}% of a core)" for p in x["passes"])
        print(f"  {name} saturation passes: {passes}")
    for name in names:
        rl = s[name].get("reload")
        if rl:
            t = "never" if rl["reload_s"] is None else f"{rl['reload_s']:.2f} s"
            print(f"  {name} reload (+1 service, 200 qps probe): new name after {t}, "
                  f"{rl['unanswered']} probes unanswered, longest gap {rl['max_gap_s'] * 1000:.0f} ms")
    m, k = s["mcwan"], s["knot"]
    ratio = m["qps"] / k["qps"] if k["qps"] else float("nan")
    print()
    for peer in names[1:]:
        p = s[peer]
        r_qps = m["qps"] / p["qps"] if p["qps"] else float("nan")
        eff = m["qps_per_cpu_s"] / p["qps_per_cpu_s"] if p["qps_per_cpu_s"] else float("nan")
        print(f"mcwan/{peer} QPS ratio: {r_qps:.2f}  (per server CPU-second: {eff:.2f}); "
              f"RSS ratio {m['rss_kib'] / p['rss_kib']:.1f}x")
    if ratio >= 0.8:
        print(f"GOAL MET: mcwan reaches {ratio:.2f}x Knot's QPS (goal >= 0.80x)")
    else:
        print(f"GOAL NOT MET: mcwan reaches {ratio:.2f}x Knot's QPS (goal >= 0.80x)")
    for w in r.get("warnings", []):
        print(f"WARNING: {w}")


def main():
    cmd, path = sys.argv[1], sys.argv[2]
    if cmd == "pass":
        pid, server_cpu, client_cpu, limit, sep = sys.argv[3:8]
        if sep != "--":
            raise SystemExit("stats: pass OUT PID SERVER_CPU CLIENT_CPU TIMEOUT -- CMD...")
        print(json.dumps(run_pass(path, pid, server_cpu, client_cpu, limit, sys.argv[8:])))
    elif cmd == "summary":
        print(json.dumps(summary(path)))
    elif cmd == "latency":
        print(json.dumps(latency(path)))
    elif cmd == "line":
        line(path, sys.argv[3])
    elif cmd == "report":
        report(path)
    else:
        raise SystemExit(f"stats: unknown command {cmd}")


if __name__ == "__main__":
    cli.run(main)
