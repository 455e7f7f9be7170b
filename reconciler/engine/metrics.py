"""Prometheus metrics of the reconciler, read from each reconcile's change set and outcome."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from openstack_gitops.runtime.probes import Check, ProbeServer, ok
from reconciler.engine.changeset import ChangeSet
from reconciler.plan.diff import Action

PREFIX = "openstack_gitops"


class Metrics:
    """One registry per reconciler (tests create several in one process)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.duration = Histogram(f"{PREFIX}_reconcile_duration_seconds", "Duration of one reconcile",
                                  ["result"], registry=r, buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))
        self.phase_duration = Histogram(f"{PREFIX}_reconcile_phase_duration_seconds", "Duration of each phase",
                                        ["phase"], registry=r,
                                        buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120))
        self.reconciles = Counter(f"{PREFIX}_reconcile", "Reconciles by result", ["result", "reason"], registry=r)
        self.objects = Counter(f"{PREFIX}_objects", "Objects handled, by action", ["action"], registry=r)
        self.last_objects = Gauge(f"{PREFIX}_last_reconcile_objects", "Objects by action in the last reconcile",
                                  ["action"], registry=r)
        self.drift = Counter(f"{PREFIX}_drift_corrections", "Manual edits to owned fields that were reverted",
                             registry=r)
        self.last_success = Gauge(f"{PREFIX}_last_success_timestamp_seconds", "Time of the last successful reconcile",
                                  registry=r)
        self.last_commit = Gauge(f"{PREFIX}_last_applied_commit_info", "Commit of the last successful reconcile",
                                 ["commit"], registry=r)
        self.git_errors = Counter(f"{PREFIX}_git_fetch_errors", "Failed Git fetches by reason", ["reason"], registry=r)
        self.phase = Gauge(f"{PREFIX}_reconcile_progress_ratio", "Progress of the running phase (0..1)", ["phase"],
                           registry=r)
        self.services_healthy = Gauge(f"{PREFIX}_service_healthy", "1 when a service's workloads are healthy",
                                      ["service"], registry=r)
        self.hooks = Counter(f"{PREFIX}_hooks", "Helm hooks run, by chart, chart event and result",
                             ["chart", "event", "result"], registry=r)
        self._commit: str | None = None

    def serve(self, port: int, addr: str = "0.0.0.0", healthz: Check = ok, readyz: Check = ok) -> ProbeServer:
        """/metrics, /healthz and /readyz on one port (the probes' checks come from the caller)."""
        return ProbeServer(port, self.registry, healthz, readyz, addr).start()

    def record_changes(self, changes: ChangeSet) -> None:
        counts = changes.by_action()
        for action in Action:
            n = counts.get(action.value, 0)
            self.last_objects.labels(action.value).set(n)
            if n:
                self.objects.labels(action.value).inc(n)
        if changes.drift_corrected:
            self.drift.inc(changes.drift_corrected)

    def record_success(self, commit: str, when: float) -> None:
        self.last_success.set(when)
        if self._commit and self._commit != commit:
            self.last_commit.remove(self._commit)
        self.last_commit.labels(commit).set(1)
        self._commit = commit
