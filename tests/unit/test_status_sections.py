"""The autoscaler's status section: the reconciler's writes leave it alone, ``openstack-gitops status`` shows it."""

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
