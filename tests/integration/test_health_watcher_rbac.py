"""manifests/health-watcher.yaml's RBAC on the real apiserver: with exactly those permissions the health
watcher takes its Lease, watches what it guards, restarts a failed pod, records its Events (and reads
them back), writes its status section and runs host discovery; and nothing more."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from healthwatcher.loop import HealthWatcher
from healthwatcher.metrics import Metrics
from openstack_gitops.api import Process
from openstack_gitops.kube.client import ApiError, Cluster
from openstack_gitops.kube.lease import LeaderElector, Timings
from openstack_gitops.kube.objects import ObjectKey
from testbed import bed, controlplane
from tests.waiting import wait_for

from .healthwatcher_support import (
    all_ready,
    apply_cronjob,
    cell_setup_objects,
    compute_daemonset,
    events,
    pod_deletes,
    pods,
    policy,
    publish,
)

pytestmark = pytest.mark.testbed
REPO = Path(__file__).resolve().parents[2]
SA_NAMESPACE, SA_NAME = "openstack-gitops", "openstack-gitops-health-watcher"
KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
COMPUTE = "application=nova,component=compute"


def rbac_docs(cloud_namespace: str) -> list[dict[str, Any]]:
    """The RBAC objects of manifests/health-watcher.yaml, the per-cloud RoleBinding moved to ``cloud_namespace``."""
    docs = [d for d in yaml.safe_load_all((REPO / "manifests" / "health-watcher.yaml").read_text())
            if d and d["kind"] in KINDS]
    for doc in docs:
        if doc["kind"] == "RoleBinding" and doc["metadata"]["namespace"] == "openstack":
            doc["metadata"]["namespace"] = cloud_namespace
    return docs


@pytest.fixture
def sa_cluster(testbed: bed.TestBed, namespace: str, tmp_path: Path) -> Iterator[tuple[Cluster, Cluster]]:
    """(admin, the health watcher's ServiceAccount) with manifests/health-watcher.yaml's RBAC installed."""
    with testbed.api_client() as api:
        admin = Cluster(api, field_manager="test-admin")
        admin.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SA_NAMESPACE}})
        docs = rbac_docs(namespace)
        created = [d for d in docs if not admin.exists(d["apiVersion"], ObjectKey.of(d))]
        for doc in docs:
            admin.apply(doc)
        token = client.CoreV1Api(api).create_namespaced_service_account_token(
            SA_NAME, SA_NAMESPACE, {"spec": {"expirationSeconds": 3600}}).status.token
        kubeconfig = tmp_path / "kubeconfig"
        controlplane.write_kubeconfig(kubeconfig, testbed.control.server, testbed.control.pki.serving_cert, token,
                                      "health-watcher-sa")
        sa_api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig))
        try:
            yield admin, Cluster(sa_api, Process.HEALTH_WATCHER)
        finally:
            sa_api.close()
            for doc in reversed(created):
                if doc["kind"] != "RoleBinding" or doc["metadata"]["namespace"] != namespace:
                    admin.delete(doc["apiVersion"], ObjectKey.of(doc))


def test_the_health_watcher_works_with_exactly_its_rbac(testbed: bed.TestBed, sa_cluster: tuple[Cluster, Cluster],
                                                        namespace: str) -> None:
    admin, sa = sa_cluster
    admin.apply(compute_daemonset(namespace))
    apply_cronjob(admin, namespace, cell_setup_objects())
    publish(admin, namespace, policy())
    wait_for(lambda: all_ready(admin, namespace, COMPUTE, 3), 60, "the compute pods Ready")
    elector = LeaderElector(sa, SA_NAMESPACE, "openstack-gitops-health-watcher", "rbac-test", Timings(4, 3, 1))
    elector.start()
    stop = threading.Event()
    watcher = HealthWatcher(sa, Metrics(), namespace=namespace, still_leader=elector.is_leader, identity="rbac-test")
    thread = threading.Thread(target=watcher.run, args=(stop,), daemon=True)
    try:
        assert elector.wait_leader(20), "the ServiceAccount could not take its Lease"
        thread.start()
        wait_for(watcher.synced, 30, "every watch listed (a 403 would keep one from it)")
        victim = pods(admin, namespace, COMPUTE)[0]["metadata"]["name"]
        testbed.fail_pod(namespace, victim, "crashloop")
        wait_for(lambda: any(d.pod == victim for d in watcher.done), 30, f"{victim} restarted")
        assert [e["objectRef"]["name"] for e in pod_deletes(testbed, namespace)] == [victim]
        assert events(admin, namespace, "HealthWatcherRestart")
        wait_for(lambda: ((admin.get("openstack-gitops.io/v1alpha1", "OpenStackDeployment", "cloud", namespace) or {})
                          .get("status") or {}).get("healthWatcher", {}).get("recent"), 15, "its status section")
        assert watcher.metrics.registry.get_sample_value("openstack_gitops_health_watcher_errors_total",
                                                         {"what": "restart"}) is None
        # what a new leader reads back, and the CronJob host discovery copies
        assert sa.list("events.k8s.io/v1", "Event", "", namespace) is not None
        assert sa.get("batch/v1", "CronJob", "nova-cell-setup", namespace) is not None
        # and nothing beyond: not Secrets, not the workloads themselves, not another Lease
        for refused in (
            lambda: sa.list("v1", "Secret", "", namespace),
            lambda: sa.apply(compute_daemonset(namespace)),
            lambda: sa.get_lease(SA_NAMESPACE, "openstack-gitops-reconciler", timeout=5),
        ):
            with pytest.raises(ApiError) as denied:
                refused()
            assert denied.value.status == 403, str(denied.value)
    finally:
        stop.set()
        thread.join(15)
        elector.step_down()
        elector.release()
