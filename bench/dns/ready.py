#!/usr/bin/env python3
"""Waits until a DNS server answers NAME with ADDRESS (A, over UDP).

  ready.py PORT NAME ADDRESS LIMIT_S PID

Exits 0 when it does, 1 after LIMIT_S seconds or when process PID is gone.
"""
import os
import random
import socket
import struct
import sys
import time

import cli  # bench/dns/cli.py


def query(qid, name):
    q = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00" + struct.pack(">HH", 1, 1)


def addresses(resp, qlen):
    """A records of a response to a query of qlen bytes (answer names are pointers or full)."""
    ancount = struct.unpack(">H", resp[6:8])[0]
    i, out = qlen, []
    for _ in range(ancount):
        while True:  # owner name
            n = resp[i]
            if n >= 0xC0:
                i += 2
                break
            i += 1 + n
            if n == 0:
                break
        rtype, _, _, rdlen = struct.unpack(">HHIH", resp[i:i + 10])
        i += 10
        if rtype == 1 and rdlen == 4:
            out.append(socket.inet_ntoa(resp[i:i + 4]))
        i += rdlen
    return out


def main():
    port, name, want, limit, pid = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
    deadline = time.monotonic() + limit
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.5)
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            sys.exit(1)
        qid = random.randrange(65536)
        q = query(qid, name)
        try:
            s.sendto(q, ("127.0.0.1", port))
            while True:  # skip late answers to earlier probes
                resp = s.recv(4096)
                if struct.unpack(">H", resp[:2])[0] == qid:
                    break
            if want in addresses(resp, len(q)):
                return
        except (socket.timeout, ConnectionRefusedError, IndexError, struct.error):
            pass
        time.sleep(0.2)
    sys.exit(1)


if __name__ == "__main__":
    cli.run(main)
