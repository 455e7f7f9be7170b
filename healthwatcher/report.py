"""What the health watcher tells: the ``status.healthWatcher`` section and the notifications. Pure.

The status section is what ``openstack-gitops status`` prints under a cloud: per guarded workload its
pods, Ready and failed counts and breaker; the pods failed now with what was decided; the last
actions (restarts and refusals) newest first. The notifications go to Alertmanager and the webhook:
one per restart and per refusal (each resolves by itself), and one long-lived alert per open
breaker (re-sent while open, resolved when it closes).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from healthwatcher.decide import Decision, Failure, Workload, WorkloadRef
from healthwatcher.notify import Notification, Severity
from openstack_gitops.model.spec import HealthWatcherPolicy
from openstack_gitops.runtime import logs


def iso(when: float) -> str:
    return dt.datetime.fromtimestamp(when, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


RECENT = 20  # actions kept in the status
FAILING = 50  # failed pods listed in the status (the count is always whole)
LIFETIME = 900.0  # a restart or refusal alert resolves by itself after this


@dataclass(frozen=True)
class Recent:
    """One action in the status' ``recent`` list."""

    at: float
    pod: str
    node: str | None
    workload: WorkloadRef
    action: str  # delete, evict, force-delete, refuse, breaker-open, ...
    reason: str
    message: str

    def line(self) -> dict[str, Any]:
        out = {"time": iso(self.at), "pod": self.pod, "node": self.node, "workload": self.workload.name,
               "action": self.action, "reason": self.reason, "message": logs.scrub(self.message)[:300]}
        return {k: v for k, v in out.items() if v is not None}


def status_section(policy: HealthWatcherPolicy, workloads: Mapping[WorkloadRef, Workload],
                   failing: Sequence[tuple[Failure, Decision | None]], breakers: Sequence[WorkloadRef],
                   recent: Sequence[Recent], restarts_last_hour: int, leader: str, now: float) -> dict[str, Any]:
    """``status.healthWatcher`` of one cloud."""
    failed_by: dict[WorkloadRef, int] = {}
    for f, _ in failing:
        failed_by[f.workload] = failed_by.get(f.workload, 0) + 1
    lines = {}
    for ref, w in sorted(workloads.items()):
        lines[ref.name] = {"kind": ref.kind, "pods": w.pods, "ready": w.ready, "failed": failed_by.get(ref, 0),
                           "breaker": "open" if ref in breakers else "closed", "database": w.database}
    pods = []
    for f, d in sorted(failing, key=lambda x: (x[0].verdict.since or now, x[0].pod))[:FAILING]:
        line: dict[str, Any] = {"pod": f.pod, "node": f.node, "workload": f.workload.name,
                                "rule": f.verdict.rule.value if f.verdict.rule else None,
                                "since": iso(f.verdict.since) if f.verdict.since else None,
                                "message": logs.scrub(f.verdict.message)[:300]}
        if d is not None:
            line["decision"] = d.reason.value
        pods.append({k: v for k, v in line.items() if v is not None})
    return {"enabled": policy.enabled, "leader": leader, "updated": iso(now),
            "maxRestartsPerHour": policy.max_restarts_per_hour, "restartsLastHour": restarts_last_hour,
            "workloads": lines, "failedPods": len(failing), "failing": pods,
            "recent": [r.line() for r in sorted(recent, key=lambda r: -r.at)[:RECENT]]}


def comparable(section: Mapping[str, Any]) -> Any:
    """A section without its time stamp: nothing else changed, nothing to write."""
    return {k: v for k, v in section.items() if k != "updated"}


def _labels(cloud: str, f: Failure, **more: str) -> dict[str, str]:
    out = {"cloud": cloud, "namespace": f.namespace, "pod": f.pod, "workload": f.workload.name,
           "node": f.node or ""}
    out.update(more)
    return {k: v for k, v in out.items() if v}


def restart_notification(cloud: str, f: Failure, d: Decision, now: float) -> Notification:
    where = f" on {f.node}" if f.node else ""
    return Notification("OpenStackPodRestarted", logs.scrub(f"{f.pod}{where} restarted ({d.action.value}): "
                                                            f"{f.verdict.message}"),
                        _labels(cloud, f, reason=d.reason.value, rule=f.verdict.rule.value if f.verdict.rule else ""),
                        Severity.INFO, now, lifetime=LIFETIME)


def refusal_notification(cloud: str, f: Failure, d: Decision, now: float) -> Notification:
    return Notification("OpenStackPodRestartRefused",
                        logs.scrub(f"{f.pod} failed ({f.verdict.message}) and was not restarted: {d.detail}"),
                        _labels(cloud, f, reason=d.reason.value), Severity.WARNING, now, lifetime=LIFETIME)


def breaker_notification(cloud: str, ref: WorkloadRef, failed: int, pods: int, now: float) -> Notification:
    return Notification("OpenStackHealthWatcherBreakerOpen",
                        f"{failed} of {pods} pods of {ref.kind} {ref.name} failed at once: restarts stopped",
                        {"cloud": cloud, "namespace": ref.namespace, "workload": ref.name},
                        Severity.CRITICAL, now)
