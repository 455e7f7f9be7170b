"""Host discovery's edge: runs nova's cell setup as a Job from the chart's CronJob when compute nodes join.

The owner feeds it (``observe`` with the nodes of Ready compute pods, ``job_changed`` from its watch of
Jobs) and calls ``tick`` when ``due`` says; the decisions are ``healthwatcher.discovery``'s. The Job is
the chart's own template (``job_from_cronjob``), created, never applied: a name that is taken means
someone else's Job, not one to take over.

At most one of our Jobs runs at a time, also across a restart of the process or a second process:
before each create it lists our unfinished Jobs (label ``openstack-gitops.io/host-discovery``) and
adopts one it finds instead of creating another. Not fed by a watch, it polls the running Job with a
GET every ``poll`` seconds. Reports go to ``on_event(reason, message)``; the owner turns them into
Events and metrics. API failures back off like failed Jobs; a missing CronJob is reported once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any

from healthwatcher import discovery
from healthwatcher.discovery import DEFAULT_RETRY, DiscoveryState, Retry, Start
from openstack_gitops.api import Process
from openstack_gitops.kube.client import Cluster
from openstack_gitops.kube.errors import ApiError
from openstack_gitops.kube.objects import selector

OnEvent = Callable[[str, str], None]


class Reason(StrEnum):
    """What ``on_event`` reports: a closed set, as Event reasons and metric labels."""

    STARTED = "HostDiscoveryStarted"
    SUCCEEDED = "HostDiscoverySucceeded"
    FAILED = "HostDiscoveryFailed"
    ADOPTED = "HostDiscoveryAdopted"
    CREATE_FAILED = "HostDiscoveryCreateFailed"
    CRONJOB_MISSING = "HostDiscoveryCronJobMissing"


class HostDiscovery:
    """One namespace's host discovery. Its methods may be called from several threads (a lock orders them)."""

    def __init__(self, cluster: Cluster, namespace: str, cronjob: str = "nova-cell-setup",
                 on_event: OnEvent | None = None, *, debounce: float = 5.0, retry: Retry = DEFAULT_RETRY,
                 poll: float = 10.0) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.cronjob = cronjob
        self.on_event: OnEvent = on_event or (lambda _reason, _message: None)
        self.debounce, self.retry, self.poll = debounce, retry, poll
        self._state = DiscoveryState()
        self._checked_at: float | None = None  # when the running Job was last seen (fed or polled)
        self._cronjob_missing = False  # reported, not reported again until it is back
        self._lock = threading.RLock()

    @property
    def state(self) -> DiscoveryState:
        return self._state

    def observe(self, ready_compute_nodes: frozenset[str], now: float) -> None:
        """The nodes whose compute pod is Ready now (``discovery.ready_nodes`` of the DaemonSet's pods)."""
        with self._lock:
            self._state = discovery.observe(self._state, ready_compute_nodes, now)

    def job_changed(self, job: Mapping[str, Any], now: float) -> None:
        """A Job as a watch (or a poll) saw it; only the running Job's end matters."""
        with self._lock:
            name = str((job.get("metadata") or {}).get("name", ""))
            if name != self._state.running:
                return
            self._checked_at = now
            result = discovery.job_state(job)
            if result is not None:
                self._finished(name, result, now)

    def due(self) -> float | None:
        """When ``tick`` has work next: a Job to start (debounce, back-off) or the running Job to poll."""
        with self._lock:
            if self._state.running is not None:
                return (self._checked_at or 0.0) + self.poll
            return discovery.ready_at(self._state, self.debounce)

    def tick(self, now: float) -> None:
        """Poll the running Job when due, or create the next Job when ``next_step`` says Start."""
        with self._lock:
            if self._state.running is not None:
                if now >= (self._checked_at or 0.0) + self.poll:
                    self._poll(self._state.running, now)
                return
            step = discovery.next_step(self._state, now, self.debounce, self.cronjob)
            if isinstance(step, Start):
                self._start(step.name, now)

    # -- the requests -------------------------------------------------------------------------------------
    def _poll(self, name: str, now: float) -> None:
        try:
            job = self.cluster.get("batch/v1", "Job", name, self.namespace)
        except ApiError:
            self._checked_at = now  # the apiserver is away: look again after ``poll``
            return
        if job is None:  # deleted before we saw it end: its nodes are not known to be covered
            self._checked_at = now
            self._finished(name, False, now, "is gone")
            return
        self.job_changed(job, now)
        self._checked_at = now

    def _start(self, name: str, now: float) -> None:
        try:
            if self._adopt_running(now):
                return
            cronjob = self.cluster.get("batch/v1", "CronJob", self.cronjob, self.namespace)
            if cronjob is None:
                self._state = discovery.start_failed(self._state, now, self.retry)
                if not self._cronjob_missing:
                    self._cronjob_missing = True
                    self.on_event(Reason.CRONJOB_MISSING, f"CronJob {self.namespace}/{self.cronjob} not found: "
                                  f"nodes {_names(self._state.pending)} wait for it")
                return
            self._cronjob_missing = False
            job = discovery.job_from_cronjob(cronjob, name)
            job["metadata"]["namespace"] = self.namespace
            self.cluster.create(job, field_manager=Process.HEALTH_WATCHER.field_manager)
        except ApiError as exc:
            self._state = discovery.start_failed(self._state, now, self.retry)
            self.on_event(Reason.CREATE_FAILED, f"Job {self.namespace}/{name}: {exc}; next try after "
                          f"{self.retry.delay(self._state.failures):.0f}s")
            return
        nodes = self._state.pending
        self._state = discovery.job_started(self._state, name)
        self._checked_at = now
        self.on_event(Reason.STARTED, f"Job {self.namespace}/{name} runs cell setup for nodes {_names(nodes)}")

    def _adopt_running(self, now: float) -> bool:
        """True when an unfinished Job of ours exists (a previous process's, another's): wait for it."""
        jobs = self.cluster.list("batch/v1", "Job", selector({discovery.LABEL: "true"}), self.namespace)
        running = sorted(str(j["metadata"]["name"]) for j in jobs
                         if discovery.job_state(j) is None and not j["metadata"].get("deletionTimestamp"))
        if not running:
            return False
        self._state = discovery.adopt(self._state, running[0])
        self._checked_at = now
        self.on_event(Reason.ADOPTED, f"Job {self.namespace}/{running[0]} of ours runs: waiting for it")
        return True

    def _finished(self, name: str, succeeded: bool, now: float, how: str = "") -> None:
        covering = self._state.covering
        self._state = discovery.job_finished(self._state, name, succeeded, now, self.retry)
        if succeeded:
            self.on_event(Reason.SUCCEEDED, f"Job {self.namespace}/{name} succeeded: nodes {_names(covering)} "
                          "are discovered")
        else:
            self.on_event(Reason.FAILED, f"Job {self.namespace}/{name} {how or 'failed'}: nodes "
                          f"{_names(self._state.pending)} pending, next try after "
                          f"{self.retry.delay(self._state.failures):.0f}s")


def _names(nodes: frozenset[str], most: int = 10) -> str:
    shown = sorted(nodes)[:most]
    more = f" and {len(nodes) - most} more" if len(nodes) > most else ""
    return (", ".join(shown) or "(none)") + more
