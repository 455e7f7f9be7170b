"""What to do with the failed pods: restart, force-delete, or refuse and say why. One pure function.

``decide(failures, workloads, policy, history, now) -> Outcome`` is the health watcher's whole
judgement; the loop detects (``healthwatcher.detect``), calls it, acts on each ``Decision`` and
keeps ``Outcome.history`` for the next call. Everything a rule needs is an argument, the clock
included, so every rule is a table test.

A restart is a deletion so that the pod's controller re-creates it: through the eviction API when a
PodDisruptionBudget selects the pod, a force-delete (grace 0) only for a pod stuck terminating on a
NotReady node. Failures are judged oldest first; each restart granted counts against the limits of
the ones after it. The checks, in order (the first that refuses names the reason):

1. the policy is disabled; the pod's workload is unknown (no state to judge by): refuse;
2. databases (MariaDB, RabbitMQ): never while the workload rolls out; at most one member restarting
   at a time (one restarted earlier and not Ready again counts); never when the restart would leave
   fewer Ready members than quorum (a majority unless stated). Before the breaker: when 2 of 3
   members fail, "quorum" is the reason an operator needs to read;
3. circuit breaker: more than ``breaker_share`` of a workload's pods (and at least
   ``breaker_min_failed``) failed at once, counting those still within their grace time: a bad
   image or a broken network, not a sick pod; restarting would only churn. Every failure of that
   workload is refused and the breaker reported;
4. exponential back-off per pod slot: after n restarts, ``min(base x 2^(n-1), max)`` before the
   next. The slot survives the restart: a StatefulSet member keeps its name, a DaemonSet pod is the
   workload's pod on that node (its name changes with each restart);
5. sliding-hour rate limits: per node, per workload, in total (the spec's ``maxRestartsPerNodePerHour``,
   ``maxRestartsPerWorkloadPerHour`` and ``maxRestartsPerHour``).

Refusals carry ``retry_at`` when time alone lifts them (back-off, rate limits).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from healthwatcher.detect import Verdict
from openstack_gitops.model.spec import HealthWatcherPolicy


class Action(StrEnum):
    DELETE = "delete"
    EVICT = "evict"
    FORCE_DELETE = "force-delete"
    REFUSE = "refuse"


class Reason(StrEnum):
    """Why a decision came out as it did: a closed set, so metrics, Events and tests name every case."""

    RESTART = "restart"
    RESTART_EVICT = "restart-evict"  # a PodDisruptionBudget applies
    FORCE_DELETE = "force-delete-notready-node"
    # refusals
    DISABLED = "disabled"
    UNKNOWN_WORKLOAD = "unknown-workload"
    BREAKER_OPEN = "breaker-open"
    DB_ROLLING_OUT = "db-rolling-out"
    DB_ONE_AT_A_TIME = "db-one-at-a-time"
    DB_QUORUM = "db-quorum"
    BACKING_OFF = "backing-off"
    RATE_LIMIT_NODE = "rate-limit-node"
    RATE_LIMIT_WORKLOAD = "rate-limit-workload"
    RATE_LIMIT_TOTAL = "rate-limit-total"
    # set by the act step, after deciding
    PDB_REFUSED = "pdb-refused"  # the eviction API answered 429: the PodDisruptionBudget allows no disruption now
    REQUEST_FAILED = "request-failed"  # the restart request failed (apiserver unreachable, forbidden)


RESTARTS: frozenset[Reason] = frozenset({Reason.RESTART, Reason.RESTART_EVICT, Reason.FORCE_DELETE})


@dataclass(frozen=True, order=True)
class WorkloadRef:
    kind: str  # DaemonSet, StatefulSet, ...
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Workload:
    """A workload as the cluster has it now."""

    ref: WorkloadRef
    pods: int  # pods it should have (StatefulSet replicas, DaemonSet desiredNumberScheduled)
    ready: int
    database: bool = False
    quorum: int | None = None  # Ready members a database needs; None: a majority of ``pods``
    rolling_out: bool = False  # the reconciler is rolling it out (revision or generation pending)
    restarting: int = 0  # members restarted by us that are not Ready again yet

    @property
    def needed(self) -> int:
        return self.quorum if self.quorum is not None else self.pods // 2 + 1


@dataclass(frozen=True)
class Failure:
    """A pod ``detect`` found failed."""

    namespace: str
    pod: str
    workload: WorkloadRef
    node: str | None
    verdict: Verdict
    ready: bool = False  # counts as Ready now (a crash-looping container can be, between crashes)
    pdb: bool = False  # a PodDisruptionBudget selects it: restart through the eviction API

    @property
    def slot(self) -> str:
        """The pod's place in its workload, which outlives the pod (back-off is kept per slot)."""
        if self.workload.kind == "StatefulSet" or self.node is None:
            return f"{self.namespace}/{self.pod}"
        return f"{self.workload}@{self.node}"


