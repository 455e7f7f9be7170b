"""Health rules per kind, from fixture tables named after the state they show."""

from __future__ import annotations

from typing import Any

import pytest

from openstack_gitops.health import State, health_of, worst
from openstack_gitops.health.result import Health


def dep(generation: int = 1, observed: int = 1, replicas: int = 3, updated: int = 3, total: int = 3,
        available: int = 3, deadline: bool = False) -> dict[str, Any]:
    status: dict[str, Any] = {"observedGeneration": observed, "updatedReplicas": updated, "replicas": total,
                              "availableReplicas": available}
    if deadline:
        status["conditions"] = [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]
    return {"kind": "Deployment", "metadata": {"generation": generation}, "spec": {"replicas": replicas},
            "status": status}


CASES = {
    "deployment-healthy": (dep(), State.HEALTHY),
    "deployment-not-observed": (dep(generation=2), State.PROGRESSING),
    "deployment-rolling": (dep(updated=1), State.PROGRESSING),
    "deployment-old-replicas": (dep(total=4), State.PROGRESSING),
    "deployment-unavailable": (dep(available=2), State.PROGRESSING),
    "deployment-deadline-exceeded": (dep(deadline=True), State.DEGRADED),
    "statefulset-ready": ({"kind": "StatefulSet", "metadata": {"generation": 1}, "spec": {"replicas": 3},
                           "status": {"observedGeneration": 1, "readyReplicas": 3, "currentRevision": "a",
                                      "updateRevision": "a"}}, State.HEALTHY),
    "statefulset-revision-pending": ({"kind": "StatefulSet", "metadata": {"generation": 1}, "spec": {"replicas": 3},
                                      "status": {"observedGeneration": 1, "readyReplicas": 3,
                                                 "currentRevision": "a", "updateRevision": "b"}}, State.PROGRESSING),
    "statefulset-quorum-lost": ({"kind": "StatefulSet", "metadata": {"generation": 1}, "spec": {"replicas": 3},
                                 "status": {"observedGeneration": 1, "readyReplicas": 1}}, State.PROGRESSING),
    "daemonset-all-nodes": ({"kind": "DaemonSet", "metadata": {"generation": 1},
                             "status": {"observedGeneration": 1, "desiredNumberScheduled": 100,
                                        "updatedNumberScheduled": 100, "numberAvailable": 100}}, State.HEALTHY),
    "daemonset-rolling": ({"kind": "DaemonSet", "metadata": {"generation": 1},
                           "status": {"observedGeneration": 1, "desiredNumberScheduled": 100,
                                      "updatedNumberScheduled": 40, "numberAvailable": 100}}, State.PROGRESSING),
    "job-complete": ({"kind": "Job", "status": {"conditions": [{"type": "Complete", "status": "True"}]}},
                     State.HEALTHY),
    "job-failed": ({"kind": "Job", "status": {"conditions": [{"type": "Failed", "status": "True",
                                                              "message": "BackoffLimitExceeded"}]}}, State.DEGRADED),
    "job-running": ({"kind": "Job", "status": {"active": 1}}, State.PROGRESSING),
    "configmap-exists": ({"kind": "ConfigMap"}, State.HEALTHY),
}


@pytest.mark.parametrize(("obj", "state"), CASES.values(), ids=CASES.keys())
def test_health(obj: dict[str, Any], state: State) -> None:
    assert health_of(obj).state is state


def test_worst_of_several() -> None:
    assert worst([Health(State.HEALTHY, ""), Health(State.DEGRADED, "x")]).state is State.DEGRADED
    assert worst([]).state is State.HEALTHY


def test_worst_does_not_depend_on_the_order_workloads_are_listed_in() -> None:
    healths = [Health(State.HEALTHY, "3/3 pods available"), Health(State.HEALTHY, "1/1 replicas available"),
               Health(State.PROGRESSING, "b"), Health(State.PROGRESSING, "a")]
    assert worst(healths) == worst(list(reversed(healths))) == Health(State.PROGRESSING, "a")
    assert worst(healths[:2]) == worst(healths[1::-1])
