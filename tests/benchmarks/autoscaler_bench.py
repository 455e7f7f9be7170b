"""The autoscaler at 200 targets: a real Prometheus scraping a real HAProxy with 200 backends, 200
autoscaled Deployments on the test bed, the autoscaler as its own process.

Measured in one run:
- the process's ticks (from its own /metrics): duration and Prometheus queries per tick;
- reading the load of all 200 targets the autoscaler's way (one query per preset) against the
  one-query-per-target way, through the same Prometheus edge, alternately, ``--reads`` times each;
- from a load step to the scale write: the timestamp of the first scrape that shows the step (the
  sample's own timestamp in Prometheus) to the apiserver's receipt of the first scale write after it (audit log),
  p50/p99 over ``--rounds`` x ``--stepped`` steps;
- CPU seconds and peak RSS of the autoscaler process.

Backends: ``--stepped`` of them have a real HTTP server behind them (the load steps); the others
have none (HAProxy still exports their series), so 200 backends do not cost 200 server processes.

Run: .venv/bin/python tests/benchmarks/autoscaler_bench.py [--targets 200] [--rounds 6]
Progress on stderr; one JSON object as the last line on stdout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from autoscaler import presets
from autoscaler.edges.prometheus import Prometheus, PrometheusConfig
from autoscaler.observe import Target, read_load
from openstack_gitops.api import Process
from openstack_gitops.kube.client import Cluster
from openstack_gitops.model.spec import AutoscalingPolicy, MetricPreset
from testbed import bed
from testbed.haproxy import HAProxy
from testbed.prometheus import Prometheus as PrometheusServer
from tests.integration.autoscaler_support import (
    deployment,
    publish,
    replicas,
    sessions,
    start_process,
    wait_for,
)

NAMESPACE = "autoscaler-bench"
INTERVAL = 5  # seconds between ticks of every target
STEP_SESSIONS = 12  # a step to 3 replicas at 4 sessions per replica


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def proc_stats(pid: int) -> tuple[float, float]:
    """(CPU seconds, peak RSS MiB) of a live process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    peak = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
    return cpu, peak