@dataclass(frozen=True)
class Limits:
    """The limits beside the spec's ``maxRestartsPerHour`` (seconds, counts per window): ``per_node``,
    ``per_workload`` and ``breaker_share`` come from the spec (``healthwatcher.workloads.limits``), the
    rest are the watcher's own."""

    per_node: int = 3
    per_workload: int = 5
    window: float = 3600.0  # the sliding hour
    backoff_base: float = 30.0
    backoff_max: float = 1800.0
    backoff_reset: float = 3600.0  # a slot with no restart for this long starts over
    breaker_share: float = 0.5  # more than this share of a workload's pods failed at once opens it
    breaker_min_failed: int = 2  # ... and at least this many: one pod of one is a failure, not an outage


@dataclass(frozen=True)
class Restart:
    at: float
    slot: str
    pod: str
    node: str | None
    workload: WorkloadRef


@dataclass(frozen=True)
class History:
    """Restarts done, oldest first: what the limits and back-off count (kept by the loop, seeded after
    a failover from the pods' Events so a new leader does not restart the same pod twice)."""

    restarts: tuple[Restart, ...] = ()


@dataclass(frozen=True)
class Decision:
    namespace: str
    pod: str
    workload: WorkloadRef
    action: Action
    reason: Reason
    detail: str = ""
    retry_at: float | None = None  # when time alone lifts a refusal

    @property
    def restarts(self) -> bool:
        return self.action is not Action.REFUSE


@dataclass(frozen=True)
class Outcome:
    decisions: tuple[Decision, ...] = ()
    history: History = field(default_factory=History)
    breakers: tuple[WorkloadRef, ...] = ()  # workloads whose breaker is open

    @property
    def restarts(self) -> tuple[Decision, ...]:
        return tuple(d for d in self.decisions if d.restarts)

    @property
    def refusals(self) -> tuple[Decision, ...]:
        return tuple(d for d in self.decisions if not d.restarts)


def decide(failures: Iterable[Failure], workloads: Mapping[WorkloadRef, Workload], policy: HealthWatcherPolicy,
           history: History, now: float, limits: Limits | None = None,
           unwell: Mapping[WorkloadRef, int] | None = None) -> Outcome:
    """What to do with every failed pod now. Pure.

    ``failures`` is every pod failed now (not only new ones: the breaker counts them all);
    ``unwell`` counts per workload the pods that show a failed state still within its grace time:
    a bad image fails every pod within a second or two of each other, and the first one's grace
    running out must not restart it before the breaker sees the others.
    ``history`` the previous ``Outcome.history``, which the returned one replaces.
    """
    lim = limits or Limits()
    horizon = now - max(lim.window, lim.backoff_reset)
    done = [r for r in history.restarts if r.at > horizon]
    ordered = sorted(failures, key=lambda f: (f.verdict.since or now, f.namespace, f.pod))
    failed = Counter(f.workload for f in ordered)
    failed.update(unwell or {})
    breakers = tuple(sorted(ref for ref, n in failed.items() if _trips(n, workloads.get(ref), lim)))
    granted: Counter[WorkloadRef] = Counter()
    decisions = []
    for f in ordered:
        refusal = _refusal(f, workloads.get(f.workload), policy, lim, breakers, granted, done, now)
        if refusal is not None:
            reason, detail, retry_at = refusal
            decisions.append(Decision(f.namespace, f.pod, f.workload, Action.REFUSE, reason, detail, retry_at))
            continue
        action, reason = _restart(f)
        decisions.append(Decision(f.namespace, f.pod, f.workload, action, reason, f.verdict.message))
        done.append(Restart(now, f.slot, f.pod, f.node, f.workload))
        granted[f.workload] += 1
    return Outcome(tuple(decisions), History(tuple(done)), breakers)


