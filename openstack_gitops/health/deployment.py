"""Deployment health, as Argo CD and kstatus define it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openstack_gitops.health._common import condition, observed, spec_status
from openstack_gitops.health.result import Health, State


def health(obj: Mapping[str, Any]) -> Health:
    spec, status = spec_status(obj)
    if not observed(obj):
        return Health(State.PROGRESSING, "waiting for the controller to observe the new spec")
    progressing = condition(status, "Progressing")
    if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
        return Health(State.DEGRADED, f"rollout stuck: {progressing.get('message', '')}")
    want = int(spec.get("replicas", 1))
    updated = int(status.get("updatedReplicas") or 0)
    total = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    if updated < want:
        return Health(State.PROGRESSING, f"{updated}/{want} replicas updated")
    if total > updated:
        return Health(State.PROGRESSING, f"{total - updated} old replicas pending termination")
    if available < updated:
        return Health(State.PROGRESSING, f"{available}/{updated} updated replicas available")
    return Health(State.HEALTHY, f"{available}/{want} replicas available")