def scrape(port: int) -> dict[str, float]:
    """The process's own metrics: name{labels} -> value (only the autoscaler's)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("openstack_gitops_autoscaler_"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def ticks_so_far(port: int) -> float:
    """Ticks the process has made (0 while its metrics server is not up yet)."""
    try:
        return scrape(port).get("openstack_gitops_autoscaler_tick_duration_seconds_count", 0.0)
    except OSError:
        return 0.0


def first_scrape_showing_load(prom: PrometheusServer, backend: str, since: float, timeout: float = 30) -> float:
    """The timestamp of the first scrape after ``since`` that shows any load on ``backend`` (read from the
    raw samples of a range selector, which keep their scrape timestamps). A scrape may catch the step's
    connections half opened; the autoscaler may act on that one, so the step counts from it."""
    query = f'haproxy_backend_current_sessions{{proxy="{backend}"}}[30s]'
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for series in prom.query(query):
            hits = [float(t) for t, v in series.get("values", []) if float(v) > 0 and float(t) >= since - 0.5]
            if hits:
                return min(hits)
        time.sleep(0.05)
    raise AssertionError(f"Prometheus never showed load on {backend}")


def scale_write_times(tb: bed.TestBed, name: str) -> list[float]:
    """When the apiserver received each scale write of one Deployment by the autoscaler."""
    out = []
    for event in tb.audit_events(user_agent_prefix=Process.AUTOSCALER.user_agent):
        ref = event.get("objectRef") or {}
        if (ref.get("namespace"), ref.get("name"), ref.get("subresource")) == (NAMESPACE, name, "scale") \
                and event.get("verb") == "patch":
            stamp = dt.datetime.fromisoformat(event["requestReceivedTimestamp"].replace("Z", "+00:00"))
            out.append(stamp.timestamp())
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def run(tb: bed.TestBed, root: Path, targets: int, stepped: int, rounds: int, reads: int) -> dict[str, Any]:
    names = [f"api-{i:03d}" for i in range(targets)]
    proxy = HAProxy(root / "haproxy", backends={n: (1 if i < stepped else 0) for i, n in enumerate(names)})
    prom = PrometheusServer(root / "prometheus", scrape_interval=1.0)
    proc = None
    try:
        started = time.monotonic()
        proxy.start()
        prom.start()
        prom.add_target("haproxy", proxy.metrics_address)
        log(f"HAProxy with {targets} backends and Prometheus up in {time.monotonic() - started:.1f}s")
        admin = Cluster(tb.api_client())
        admin.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        for name in names:
            admin.apply(deployment(name, NAMESPACE, 1))
        policies = [AutoscalingPolicy(n, 1, 10, 4.0, backend=n, interval_seconds=INTERVAL,
                                      scale_down_stabilization_seconds=0) for n in names]
        publish(admin, NAMESPACE, policies)
        log(f"{targets} Deployments and their policies created")
        wait_for(lambda: len(prom.query("haproxy_backend_current_sessions")) >= targets, 60, "every backend scraped")

        # the autoscaler's way against one query per target, through the same edge, alternately
        edge = Prometheus(PrometheusConfig(prom.url, timeout=10))
        group = [Target("bench", NAMESPACE, p) for p in policies]
        grouped, single = [], []
        for _ in range(reads):
            t0 = time.perf_counter()
            load = read_load(edge, group)
            grouped.append(time.perf_counter() - t0)
            assert sum(load.queries.values()) == 1 and len(load.readings) == targets
            t0 = time.perf_counter()
            for target in group:
                edge.query(presets.group_query(presets.PRESETS[MetricPreset.HAPROXY_SESSIONS], [target.backend]))
            single.append(time.perf_counter() - t0)
        edge.close()
        log(f"read {targets} targets: grouped {statistics.median(grouped) * 1000:.1f} ms (1 query), "
            f"one per target {statistics.median(single) * 1000:.1f} ms ({targets} queries)")

        proc, port = start_process(tb, prom.url, NAMESPACE, "bench", root / "autoscaler.log", ("--no-leader-elect",))
        wait_for(lambda: ticks_so_far(port) >= 2, 60, "the autoscaler's first ticks")
        cpu0, _ = proc_stats(proc.pid)
        base = scrape(port)
        measured_from = time.monotonic()
        latencies: list[float] = []
        step_names = names[:stepped]
        for round_no in range(rounds):
            time.sleep(random.uniform(0, INTERVAL))  # steps land anywhere in the tick, not just after one
            with ExitStack() as stack:
                since = time.time()
                for n in step_names:
                    stack.enter_context(sessions(proxy.frontend_url(n))).set(STEP_SESSIONS)
                shown = {n: first_scrape_showing_load(prom, n, since) for n in step_names}
                for n in step_names:
                    wait_for(lambda n=n: replicas(admin, NAMESPACE, n) == 3, 4 * INTERVAL + 10, f"{n} at 3")
            time.sleep(1.0)  # the audit log's line lands just after the response
            for n in step_names:
                writes = [w for w in scale_write_times(tb, n) if w >= since]
                latencies.append(writes[0] - shown[n])
            for n in step_names:  # load gone: back to 1 (no stabilization window in this run)
                wait_for(lambda n=n: replicas(admin, NAMESPACE, n) == 1, 4 * INTERVAL + 10, f"{n} back at 1")
            log(f"round {round_no + 1}/{rounds}: step-to-write {[round(x, 2) for x in latencies[-stepped:]]}")
        elapsed = time.monotonic() - measured_from
        cpu1, peak = proc_stats(proc.pid)
        end = scrape(port)
        ticks = end["openstack_gitops_autoscaler_tick_duration_seconds_count"] - \
            base["openstack_gitops_autoscaler_tick_duration_seconds_count"]
        tick_sum = end["openstack_gitops_autoscaler_tick_duration_seconds_sum"] - \
            base["openstack_gitops_autoscaler_tick_duration_seconds_sum"]
        queries_key = 'openstack_gitops_autoscaler_prometheus_queries_total{metric="haproxy-sessions"}'
        queries = end[queries_key] - base.get(queries_key, 0.0)
        return {
            "benchmark": "autoscaler", "targets": targets, "tick_interval_s": INTERVAL,
            "ticks": int(ticks), "tick_mean_s": round(tick_sum / ticks, 4) if ticks else None,
            "prometheus_queries_per_tick": round(queries / ticks, 2) if ticks else None,
            "read_all_targets_grouped_ms": round(statistics.median(grouped) * 1000, 1),
            "read_all_targets_one_query_per_target_ms": round(statistics.median(single) * 1000, 1),
            "queries_grouped": 1, "queries_one_per_target": targets,
            "grouped_speedup": round(statistics.median(single) / statistics.median(grouped), 1),
            "step_to_scale_write_s": {"n": len(latencies), "p50": round(percentile(latencies, 0.5), 2),
                                      "p99": round(percentile(latencies, 0.99), 2),
                                      "max": round(max(latencies), 2)},
            "process_cpu_s": round(cpu1 - cpu0, 2), "process_cpu_percent": round(100 * (cpu1 - cpu0) / elapsed, 1),
            "measured_s": round(elapsed, 1), "process_peak_rss_mib": round(peak, 1),
        }
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        prom.stop()
        proxy.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=200)
    parser.add_argument("--stepped", type=int, default=5, help="backends with a server, stepped each round")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--reads", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="autoscaler-bench-") as tmp:
        root = Path(tmp)
        tb = bed.up(root / "testbed", control_plane=1, compute=3, pod_ready_delay_ms=100, log=log)
        try:
            result = run(tb, root, args.targets, args.stepped, args.rounds, args.reads)
        finally:
            bed.down(tb.directory)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
