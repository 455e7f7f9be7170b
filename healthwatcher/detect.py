"""Is this pod failed? Four rules, each a pure function of the pod, its node and the clock.

``detect(pod, node, thresholds, now) -> Verdict`` reads plain dicts as the apiserver returns them
(a watch event's object), so the same rules serve the watch loop, the tests and the benchmark.

A rule *matches* when the pod shows the state; it *fires* only once the state has lasted at least
the workload's grace time for that rule. A match within grace is a not-failed verdict that
still names the rule and when it started, so the watcher knows when to look again (``due``).

The rules, in the order they are tried (the first that fires wins; else the first that matches):

1. stuck-terminating: the pod is being deleted and its node is NotReady (Ready False or Unknown),
   so the kubelet will never confirm the deletion; since the later of the deletion time and the
   node going NotReady. The only state a force-delete is for.
2. phase-failed: ``status.phase == Failed``;
3. crash-loop: a container waits in ``CrashLoopBackOff`` with at least ``restart_limit`` restarts
   (not on a NotReady node, whose kubelet no longer reports: the statuses are stale);
4. not-ready: the pod is not Ready while its node is Ready (a NotReady node is the node's
   problem, not the pod's: deleting its pods would only move the load).

A pod without a node (unscheduled) or whose node is not known is judged by the rules that need no
node only; a rule never fires on missing data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

Obj = Mapping[str, Any]


class Rule(StrEnum):
    STUCK_TERMINATING = "stuck-terminating"
    PHASE_FAILED = "phase-failed"
    CRASH_LOOP = "crash-loop"
    NOT_READY = "not-ready"


@dataclass(frozen=True)
class Thresholds:
    """A workload's detection limits (seconds); the defaults suit nova-compute and the databases."""

    restart_limit: int = 3  # crash-loop: restarts of one container before it counts
    crash_loop_grace: float = 60.0
    phase_failed_grace: float = 30.0
    not_ready_grace: float = 120.0  # longer than a probe's failureThreshold x period, and a DB's SST
    terminating_grace: float = 60.0  # after the deletion was due

    def grace(self, rule: Rule) -> float:
        return {Rule.STUCK_TERMINATING: self.terminating_grace, Rule.PHASE_FAILED: self.phase_failed_grace,
                Rule.CRASH_LOOP: self.crash_loop_grace, Rule.NOT_READY: self.not_ready_grace}[rule]


@dataclass(frozen=True)
class Match:
    """A rule's finding: the pod shows the state since ``since`` (epoch seconds)."""

    rule: Rule
    since: float
    message: str


@dataclass(frozen=True)
class Verdict:
    failed: bool
    rule: Rule | None = None  # set when a rule matched, even within grace
    since: float | None = None  # when the state began
    message: str = "healthy"
    due: float | None = None  # when a match within grace fires, if nothing changes

    @property
    def force(self) -> bool:
        """Only a pod stuck terminating on a NotReady node may be force-deleted."""
        return self.failed and self.rule is Rule.STUCK_TERMINATING


HEALTHY = Verdict(False)


def parse_time(value: str | None) -> float | None:
    """Epoch seconds of an RFC 3339 timestamp as the apiserver writes it (``2026-12-01T12:00:00Z``)."""
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def condition(obj: Obj | None, kind: str) -> Obj | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return None


def node_ready(node: Obj | None) -> bool | None:
    """True/False from the node's Ready condition; None when the node or the condition is unknown.

    ``Unknown`` (the node controller lost the kubelet) counts as not Ready."""
    cond = condition(node, "Ready")
    if cond is None:
        return None
    return cond.get("status") == "True"


def _containers(pod: Obj) -> Iterable[Obj]:
    status = pod.get("status") or {}
    yield from status.get("initContainerStatuses") or []
    yield from status.get("containerStatuses") or []


def _not_ready_since(pod: Obj) -> float | None:
    cond = condition(pod, "Ready")
    if cond is not None and cond.get("status") != "True":
        return parse_time(cond.get("lastTransitionTime"))
    return None


