"""Health of live objects, one rule module per kind behind a dispatch table (kstatus semantics).

Pure: each rule reads a live object (a dict) and returns a Health. The reconciler's status and
rollout gates and the health watcher share these rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from openstack_gitops.health import daemonset, deployment, job, statefulset
from openstack_gitops.health.result import Health, State

RULES: Mapping[str, Callable[[Mapping[str, Any]], Health]] = {
    "Deployment": deployment.health,
    "StatefulSet": statefulset.health,
    "DaemonSet": daemonset.health,
    "Job": job.health,
}


def health_of(obj: Mapping[str, Any]) -> Health:
    """Health of any object; kinds without a rule are Healthy once they exist."""
    rule = RULES.get(str(obj.get("kind")))
    return rule(obj) if rule else Health(State.HEALTHY, "exists")


def worst(healths: Iterable[Health]) -> Health:
    """The least healthy of several (Degraded < Progressing < Healthy); Healthy when empty.

    Ties go to the first message in sort order, not to the first listed: the status written from it
    must not change with the order the cluster happened to list the workloads in."""
    items = list(healths)
    if not items:
        return Health(State.HEALTHY, "no workloads")
    return min(items, key=lambda h: (h.state.rank, h.message))


__all__ = ["RULES", "Health", "State", "health_of", "worst"]