def _trips(failed: int, workload: Workload | None, lim: Limits) -> bool:
    if workload is None or failed < lim.breaker_min_failed:
        return False
    return failed > lim.breaker_share * workload.pods


def _restart(f: Failure) -> tuple[Action, Reason]:
    if f.verdict.force:
        return Action.FORCE_DELETE, Reason.FORCE_DELETE
    if f.pdb:
        return Action.EVICT, Reason.RESTART_EVICT
    return Action.DELETE, Reason.RESTART


Refusal = tuple[Reason, str, float | None]


def _refusal(f: Failure, w: Workload | None, policy: HealthWatcherPolicy, lim: Limits,
             breakers: tuple[WorkloadRef, ...], granted: Counter[WorkloadRef], done: list[Restart],
             now: float) -> Refusal | None:
    if not policy.enabled:
        return Reason.DISABLED, "the health watcher is disabled in the spec", None
    if w is None:
        return Reason.UNKNOWN_WORKLOAD, f"no state for {f.workload}", None
    if w.database:  # a database's own rules first: "quorum" says more than "breaker" when 2 of 3 members fail
        refusal = _database(f, w, granted[f.workload])
        if refusal is not None:
            return refusal
    if f.workload in breakers:
        return Reason.BREAKER_OPEN, f"more than {lim.breaker_share:.0%} of {w.pods} pods failed at once", None
    return _backoff(f, lim, done, now) or _rate_limits(f, policy, lim, done, now)


def _database(f: Failure, w: Workload, granted: int) -> Refusal | None:
    if w.rolling_out:
        return Reason.DB_ROLLING_OUT, f"{w.ref} is rolling out", None
    if w.restarting + granted > 0:
        return Reason.DB_ONE_AT_A_TIME, f"another member of {w.ref} is restarting", None
    left = w.ready - (1 if f.ready else 0)
    if left < w.needed:
        return (Reason.DB_QUORUM, f"{w.ready}/{w.pods} members Ready, quorum {w.needed}: restarting {f.pod} "
                f"would leave {left} Ready", None)
    return None


def _backoff(f: Failure, lim: Limits, done: list[Restart], now: float) -> Refusal | None:
    mine = [r.at for r in done if r.slot == f.slot and r.at > now - lim.backoff_reset]
    if not mine:
        return None
    delay = min(lim.backoff_base * 2 ** (len(mine) - 1), lim.backoff_max)
    due = max(mine) + delay
    if now < due:
        return Reason.BACKING_OFF, f"restarted {len(mine)}x, next restart after {delay:.0f}s", due
    return None


def _rate_limits(f: Failure, policy: HealthWatcherPolicy, lim: Limits, done: list[Restart],
                 now: float) -> Refusal | None:
    recent = [r for r in done if r.at > now - lim.window]
    checks = (
        (Reason.RATE_LIMIT_NODE, f"node {f.node}", lim.per_node, [r for r in recent if r.node == f.node]
         if f.node is not None else []),
        (Reason.RATE_LIMIT_WORKLOAD, str(f.workload), lim.per_workload,
         [r for r in recent if r.workload == f.workload]),
        (Reason.RATE_LIMIT_TOTAL, "all workloads", policy.max_restarts_per_hour, recent),
    )
    for reason, what, limit, counted in checks:
        if len(counted) >= limit:
            ats = sorted(r.at for r in counted)  # one frees when enough of the oldest leave the window
            retry_at = ats[len(ats) - limit] + lim.window if limit > 0 else None
            return reason, f"{len(counted)} restarts in the last {lim.window:.0f}s on {what} (limit {limit})", retry_at
    return None
