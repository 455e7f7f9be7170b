"""Host discovery for new compute nodes: when to run nova's cell setup, and the Job that runs it. Pure.

nova schedules onto a compute host only once ``nova-manage cell_v2 discover_hosts`` has mapped it to
its cell. The chart runs that from its CronJob ``nova-cell-setup``, hourly, so a new compute node can
idle for up to an hour. The health watcher runs the CronJob's own Job template as soon as compute pods
get Ready on nodes not covered yet, one Job at a time. Everything here is plain data and a clock
argument; ``healthwatcher.hostdiscovery`` does the reads and writes.

- ``job_from_cronjob``: the Job ``kubectl create job --from=cronjob/<name>`` makes (kubectl's
  ``createJobFromCronJob``), plus our label and a TTL, so the chart's template is the only recipe.
- ``DiscoveryState`` and its transitions ``observe``, ``adopt``, ``job_started``, ``start_failed``,
  ``job_finished``; ``next_step`` says Start, Wait or Idle.

Choices:

- The first observation primes: the nodes Ready then count as covered, no Job starts. The chart's own
  ``nova-cell-setup`` Job (run at install) and its hourly CronJob covered the nodes that existed before
  the watcher started; running a Job on every watcher restart would only repeat that. A node that
  joined just before a restart is left to the chart's schedule.
- Covered nodes stay covered when their pod goes away (a reboot, a rolling update): nova keeps the
  host mapping, so a returning node needs no new discovery. A pending node whose pod goes away before
  a Job starts is dropped; it is pending again when its pod is Ready again.
- A Job covers the nodes pending when it was created; nodes that arrive while it runs wait for the
  next Job, which starts when it ends. Start waits ``debounce`` seconds after the first pending node,
  so 50 nodes joining at once make one Job.
- A failed Job (or a Job that could not be created) puts its nodes back to pending and the next
  start waits an exponential back-off (``Retry``), never a tight loop.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

Obj = Mapping[str, Any]

LABEL = "openstack-gitops.io/host-discovery"  # on every Job we create: "true"
INSTANTIATE_ANNOTATION = "cronjob.kubernetes.io/instantiate"  # kubectl's mark of a Job made by hand
DEFAULT_DEADLINE_SECONDS = 1800  # a cell setup takes seconds; one still running after 30 minutes is stuck
DEFAULT_TTL_SECONDS = 3600  # a finished Job (and its pod's logs) stays an hour, as long as the chart's schedule
COMPUTE_SELECTOR = "application=nova,component=compute"  # the compute DaemonSet's pods (nova-compute-default)
MAX_NAME = 63  # a Job's name is also a label value (batch.kubernetes.io/job-name) on its pods


@dataclass(frozen=True)
class Retry:
    """Back-off after a failed Job: ``base`` x 2^(failures-1) seconds, at most ``cap``."""

    base: float = 10.0
    cap: float = 300.0

    def delay(self, failures: int) -> float:
        return float(min(self.base * 2 ** max(failures - 1, 0), self.cap))


DEFAULT_RETRY = Retry()


@dataclass(frozen=True)
class DiscoveryState:
    """What host discovery knows; each transition returns a new state."""

    known: frozenset[str] | None = None  # nodes covered; None until the first observation primes it
    pending: frozenset[str] = frozenset()  # Ready compute nodes not covered, waiting for a Job
    pending_since: float | None = None  # when the oldest pending node was seen
    running: str | None = None  # our Job, created or adopted, not finished
    covering: frozenset[str] = frozenset()  # the nodes the running Job covers
    failures: int = 0  # failed Jobs (or failed creates) in a row
    retry_at: float | None = None  # no start before this, after a failure

    @property
    def primed(self) -> bool:
        return self.known is not None


@dataclass(frozen=True)
class Start:
    """Create the Job ``name`` now."""

    name: str


@dataclass(frozen=True)
class Wait:
    """Nothing to do before ``until`` (debounce or back-off)."""

    until: float


@dataclass(frozen=True)
class Idle:
    """Nothing to do until something changes: no pending node, or a Job is running."""

    reason: str = field(default="", compare=False)


Step = Start | Wait | Idle


# -- the Job --------------------------------------------------------------------------------------------
def job_from_cronjob(cronjob: Obj, name: str, ttl_seconds: int = DEFAULT_TTL_SECONDS,
                     deadline_seconds: int = DEFAULT_DEADLINE_SECONDS) -> dict[str, Any]:
    """The Job ``kubectl create job <name> --from=cronjob/<cronjob>`` creates, plus our label, a TTL and a deadline.

    As kubectl 1.36 builds it: annotations ``cronjob.kubernetes.io/instantiate: manual`` overlaid by the
    jobTemplate's, the jobTemplate's labels, an ownerReference to the CronJob (its uid, controller
    true, no blockOwnerDeletion), the jobTemplate's spec as it is. The ownerReference makes the
    CronJob's controller count the Job as its own: its ``concurrencyPolicy: Forbid`` holds the
    schedule back while ours runs, its history limits and the garbage collector clean up after it.
    ``ttlSecondsAfterFinished`` and ``activeDeadlineSeconds`` are added only when the template has none:
    at most one of our Jobs runs at a time, so one that never ends (an init container waiting forever)
    would stop discovery for good; past the deadline Kubernetes fails it and the next one is tried.
    """
    meta = cronjob.get("metadata") or {}
    template = (cronjob.get("spec") or {}).get("jobTemplate") or {}
    template_meta = template.get("metadata") or {}
    annotations = {INSTANTIATE_ANNOTATION: "manual", **(template_meta.get("annotations") or {})}
    labels = {**(template_meta.get("labels") or {}), LABEL: "true"}
    spec = copy.deepcopy(dict(template.get("spec") or {}))
    spec.setdefault("ttlSecondsAfterFinished", ttl_seconds)
    spec.setdefault("activeDeadlineSeconds", deadline_seconds)  # a Job that hangs must not block discovery
    job_meta: dict[str, Any] = {
        "name": name,
        "labels": labels,
        "annotations": annotations,
        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": meta.get("name", ""),
                             "uid": meta.get("uid", ""), "controller": True}],
    }
    if meta.get("namespace"):
        job_meta["namespace"] = meta["namespace"]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": job_meta, "spec": spec}


def job_name(prefix: str, now: float) -> str:
    """``<prefix>-hd-<unix seconds>``, the prefix cut so the name fits 63 characters."""
    suffix = f"-hd-{int(now)}"
    return prefix[: MAX_NAME - len(suffix)].rstrip("-.") + suffix


def job_state(job: Obj) -> bool | None:
    """True: the Job succeeded; False: it failed; None: still running (its terminal conditions only)."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            return True
        if condition.get("type") == "Failed":
            return False
    return None


