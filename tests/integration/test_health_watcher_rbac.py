"""manifests/health-watcher.yaml's RBAC on the real apiserver: with exactly those permissions the health
watcher takes its Lease, watches what it guards, restarts a failed pod, records its Events (and reads
them back), writes its status section and runs host discovery; and nothing more."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from healthwatcher.loop import HealthWatcher
from healthwatcher.metrics import Metrics
from openstack_gitops import api
from openstack_gitops.api import Process
from openstack_gitops.kube.client import ApiError, Cluster
from openstack_gitops.kube.lease import LeaderElector, Timings
from testbed import bed
from tests.background import running
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
from .rbac_support import SA_NAMESPACE, as_service_account

pytestmark = pytest.mark.testbed
SA_NAME = "openstack-gitops-health-watcher"
COMPUTE = "application=nova,component=compute"


@pytest.fixture
def sa_cluster(testbed: bed.TestBed, namespace: str, tmp_path: Path) -> Iterator[tuple[Cluster, Cluster]]:
    """(admin, its ServiceAccount) with manifests/health-watcher.yaml's RBAC installed."""
    with as_service_account(testbed, "health-watcher.yaml", SA_NAME, Process.HEALTH_WATCHER, namespace,
                            tmp_path) as clusters:
        yield clusters


def test_the_health_watcher_works_with_exactly_its_rbac(testbed: bed.TestBed, sa_cluster: tuple[Cluster, Cluster],
                                                        namespace: str) -> None:
    admin, sa = sa_cluster
    admin.apply(compute_daemonset(namespace))
    apply_cronjob(admin, namespace, cell_setup_objects())
    publish(admin, namespace, policy())
    wait_for(lambda: all_ready(admin, namespace, COMPUTE, 3), 60, "the compute pods Ready")
    elector = LeaderElector(sa, SA_NAMESPACE, "openstack-gitops-health-watcher", "rbac-test", Timings(4, 3, 1))
    elector.start()
    watcher = HealthWatcher(sa, Metrics(), namespace=namespace, still_leader=elector.is_leader, identity="rbac-test")
    try:
        assert elector.wait_leader(20), "the ServiceAccount could not take its Lease"
        with running(watcher, "health-watcher"):
            wait_for(watcher.synced, 30, "every watch listed (a 403 would keep one from it)")
            victim = pods(admin, namespace, COMPUTE)[0]["metadata"]["name"]
            testbed.fail_pod(namespace, victim, "crashloop")
            wait_for(lambda: any(d.pod == victim for d in watcher.done), 30, f"{victim} restarted")
            assert [e["objectRef"]["name"] for e in pod_deletes(testbed, namespace)] == [victim]
            assert events(admin, namespace, "HealthWatcherRestart")
            wait_for(lambda: ((admin.get(api.API_VERSION, api.KIND, "cloud", namespace) or {})
                              .get("status") or {}).get(api.HEALTH_WATCHER_STATUS, {}).get("recent"), 15,
                     "its status section")
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
        elector.step_down()
        elector.release()
