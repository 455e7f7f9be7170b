"""manifests/autoscaler.yaml's RBAC on the real apiserver: with exactly those permissions the autoscaler
takes its Lease, reads its policies, scales, writes its status section and Events, and nothing more."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from autoscaler.edges.prometheus import Prometheus, PrometheusConfig
from autoscaler.loop import Autoscaler
from autoscaler.metrics import Metrics
from openstack_gitops.api import Process
from openstack_gitops.kube.client import ApiError, Cluster
from openstack_gitops.kube.lease import LeaderElector, Timings
from openstack_gitops.kube.objects import ObjectKey
from openstack_gitops.model.spec import AutoscalingPolicy
from testbed import bed, controlplane

from .autoscaler_support import deployment, publish, replicas

pytestmark = pytest.mark.testbed
REPO = Path(__file__).resolve().parents[2]
SA_NAMESPACE, SA_NAME = "openstack-gitops", "openstack-gitops-autoscaler"
KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")


def rbac_docs(cloud_namespace: str) -> list[dict[str, Any]]:
    """The RBAC objects of manifests/autoscaler.yaml, the per-cloud RoleBinding moved to ``cloud_namespace``."""
    docs = [d for d in yaml.safe_load_all((REPO / "manifests" / "autoscaler.yaml").read_text())
            if d and d["kind"] in KINDS]
    for doc in docs:
        if doc["kind"] == "RoleBinding" and doc["metadata"]["namespace"] == "openstack":
            doc["metadata"]["namespace"] = cloud_namespace
    return docs


@pytest.fixture
def sa_cluster(testbed: bed.TestBed, namespace: str, tmp_path: Path) -> Iterator[tuple[Cluster, Cluster]]:
    """(admin, the autoscaler's ServiceAccount) with manifests/autoscaler.yaml's RBAC installed."""
    with testbed.api_client() as api:
        admin = Cluster(api, field_manager="test-admin")
        api.user_agent = "test-admin"
        admin.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SA_NAMESPACE}})
        docs = rbac_docs(namespace)
        created = [d for d in docs if not admin.exists(d["apiVersion"], ObjectKey.of(d))]
        for doc in docs:
            admin.apply(doc)
        token = client.CoreV1Api(api).create_namespaced_service_account_token(
            SA_NAME, SA_NAMESPACE, {"spec": {"expirationSeconds": 3600}}).status.token
        kubeconfig = tmp_path / "kubeconfig"
        controlplane.write_kubeconfig(kubeconfig, testbed.control.server, testbed.control.pki.serving_cert, token,
                                      "autoscaler-sa")
        sa_api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig))
        try:
            yield admin, Cluster(sa_api, Process.AUTOSCALER)
        finally:
            sa_api.close()
            for doc in reversed(created):
                if doc["kind"] != "RoleBinding" or doc["metadata"]["namespace"] != namespace:
                    admin.delete(doc["apiVersion"], ObjectKey.of(doc))


def test_the_autoscaler_works_with_exactly_its_rbac(sa_cluster: tuple[Cluster, Cluster], namespace: str) -> None:
    admin, sa = sa_cluster
    admin.apply(deployment("rbac-api", namespace, 1))
    publish(admin, namespace, [AutoscalingPolicy("rbac-api", 2, 4, 10.0, backend="rbac-api")])
    # the Lease: `create` is not restricted by name; get/update only for its own name
    elector = LeaderElector(sa, SA_NAMESPACE, "openstack-gitops-autoscaler", "rbac-test", Timings(4, 3, 1))
    elector.start()
    try:
        assert elector.wait_leader(20), "the ServiceAccount could not take its Lease"
        nobody = Prometheus(PrometheusConfig("http://127.0.0.1:9", timeout=1))  # no data: bounds need none
        scaler = Autoscaler(sa, nobody, Metrics(), namespace=namespace, still_leader=elector.is_leader,
                            identity="rbac-test")
        report = scaler.tick(force=True)
        assert report.error == ""
        assert report.scaled == [(f"{namespace}/rbac-api", 1, 2, "below-min")]
        assert replicas(admin, namespace, "rbac-api") == 2
        live = admin.get("openstack-gitops.io/v1alpha1", "OpenStackDeployment", "cloud", namespace) or {}
        assert live["status"]["autoscaler"]["targets"]["rbac-api"]["replicas"] == 2
        notes = [e.get("note", "") for e in admin.list("events.k8s.io/v1", "Event", "", namespace)]
        assert any("1 -> 2 replicas, below-min" in n for n in notes), notes
        # and nothing beyond: not the Deployment itself, not Secrets, not another Lease
        for refused in (
            lambda: sa.apply(deployment("rbac-api", namespace, 9)),
            lambda: sa.list("v1", "Secret", "", namespace),
            lambda: sa.get_lease(SA_NAMESPACE, "openstack-gitops-reconciler", timeout=5),
        ):
            with pytest.raises(ApiError) as denied:
                refused()
            assert denied.value.status == 403, str(denied.value)
    finally:
        elector.step_down()
        elector.release()
