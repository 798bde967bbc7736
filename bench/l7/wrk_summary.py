"""wrk --latency output -> "requests/s p99_ms requests" (exits non-zero on errors)."""
import re
import sys

text = open(sys.argv[1]).read()
unit = {"us": 0.001, "ms": 1.0, "s": 1000.0}
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
m = re.search(r"99%\s+([\d.]+)(us|ms|s)", text)
p99 = float(m.group(1)) * unit[m.group(2)]
n = int(re.search(r"(\d+) requests in", text).group(1))
if re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors", text):
    sys.exit("wrk saw errors:\n" + text)
print(f"{rps:.0f} {p99:.3f} {n}")
