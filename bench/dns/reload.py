#!/usr/bin/env python3
"""Reload under load: how long a server goes on answering while it reloads its data.

  reload.py PORT STEADY_NAME NEW_NAME -- TRIGGER COMMAND...

Sends an A query for STEADY_NAME every INTERVAL (5 ms, 200 qps) and, every 50 ms, one for
NEW_NAME (which the reload adds). After 1 s it runs the trigger command, then goes on until
NEW_NAME resolves, plus 1 s (at most 60 s in all). Prints one JSON line:
  reload_s      trigger -> NEW_NAME first answered with data
  unanswered    STEADY_NAME queries without an answer within 2 s
  max_gap_s     the longest time without any response
  max_latency_s the slowest STEADY_NAME answer
"""
import json
import select
import socket
import struct
import subprocess
import sys
import time

import cli  # bench/dns/cli.py

INTERVAL = 0.005
TIMEOUT = 2.0
LIMIT = 60.0


def query(qid, name):
    q = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00" + struct.pack(">HH", 1, 1)


def main():
    port, steady, new = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    trigger = sys.argv[5:] if sys.argv[4] == "--" else sys.exit("reload.py: -- TRIGGER missing")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect(("127.0.0.1", port))
    s.setblocking(False)
    pending = {}  # id -> (sent, is_new)
    qid, start = 0, time.monotonic()
    next_send, triggered_at, reloaded_at = start, None, None
    last_response, max_gap, max_lat, unanswered, answered = start, 0.0, 0.0, 0, 0
    while True:
        now = time.monotonic()
        if triggered_at is None and now - start >= 1.0:
            triggered_at = now
            subprocess.run(trigger, check=True, timeout=30)
        if reloaded_at is not None and now - reloaded_at > 1.0 or now - start > LIMIT:
            break
        if now >= next_send:
            qid = (qid + 1) % 65536
            is_new = qid % 10 == 0
            try:
                s.send(query(qid, new if is_new else steady))
                pending[qid] = (now, is_new)
            except BlockingIOError:
                pass
            next_send += INTERVAL
        for k in [k for k, (t, _) in pending.items() if now - t > TIMEOUT]:
            if not pending.pop(k)[1]:
                unanswered += 1
        r, _, _ = select.select([s], [], [], max(0.0, min(next_send - time.monotonic(), 0.005)))
        if not r:
            continue
        while True:
            try:
                data = s.recv(4096)
            except (BlockingIOError, ConnectionRefusedError):
                break
            now = time.monotonic()
            rid, _, _, ancount = struct.unpack(">HHHH", data[:8])
            if rid not in pending:
                continue
            sent, is_new = pending.pop(rid)
            max_gap = max(max_gap, now - last_response)
            last_response = now
            if is_new:
                if ancount and triggered_at is not None and reloaded_at is None and sent >= triggered_at:
                    reloaded_at = now
            else:
                answered += 1
                max_lat = max(max_lat, now - sent)
    unanswered += sum(1 for t, is_new in pending.values() if not is_new)
    print(json.dumps({
        "reload_s": None if reloaded_at is None else reloaded_at - triggered_at,
        "answered": answered,
        "unanswered": unanswered,
        "max_gap_s": max_gap,
        "max_latency_s": max_lat,
    }))


if __name__ == "__main__":
    cli.run(main)
