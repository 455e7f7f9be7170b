"""Other processes' status sections: the reconciler leaves them alone, ``openstack-gitops status`` shows them."""

from __future__ import annotations

from reconciler.cli import format_status
from reconciler.engine.status import _comparable


def test_the_autoscalers_section_is_no_reason_for_the_reconciler_to_write() -> None:
    mine = {"state": "Ready", "health": "9/9", "conditions": []}
    live = {**mine, "autoscaler": {"targets": {"keystone-api": {"replicas": 4}}}}
    assert _comparable(live) == _comparable(mine)
    assert "autoscaler" not in _comparable(live)


def test_openstack_gitops_status_prints_the_autoscaler_section() -> None:
    item = {"metadata": {"name": "cloud", "namespace": "openstack"},
            "status": {"state": "Ready", "services": {},
                       "autoscaler": {"paused": False, "leader": "pod-a",
                                      "targets": {"nova-api-osapi": {
                                          "replicas": 4, "desiredReplicas": 4, "minReplicas": 2, "maxReplicas": 10,
                                          "metric": "haproxy-sessions", "value": 31.0, "targetPerReplica": 10.0,
                                          "reason": "scale-up", "lastScale": {"time": "2026-12-01T11:00:00Z",
                                                                              "from": 2, "to": 4}}}}}}
    text = format_status(item)
    assert "autoscaler  leader pod-a" in text
    line = next(line for line in text.splitlines() if "nova-api-osapi" in line)
    assert all(part in line for part in ("4", "2-10", "haproxy-sessions", "31/10", "scale-up", "2->4"))


def test_the_health_watchers_section_is_no_reason_for_the_reconciler_to_write() -> None:
    mine = {"state": "Ready", "health": "9/9", "conditions": []}
    live = {**mine, "healthWatcher": {"workloads": {"nova-compute-default": {"pods": 3}}}}
    assert _comparable(live) == _comparable(mine)


def test_openstack_gitops_status_prints_the_health_watcher_section() -> None:
    item = {"metadata": {"name": "cloud", "namespace": "openstack"},
            "status": {"state": "Ready", "services": {},
                       "healthWatcher": {
                           "enabled": True, "leader": "pod-b", "maxRestartsPerHour": 10, "restartsLastHour": 2,
                           "workloads": {"nova-compute-default": {"kind": "DaemonSet", "pods": 100, "ready": 98,
                                                                  "failed": 2, "breaker": "closed"},
                                         "mariadb-server": {"kind": "StatefulSet", "pods": 3, "ready": 1,
                                                            "failed": 1, "breaker": "closed"}},
                           "failedPods": 1,
                           "failing": [{"pod": "mariadb-server-2", "node": "control-01", "rule": "crash-loop",
                                        "since": "2026-12-01T11:00:00Z", "decision": "db-quorum"}],
                           "recent": [{"time": "2026-12-01T11:01:00Z", "pod": "nova-compute-default-abcde",
                                       "node": "compute-0007", "action": "delete", "reason": "restart"}]}}}
    text = format_status(item)
    assert "health watcher  restarts 2/10 this hour  leader pod-b" in text
    line = next(line for line in text.splitlines() if "nova-compute-default " in line)
    assert all(part in line for part in ("DaemonSet", "100", "98", "closed"))
    assert any("mariadb-server-2" in line and "db-quorum" in line and "crash-loop" in line
               for line in text.splitlines())
    assert any("compute-0007" in line and "delete" in line for line in text.splitlines())
