"""StatefulSet health: every replica ready and on the update revision."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openstack_gitops.health._common import observed, spec_status
from openstack_gitops.health.result import Health, State


def health(obj: Mapping[str, Any]) -> Health:
    spec, status = spec_status(obj)
    if not observed(obj):
        return Health(State.PROGRESSING, "waiting for the controller to observe the new spec")
    want = int(spec.get("replicas", 1))
    ready = int(status.get("readyReplicas") or 0)
    if ready < want:
        return Health(State.PROGRESSING, f"{ready}/{want} replicas ready")
    strategy = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate")
    if strategy == "RollingUpdate" and status.get("currentRevision") != status.get("updateRevision"):
        return Health(State.PROGRESSING, "rolling update in progress")
    return Health(State.HEALTHY, f"{ready}/{want} replicas ready")
