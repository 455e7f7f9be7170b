"""Prometheus metrics of the health watcher: what it saw, did, refused, and how fast."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from openstack_gitops.runtime.probes import Check, ProbeServer, ok

PREFIX = "openstack_gitops_health_watcher"
WORKLOAD = ["namespace", "workload"]


class Metrics:
    """One registry per watcher (tests create several in one process)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = r = registry or CollectorRegistry()
        self.failures = Counter(f"{PREFIX}_failures", "Pods found failed (once per pod and rule)",
                                [*WORKLOAD, "rule"], registry=r)
        self.failed = Gauge(f"{PREFIX}_failed_pods", "Guarded pods failed now", WORKLOAD, registry=r)
        self.restarts = Counter(f"{PREFIX}_restarts", "Restarts done, by how (delete, evict, force-delete)",
                                [*WORKLOAD, "action"], registry=r)
        self.refusals = Counter(f"{PREFIX}_refusals", "Restarts refused, by reason (once per pod and reason)",
                                [*WORKLOAD, "reason"], registry=r)
        self.breaker = Gauge(f"{PREFIX}_breaker_open", "1 while a workload's circuit breaker is open", WORKLOAD,
                             registry=r)
        self.latency = Histogram(f"{PREFIX}_detection_to_restart_seconds",
                                 "From a failure's grace time running out to its restart request",
                                 registry=r, buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60))
        self.errors = Counter(f"{PREFIX}_errors", "Requests that failed, by what they were for", ["what"],
                              registry=r)
        self.notifications = Counter(f"{PREFIX}_notifications", "Notifications by sink and result",
                                     ["sink", "result"], registry=r)
        self.watched = Gauge(f"{PREFIX}_watched_pods", "Pods of guarded workloads the watcher follows", registry=r)
        self.events = Counter(f"{PREFIX}_watch_events", "Watch events handled, by kind", ["kind"], registry=r)
        self.discovery = Counter(f"{PREFIX}_host_discovery", "Host discovery Jobs, by what happened",
                                 ["namespace", "result"], registry=r)
        self.pass_seconds = Histogram(f"{PREFIX}_pass_duration_seconds", "One observe-decide-act pass",
                                      registry=r, buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5))

    def serve(self, port: int, addr: str = "0.0.0.0", healthz: Check = ok, readyz: Check = ok) -> ProbeServer:
        """/metrics, /healthz and /readyz on one port."""
        return ProbeServer(port, self.registry, healthz, readyz, addr).start()
