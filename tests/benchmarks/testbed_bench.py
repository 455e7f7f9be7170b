"""Test-bed benchmark: time to `up` with 3 control-plane + N compute kwok nodes, and peak memory.

Run: .venv/bin/python tests/benchmarks/testbed_bench.py [--computes 100,500,2000]
Prints progress on stderr and one JSON object as its last line on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from testbed import bed, state

MEASURED = ("etcd", "kube-apiserver", "kwok")


def peak_rss_mib(pid: int) -> float:
    """VmHWM: the process's peak resident set size so far."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def one(computes: int, root: Path) -> dict[str, float]:
    directory = root / f"bench-{computes}"
    started = time.monotonic()
    tb = bed.up(directory, control_plane=3, compute=computes, pod_ready_delay_ms=100,
                log=lambda m: print(m, file=sys.stderr))
    up_seconds = time.monotonic() - started
    try:
        time.sleep(5)  # let heartbeats and controllers settle before reading peaks
        procs = {p.name: p.pid for p in state.load(tb.directory).processes}
        peaks = {name: round(peak_rss_mib(procs[name]), 1) for name in MEASURED}
    finally:
        bed.down(directory)
    return {"nodes": 3 + computes, "up_seconds": round(up_seconds, 2),
            "peak_rss_mib": peaks, "peak_rss_mib_total": round(sum(peaks.values()), 1)}  # type: ignore[dict-item]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--computes", default="100,500,2000")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="testbed-bench-") as tmp:
        for computes in (int(c) for c in args.computes.split(",")):
            results.append(one(computes, Path(tmp)))
            print(json.dumps(results[-1]), file=sys.stderr)
    print(json.dumps({"benchmark": "testbed_up", "runs": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
