"""Prometheus metrics of the autoscaler, per target, read from each tick's decisions."""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from openstack_gitops.runtime.probes import Check, ProbeServer, ok

PREFIX = "openstack_gitops_autoscaler"
TARGET = ["namespace", "deployment"]


class Metrics:
    """One registry per autoscaler (tests create several in one process)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = r = registry or CollectorRegistry()
        self.current = Gauge(f"{PREFIX}_current_replicas", "Replicas the Deployment asks for now", TARGET, registry=r)
        self.desired = Gauge(f"{PREFIX}_desired_replicas", "Replicas the last decision wanted", TARGET, registry=r)
        self.value = Gauge(f"{PREFIX}_metric_value", "The target's load as last read (its metric's unit)",
                           [*TARGET, "metric"], registry=r)
        self.decisions = Counter(f"{PREFIX}_decisions", "Decisions by direction and reason",
                                 [*TARGET, "direction", "reason"], registry=r)
        self.errors = Counter(f"{PREFIX}_errors", "Ticks a target could not be decided on data, or its scale failed",
                              [*TARGET, "reason"], registry=r)
        self.empty = Counter(f"{PREFIX}_empty_responses", "Ticks Prometheus had no series for a target's backend",
                             TARGET, registry=r)
        self.paused = Gauge(f"{PREFIX}_paused", "1 while a target is paused (its annotation, its cloud's, or the flag)",
                            TARGET, registry=r)
        self.scales = Counter(f"{PREFIX}_scale_writes", "Scale subresource writes", [*TARGET, "direction"],
                              registry=r)
        self.queries = Counter(f"{PREFIX}_prometheus_queries", "Prometheus queries, by metric preset", ["metric"],
                               registry=r)
        self.query_errors = Counter(f"{PREFIX}_prometheus_query_errors", "Failed Prometheus queries, by metric preset",
                                    ["metric"], registry=r)
        self.tick = Histogram(f"{PREFIX}_tick_duration_seconds", "Duration of one observe-decide-act tick",
                              registry=r, buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.targets = Gauge(f"{PREFIX}_targets", "Autoscaled Deployments the policies name", registry=r)

    def serve(self, port: int, addr: str = "0.0.0.0", healthz: Check = ok, readyz: Check = ok) -> ProbeServer:
        """/metrics, /healthz and /readyz on one port."""
        return ProbeServer(port, self.registry, healthz, readyz, addr).start()

    def forget(self, namespace: str, deployment: str, metric: str) -> None:
        """A policy was removed: its gauges go (counters stay, as counters do)."""
        for gauge, labels in ((self.current, ()), (self.desired, ()), (self.paused, ()), (self.value, (metric,))):
            with contextlib.suppress(KeyError):
                gauge.remove(namespace, deployment, *labels)
