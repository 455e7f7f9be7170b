"""Host discovery on the test bed: Jobs made from the real nova chart's CronJob ``nova-cell-setup``.

The CronJob (and the ServiceAccount its pods run as) is rendered from the upstream chart with the template
spec through the reconciler's pipeline and applied, stamped as the reconciler applies it, in a namespace
of the test's own. No compute DaemonSet is needed: the tests call ``HostDiscovery.observe`` with node
names as the owner would. kwok runs the Jobs' pods on the control-plane nodes and completes them (about
a second after they are Ready), so each Job really runs and ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from healthwatcher.discovery import LABEL, Retry, job_state
from healthwatcher.hostdiscovery import HostDiscovery, Reason
from openstack_gitops.api import Process
from openstack_gitops.kube.client import Cluster
from openstack_gitops.kube.objects import Manifest
from testbed import bed
from tests.waiting import wait_for

from .healthwatcher_support import apply_cronjob, cell_setup_objects

pytestmark = pytest.mark.testbed

TEMPLATE = Path(__file__).resolve().parents[2] / "config-repo-template" / "openstack.yaml"
KUBE_VERSION = "v1.36.3"
FAST = Retry(base=0.5, cap=1.0)


@pytest.fixture(scope="module")
def rendered() -> dict[str, Manifest]:
    return cell_setup_objects()


@pytest.fixture
def cluster(testbed: bed.TestBed) -> Iterator[Cluster]:
    with testbed.api_client() as api:
        yield Cluster(api, Process.HEALTH_WATCHER)


@pytest.fixture
def cronjob(cluster: Cluster, namespace: str, rendered: dict[str, Manifest]) -> Manifest:
    return apply_cronjob(cluster, namespace, rendered)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def __call__(self, reason: str, message: str) -> None:
        self.events.append((reason, message))

    def reasons(self) -> list[str]:
        return [reason for reason, _ in self.events]


class Jobs:
    """Our Jobs in the namespace. Every name ever listed is kept: the CronJob's controller counts the Jobs
    as its own and deletes finished ones beyond its history limit (``successfulJobsHistoryLimit: 3``)."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self.cluster, self.namespace = cluster, namespace
        self.seen: set[str] = set()

    def live(self) -> list[Manifest]:
        jobs = self.cluster.list("batch/v1", "Job", f"{LABEL}=true", self.namespace)
        self.seen.update(j["metadata"]["name"] for j in jobs)
        return sorted(jobs, key=lambda j: str(j["metadata"]["name"]))

    def count(self) -> int:
        self.live()
        return len(self.seen)

    def newest(self) -> Manifest:
        return self.live()[-1]


