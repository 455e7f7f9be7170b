"""DaemonSet health: every selected node runs an updated, available pod."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openstack_gitops.health._common import observed, spec_status
from openstack_gitops.health.result import Health, State


def health(obj: Mapping[str, Any]) -> Health:
    _, status = spec_status(obj)
    if not observed(obj):
        return Health(State.PROGRESSING, "waiting for the controller to observe the new spec")
    desired = int(status.get("desiredNumberScheduled") or 0)
    updated = int(status.get("updatedNumberScheduled") or 0)
    available = int(status.get("numberAvailable") or 0)
    if updated < desired:
        return Health(State.PROGRESSING, f"{updated}/{desired} pods updated")
    if available < desired:
        return Health(State.PROGRESSING, f"{available}/{desired} pods available")
    return Health(State.HEALTHY, f"{available}/{desired} pods available")
