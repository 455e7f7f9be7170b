"""No fight: the reconciler and the autoscaler run together for minutes under changing load, and neither
resets the other's value (audit log: no replicas write by the reconciler); removing the policy hands
replicas back to Git at the next reconcile."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from openstack_gitops.api import Process
from openstack_gitops.model.presets import replicas as preset_replicas
from testbed import bed
from testbed.haproxy import HAProxy
from testbed.prometheus import Prometheus as PrometheusServer

from .autoscaler_support import backend_sessions, in_process, replicas, running, scale_writes, sessions, wait_for
from .reconcile_support import AUDIT_LAG, RECONCILER_AGENT, converged_cloud, object_writes_during

pytestmark = pytest.mark.testbed
LOAD_STEPS = (12, 20, 4, 0, 16, 0)  # sessions, 20 s each: two minutes of changing load
POLICY = {"minReplicas": 2, "maxReplicas": 6, "targetPerReplica": 4, "intervalSeconds": 2,
          "scaleDownStabilizationSeconds": 10}


def test_reconciler_and_autoscaler_never_reset_each_other(testbed: bed.TestBed, tmp_path: Path,
                                                          helm_repo: str) -> None:
    proxy = HAProxy(tmp_path / "haproxy", backends={"keystone-api": 1})  # keystone-api's default backend name
    prom = PrometheusServer(tmp_path / "prometheus", scrape_interval=1.0)
    try:
        proxy.start()
        prom.start()
        prom.add_target("haproxy", proxy.metrics_address)
        cloud = converged_cloud(testbed, tmp_path / "cloud", helm_repo)
        repo, reconciler, namespace = cloud["repo"], cloud["reconciler"], cloud["repo"].namespace
        repo.edit(lambda d: d["spec"]["autoscaling"].update({"keystone-api": dict(POLICY)}),
                  "keystone-api: 4 sessions per replica")
        assert reconciler.reconcile().ok
        scaler, cluster = in_process(testbed, prom.url, namespace)
        seen: list[int] = []
        reconciler_writes: list[str] = []
        audit_before = len(testbed.audit_events())
        with running(scaler), sessions(proxy.frontend_url("keystone-api")) as load:
            wait_for(lambda: replicas(cluster, namespace, "keystone-api") == 2, 30, "keystone-api at its minimum")
            wait_for(lambda: backend_sessions(prom, "keystone-api") == 0.0, 30, "Prometheus to see the idle backend")
            for sessions_now in LOAD_STEPS:
                load.set(sessions_now)
                step_end = time.monotonic() + 20
                while time.monotonic() < step_end:
                    outcome, writes = object_writes_during(testbed, reconciler.reconcile)
                    assert outcome.ok, outcome.message
                    reconciler_writes += writes
                    seen.append(replicas(cluster, namespace, "keystone-api"))
                    time.sleep(2)
        time.sleep(AUDIT_LAG)
        assert max(seen) >= 5 and seen[-1] < max(seen), f"the autoscaler should have scaled up and down: {seen}"
        assert not [w for w in reconciler_writes if "deployments/keystone-api" in w], reconciler_writes
        writers = {str(e.get("userAgent", "")) for e in scale_writes(testbed, namespace, "keystone-api", audit_before)}
        assert writers and all(w.startswith(Process.AUTOSCALER.user_agent) for w in writers), writers
        assert reconciler.reconcile().ok  # settles the status after the last scale
        status_writes = _reconciler_status_writes(testbed, namespace)
        assert reconciler.reconcile().ok
        time.sleep(AUDIT_LAG)
        assert _reconciler_status_writes(testbed, namespace) == status_writes, \
            "a no-op reconcile must not rewrite the status because the autoscaler's section is there"
        # removing the policy hands replicas back to Git at the next reconcile
        repo.edit(lambda d: d["spec"]["autoscaling"].clear(), "keystone-api: no autoscaling")
        outcome, writes = object_writes_during(testbed, reconciler.reconcile)
        assert outcome.ok, outcome.message
        assert "patch deployments/keystone-api" in writes, writes
        spec = reconciler.spec
        assert spec is not None
        git_value = preset_replicas(spec.size, "keystone")["api"]
        assert replicas(cluster, namespace, "keystone-api") == git_value
        scaler.tick(force=True)  # the autoscaler has no policy for it any more: it writes nothing
        assert replicas(cluster, namespace, "keystone-api") == git_value
    finally:
        prom.stop()
        proxy.stop()


def _reconciler_status_writes(testbed: bed.TestBed, namespace: str) -> int:
    return sum(1 for e in testbed.audit_events(user_agent_prefix=RECONCILER_AGENT)
               if (e.get("objectRef") or {}).get("subresource") == "status"
               and (e.get("objectRef") or {}).get("namespace") == namespace and e.get("verb") == "patch")
