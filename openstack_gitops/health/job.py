"""Job health: Complete is healthy, Failed is degraded, anything else is still running."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openstack_gitops.health._common import condition, spec_status
from openstack_gitops.health.result import Health, State


def health(obj: Mapping[str, Any]) -> Health:
    _, status = spec_status(obj)
    failed = condition(status, "Failed")
    if failed and failed.get("status") == "True":
        return Health(State.DEGRADED, f"failed: {failed.get('message') or failed.get('reason', '')}")
    complete = condition(status, "Complete")
    if complete and complete.get("status") == "True":
        return Health(State.HEALTHY, "complete")
    return Health(State.PROGRESSING, f"{int(status.get('active') or 0)} pods running")
