"""Act: the scale write, its Event, and the ``status.autoscaler`` section of the OpenStackDeployment.

Replicas change only through the Deployment's ``scale`` subresource, server-side-applied under the
autoscaler's own field manager (``openstack-gitops-autoscaler``): that manager owns
``spec.replicas``, and the reconciler, which never sends replicas of an autoscaled Deployment,
never takes them back. The status section is written under the same manager, only when something
other than the load's value changed; the reconciler leaves it alone.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from autoscaler.decide import HOLD_ON_DATA, Decision, Direction, ScaleEvent
from autoscaler.observe import STATUS_SECTION, Cloud, Target
from openstack_gitops import api
from openstack_gitops.kube.client import ApiError, Cluster
from openstack_gitops.kube.objects import Manifest
from openstack_gitops.runtime import logs

CONTROLLER = f"{api.GROUP}/autoscaler"


def _iso(when: float) -> str:
    return dt.datetime.fromtimestamp(when, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def scale(cluster: Cluster, target: Target, replicas: int) -> None:
    """Set the Deployment's replicas through its scale subresource (raises ApiError)."""
    cluster.scale("apps/v1", "Deployment", target.deployment, target.namespace, replicas)


@dataclass(frozen=True)
class TargetReport:
    """One target's line in the status section (and in the logs)."""

    target: Target
    replicas: int  # what it has after this tick
    ready: int
    decision: Decision | None  # None: no decision (Deployment missing)
    paused: bool
    unit: str
    last_scale: ScaleEvent | None = None
    last_scale_reason: str = ""
    error: str = ""


def scale_note(target: Target, before: int, decision: Decision, unit: str) -> str:
    """What an operator reads in the Event: the step, the reason, and the load that caused it. Pure."""
    load = "" if decision.value is None else (
        f" ({target.policy.metric.value}: {decision.value:g} {unit} for {target.backend}, "
        f"target {target.policy.target_per_replica:g} per replica)")
    return f"{target.deployment}: {before} -> {decision.replicas} replicas, {decision.reason.value}{load}"


def scale_event(target: Target, before: int, decision: Decision, unit: str, now: float) -> Manifest:
    """An events.k8s.io/v1 Event on the Deployment for one scale. Pure."""
    stamp = dt.datetime.fromtimestamp(now, dt.UTC)
    return {
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": f"{target.deployment}.autoscaler.{stamp.strftime('%Y%m%d%H%M%S')}{stamp.microsecond:06d}",
                     "namespace": target.namespace},
        "eventTime": stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "type": "Normal",
        "reason": "ScaledUp" if decision.direction is Direction.UP else "ScaledDown",
        "action": "Scale", "note": logs.scrub(scale_note(target, before, decision, unit))[:1024],
        "reportingController": CONTROLLER, "reportingInstance": api.Process.AUTOSCALER.field_manager,
        "regarding": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target.deployment,
                      "namespace": target.namespace},
    }


def emit(cluster: Cluster, event: Manifest) -> None:
    """Best effort: a lost Event must not stop scaling."""
    with contextlib.suppress(ApiError):
        cluster.create_event(event)


def status_section(cloud: Cloud, reports: Mapping[str, TargetReport], globally_paused: bool, leader: str,
                   now: float) -> dict[str, Any]:
    """``status.autoscaler`` of one cloud. Pure."""
    targets: dict[str, Any] = {}
    for name, r in sorted(reports.items()):
        d = r.decision
        line: dict[str, Any] = {
            "replicas": r.replicas, "readyReplicas": r.ready,
            "desiredReplicas": d.replicas if d else r.replicas,
            "recommendedReplicas": d.recommended if d and d.recommended is not None else None,
            "minReplicas": r.target.policy.min_replicas, "maxReplicas": r.target.policy.max_replicas,
            "metric": r.target.policy.metric.value, "backend": r.target.backend,
            "value": None if d is None or d.value is None else round(d.value, 3),
            "targetPerReplica": r.target.policy.target_per_replica,
            "reason": d.reason.value if d else "deployment-missing",
            "paused": r.paused,
            "dataOk": not (d and d.reason in HOLD_ON_DATA) and d is not None,
            "message": logs.scrub(r.error or (d.detail if d else ""))[:512],
        }
        if r.last_scale is not None:
            line["lastScale"] = {"at": r.last_scale.at, "time": _iso(r.last_scale.at), "from": r.last_scale.before,
                                 "to": r.last_scale.after, "reason": r.last_scale_reason}
        targets[name] = {k: v for k, v in line.items() if v is not None}
    return {"paused": globally_paused, "leader": leader, "updated": _iso(now), "targets": targets}


def _comparable(section: Mapping[str, Any]) -> Any:
    """A section without what changes every tick (the load's value, the time): no reason to write alone."""
    targets = {name: {k: v for k, v in line.items() if k not in ("value",)}
               for name, line in (section.get("targets") or {}).items()}
    return {**{k: v for k, v in section.items() if k not in ("updated", "targets")}, "targets": targets}


def write_status(cluster: Cluster, cloud: Cloud, section: Mapping[str, Any]) -> bool:
    """Apply ``status.autoscaler`` when it changed; True when a write was sent (raises ApiError)."""
    if _comparable(cloud.status) == _comparable(section):
        return False
    cluster.patch_status(api.API_VERSION, api.KIND, cloud.name, cloud.namespace, {STATUS_SECTION: dict(section)})
    return True