def is_ours(job: Obj) -> bool:
    return ((job.get("metadata") or {}).get("labels") or {}).get(LABEL) == "true"


def ready_nodes(pods: Iterable[Obj]) -> frozenset[str]:
    """The nodes whose pod (of the compute DaemonSet) is Ready and not being deleted."""
    out = set()
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName")
        if not node or (pod.get("metadata") or {}).get("deletionTimestamp"):
            continue
        conditions = (pod.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
            out.add(str(node))
    return frozenset(out)


# -- the state machine ----------------------------------------------------------------------------------
def observe(state: DiscoveryState, ready_compute_nodes: frozenset[str], now: float) -> DiscoveryState:
    """The compute nodes Ready now; the first call primes (see the module's choices)."""
    if state.known is None:
        return replace(state, known=frozenset(ready_compute_nodes))
    new = ready_compute_nodes - state.known - state.covering
    pending = (state.pending & ready_compute_nodes) | new
    if not pending:
        return replace(state, pending=frozenset(), pending_since=None)
    since = state.pending_since if state.pending and state.pending_since is not None else now
    return replace(state, pending=pending, pending_since=since)


def adopt(state: DiscoveryState, name: str) -> DiscoveryState:
    """An unfinished Job of ours found in the cluster (a previous process's) runs: wait for it."""
    if state.running is not None:
        return state
    return replace(state, running=name, covering=frozenset())


def job_started(state: DiscoveryState, name: str) -> DiscoveryState:
    """The Job ``name`` was created: it covers every pending node."""
    return replace(state, running=name, covering=state.pending, pending=frozenset(), pending_since=None)


def start_failed(state: DiscoveryState, now: float, retry: Retry = DEFAULT_RETRY) -> DiscoveryState:
    """The Job could not be created (no CronJob, the apiserver refused): back off, nodes stay pending."""
    failures = state.failures + 1
    return replace(state, failures=failures, retry_at=now + retry.delay(failures))


def job_finished(state: DiscoveryState, job_name: str, succeeded: bool, now: float,
                 retry: Retry = DEFAULT_RETRY) -> DiscoveryState:
    """The running Job ended; a Job that is not the running one changes nothing."""
    if job_name != state.running:
        return state
    if succeeded:
        known = None if state.known is None else state.known | state.covering
        return replace(state, known=known, running=None, covering=frozenset(), failures=0, retry_at=None)
    pending = state.pending | state.covering
    since = min(state.pending_since, now) if state.pending_since is not None else now
    failed = replace(state, running=None, covering=frozenset(), pending=pending,
                     pending_since=since if pending else None)
    return start_failed(failed, now, retry)


def ready_at(state: DiscoveryState, debounce: float) -> float | None:
    """When a Job may start; None while one runs or while no node is pending."""
    if state.running is not None or not state.pending or state.pending_since is None:
        return None
    at = state.pending_since + debounce
    return max(at, state.retry_at) if state.retry_at is not None else at


def next_step(state: DiscoveryState, now: float, debounce: float = 5.0, prefix: str = "nova-cell-setup") -> Step:
    """Start a Job (named from ``now``), wait for the debounce or back-off, or nothing to do."""
    if state.running is not None:
        return Idle(f"Job {state.running} runs")
    at = ready_at(state, debounce)
    if at is None:
        return Idle("no pending node")
    return Start(job_name(prefix, now)) if now >= at else Wait(at)
