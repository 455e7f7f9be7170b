"""manifests/autoscaler.yaml's RBAC on the real apiserver: with exactly those permissions the autoscaler
takes its Lease, reads its policies, scales, writes its status section and Events, and nothing more."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from autoscaler.edges.prometheus import Prometheus, PrometheusConfig
from autoscaler.loop import Autoscaler
from autoscaler.metrics import Metrics
from openstack_gitops.api import Process
from openstack_gitops.kube.client import ApiError, Cluster
from openstack_gitops.kube.lease import LeaderElector, Timings
from openstack_gitops.model.spec import AutoscalingPolicy
from testbed import bed

from .autoscaler_support import deployment, publish, replicas
from .rbac_support import SA_NAMESPACE, as_service_account

pytestmark = pytest.mark.testbed
SA_NAME = "openstack-gitops-autoscaler"


@pytest.fixture
def sa_cluster(testbed: bed.TestBed, namespace: str, tmp_path: Path) -> Iterator[tuple[Cluster, Cluster]]:
    """(admin, its ServiceAccount) with manifests/autoscaler.yaml's RBAC installed."""
    with as_service_account(testbed, "autoscaler.yaml", SA_NAME, Process.AUTOSCALER, namespace, tmp_path) as clusters:
        yield clusters


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