def _started(pod: Obj) -> float | None:
    return parse_time((pod.get("status") or {}).get("startTime")) or parse_time(
        (pod.get("metadata") or {}).get("creationTimestamp"))


def stuck_terminating(pod: Obj, node: Obj | None, t: Thresholds) -> Match | None:
    deleting = parse_time((pod.get("metadata") or {}).get("deletionTimestamp"))
    if deleting is None or node_ready(node) is not False:
        return None
    node_down = parse_time((condition(node, "Ready") or {}).get("lastTransitionTime")) or deleting
    name = (node or {}).get("metadata", {}).get("name", "?")
    return Match(Rule.STUCK_TERMINATING, max(deleting, node_down), f"terminating on NotReady node {name}")


def _deleting(pod: Obj) -> bool:
    """A pod being deleted on a Ready node is its kubelet's to finish: judging it would restart it twice."""
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def phase_failed(pod: Obj, node: Obj | None, t: Thresholds) -> Match | None:
    status = pod.get("status") or {}
    if status.get("phase") != "Failed" or _deleting(pod):
        return None
    finished = [parse_time(((c.get("state") or {}).get("terminated") or {}).get("finishedAt"))
                for c in _containers(pod)]
    known = [f for f in finished if f is not None]
    since = max(known) if known else (_not_ready_since(pod) or _started(pod))
    if since is None:
        return None
    reason = status.get("reason") or "Failed"
    return Match(Rule.PHASE_FAILED, since, f"phase Failed ({reason}): {status.get('message') or ''}".rstrip(": "))


def crash_loop(pod: Obj, node: Obj | None, t: Thresholds) -> Match | None:
    if node_ready(node) is False or _deleting(pod):
        return None  # the kubelet is not reporting (the container statuses are stale), or it is ending the pod
    for c in _containers(pod):
        waiting = (c.get("state") or {}).get("waiting") or {}
        restarts = int(c.get("restartCount") or 0)
        if waiting.get("reason") != "CrashLoopBackOff" or restarts < t.restart_limit:
            continue
        last = parse_time(((c.get("lastState") or {}).get("terminated") or {}).get("finishedAt"))
        since = _not_ready_since(pod) or last or _started(pod)
        if since is None:
            return None
        return Match(Rule.CRASH_LOOP, since,
                     f"container {c.get('name')} in CrashLoopBackOff after {restarts} restarts")
    return None


def not_ready(pod: Obj, node: Obj | None, t: Thresholds) -> Match | None:
    status = pod.get("status") or {}
    if _deleting(pod) or status.get("phase") in ("Succeeded", "Failed"):
        return None
    if node_ready(node) is not True:
        return None
    cond = condition(pod, "Ready")
    if cond is not None and cond.get("status") == "True":
        return None
    since = _not_ready_since(pod) or _started(pod)
    if since is None:
        return None
    reason = (cond or {}).get("reason") or "no Ready condition"
    node_name = ((node or {}).get("metadata") or {}).get("name", "?")
    return Match(Rule.NOT_READY, since, f"not Ready ({reason}) on Ready node {node_name}")


RULES: tuple[Callable[[Obj, Obj | None, Thresholds], Match | None], ...] = (
    stuck_terminating, phase_failed, crash_loop, not_ready)
"""Tried in this order: the first that fires wins."""


def detect(pod: Obj, node: Obj | None, thresholds: Thresholds, now: float) -> Verdict:
    """Whether ``pod`` (on ``node``, None when unknown) is failed at ``now``. Pure."""
    matches = [m for rule in RULES if (m := rule(pod, node, thresholds)) is not None]
    if not matches:
        return HEALTHY
    for m in matches:
        due = m.since + thresholds.grace(m.rule)
        if now >= due:
            return Verdict(True, m.rule, m.since, m.message, due)
    first = min(matches, key=lambda m: m.since + thresholds.grace(m.rule))  # the one to look at again first
    due = first.since + thresholds.grace(first.rule)
    return Verdict(False, first.rule, first.since, f"{first.message} (within grace, {due - now:.0f}s left)", due)