def drive(hd: HostDiscovery, done: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    """Call ``tick`` as the owner's loop would (now: the wall clock) until ``done()`` is truthy."""
    def step() -> Any:
        hd.tick(time.time())
        return done()
    return wait_for(step, timeout, what, every=0.1)


def finished(cluster: Cluster, namespace: str, name: str) -> bool:
    job = cluster.get("batch/v1", "Job", name, namespace)
    return job is not None and job_state(job) is True


def test_new_nodes_run_the_charts_job_one_at_a_time(cluster: Cluster, namespace: str, cronjob: Manifest) -> None:
    events, jobs = Recorder(), Jobs(cluster, namespace)
    hd = HostDiscovery(cluster, namespace, on_event=events, debounce=0.3, poll=0.2, retry=FAST)

    # priming: the nodes there at start are covered by the chart's own Job; nothing runs
    hd.observe(frozenset({"compute-1"}), time.time())
    assert hd.due() is None
    hd.tick(time.time())
    time.sleep(0.5)
    hd.tick(time.time())
    assert jobs.count() == 0 and events.events == []

    # a new node: exactly one Job, from the chart's template, owned by the CronJob; kwok completes it
    hd.observe(frozenset({"compute-1", "compute-2"}), time.time())
    drive(hd, lambda: jobs.count() >= 1, what="the first Job")
    assert jobs.count() == 1
    job = jobs.newest()
    assert job["metadata"]["ownerReferences"] == [{"apiVersion": "batch/v1", "kind": "CronJob",
                                                   "name": "nova-cell-setup", "uid": cronjob["metadata"]["uid"],
                                                   "controller": True}]
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    pod, template = job["spec"]["template"]["spec"], cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["containers"] == template["containers"] and pod["initContainers"] == template["initContainers"]
    assert (Process.HEALTH_WATCHER.field_manager, "Update") in {  # created (a POST) by the health watcher
        (m["manager"], m["operation"]) for m in job["metadata"]["managedFields"]}
    assert hd.state.covering == {"compute-2"}
    drive(hd, lambda: hd.state.running is None, what="the first Job to end")
    assert finished(cluster, namespace, job["metadata"]["name"])
    assert hd.state.known == {"compute-1", "compute-2"}

    # yet another node: a second Job
    hd.observe(frozenset({"compute-1", "compute-2", "compute-3"}), time.time())
    drive(hd, lambda: jobs.count() >= 2, what="the second Job")
    assert jobs.count() == 2
    drive(hd, lambda: hd.state.running is None, what="the second Job to end")

    # a node starts a third Job; two more arriving while it runs make one more Job after it, not two
    hd.observe(frozenset({"compute-1", "compute-2", "compute-3", "compute-4"}), time.time())
    drive(hd, lambda: jobs.count() >= 3, what="the third Job")
    third = jobs.newest()["metadata"]["name"]
    hd.observe(frozenset({"compute-1", "compute-2", "compute-3", "compute-4", "compute-5"}), time.time())
    hd.observe(frozenset({"compute-1", "compute-2", "compute-3", "compute-4", "compute-5", "compute-6"}),
               time.time())
    live = cluster.get("batch/v1", "Job", third, namespace)
    assert live is not None and job_state(live) is None, "the third Job ended before the nodes came: no test"
    assert hd.state.running == third and hd.state.pending == {"compute-5", "compute-6"}
    while hd.state.running == third:  # no other Job while the third runs
        hd.tick(time.time())
        assert jobs.count() == 3
        time.sleep(0.1)
    drive(hd, lambda: jobs.count() >= 4, what="the Job after the third")
    assert finished(cluster, namespace, third)
    assert jobs.count() == 4 and hd.state.covering == {"compute-5", "compute-6"}
    drive(hd, lambda: hd.state.running is None, what="the fourth Job to end")
    end = time.monotonic() + 2
    while time.monotonic() < end:  # nothing is left to start
        hd.tick(time.time())
        time.sleep(0.1)
    assert jobs.count() == 4 and events.reasons() == [Reason.STARTED, Reason.SUCCEEDED] * 4
    # owned by the CronJob: its controller keeps 3 finished Jobs, as of its own
    wait_for(lambda: len(jobs.live()) == 3, 30, "the CronJob's history limit")
    assert all(job_state(j) is True for j in jobs.live())


def test_a_restarted_watcher_adopts_the_running_job_instead_of_starting_another(
        cluster: Cluster, namespace: str, cronjob: Manifest) -> None:
    jobs = Jobs(cluster, namespace)
    before = HostDiscovery(cluster, namespace, debounce=0.1, poll=0.2)
    before.observe(frozenset({"compute-1"}), time.time())
    before.observe(frozenset({"compute-1", "compute-2"}), time.time())
    drive(before, lambda: jobs.count() >= 1, what="the first process's Job")
    running = jobs.newest()["metadata"]["name"]

    events = Recorder()  # the process restarts while its Job runs, and a node joins at once
    after = HostDiscovery(cluster, namespace, on_event=events, debounce=0.1, poll=0.2)
    after.observe(frozenset({"compute-1", "compute-2"}), time.time())
    after.observe(frozenset({"compute-1", "compute-2", "compute-3"}), time.time())
    drive(after, lambda: after.state.running, what="the adoption")
    assert after.state.running == running and events.reasons() == [Reason.ADOPTED]
    live = cluster.get("batch/v1", "Job", running, namespace)
    assert live is not None and job_state(live) is None, "the Job ended before the restart: no test"

    drive(after, lambda: jobs.count() >= 2, what="the next Job")
    assert finished(cluster, namespace, running) and jobs.count() == 2
    assert after.state.covering == {"compute-3"}
    assert events.reasons() == [Reason.ADOPTED, Reason.SUCCEEDED, Reason.STARTED]


def test_a_missing_cronjob_is_reported_once_and_retried(cluster: Cluster, namespace: str,
                                                        rendered: dict[str, Manifest]) -> None:
    events, jobs = Recorder(), Jobs(cluster, namespace)
    hd = HostDiscovery(cluster, namespace, on_event=events, debounce=0.1, retry=Retry(base=0.2, cap=0.2))
    hd.observe(frozenset({"compute-1"}), time.time())
    hd.observe(frozenset({"compute-1", "compute-2"}), time.time())
    drive(hd, lambda: hd.state.failures >= 3, timeout=10, what="three tries")
    assert events.reasons() == [Reason.CRONJOB_MISSING] and "nova-cell-setup" in events.events[0][1]
    assert jobs.count() == 0 and hd.state.pending == {"compute-2"}

    apply_cronjob(cluster, namespace, rendered)  # the chart comes: the next try runs the Job
    drive(hd, jobs.count, timeout=10, what="the Job once the CronJob is there")
    assert events.reasons() == [Reason.CRONJOB_MISSING, Reason.STARTED]
