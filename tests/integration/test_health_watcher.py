"""The health watcher on the real test bed, with failures injected through kwok: restart and report,
database quorum, the circuit breaker, an apiserver restart, and a leader killed mid-way.

The guarded workloads carry their charts' names (nova-compute-default on the compute nodes,
mariadb-server), the policy is published on a real OpenStackDeployment, notifications go to a real
Alertmanager, and what the watcher did is read back from the apiserver's audit log."""

from __future__ import annotations

import signal
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as kube_client

from healthwatcher import discovery
from healthwatcher.edges.notifiers import AlertmanagerSink, Notifier
from openstack_gitops import api
from openstack_gitops.kube.client import Cluster
from testbed import bed
from testbed.alertmanager import Alertmanager
from tests.waiting import wait_for

from .healthwatcher_support import (
    FAST,
    all_ready,
    apply_cronjob,
    cell_setup_objects,
    compute_daemonset,
    database_statefulset,
    events,
    in_process,
    pod_deletes,
    pods,
    policy,
    publish,
    running,
    start_process,
)

pytestmark = pytest.mark.testbed
COMPUTE = "application=nova,component=compute"
DATABASE = "application=mariadb,component=server"


@pytest.fixture
def cloud(testbed: bed.TestBed, namespace: str) -> Iterator[Cluster]:
    """A namespace with nova-compute-default on the 3 compute nodes, a 3-member mariadb-server, and the
    policy published; every pod Ready."""
    with testbed.api_client() as client_:
        admin = Cluster(client_, field_manager="test-admin")
        admin.apply(compute_daemonset(namespace))
        admin.apply(database_statefulset(namespace))
        publish(admin, namespace, policy())
        wait_for(lambda: all_ready(admin, namespace, COMPUTE, 3) and all_ready(admin, namespace, DATABASE, 3),
                 120, "the guarded pods Ready")
        yield admin


def _metric(watcher: Any, name: str, **labels: str) -> float:
    return float(watcher.metrics.registry.get_sample_value(name, labels) or 0.0)


def _notifier(alertmanager: Alertmanager) -> Notifier:
    notifier = Notifier([AlertmanagerSink(alertmanager.url)])
    notifier.start()
    return notifier


def test_a_failing_compute_pod_is_restarted_and_reported_within_seconds(
        testbed: bed.TestBed, namespace: str, cloud: Cluster, alertmanager: Alertmanager) -> None:
    notifier = _notifier(alertmanager)
    watcher, _ = in_process(testbed, namespace, notifier)
    try:
        with running(watcher):
            wait_for(watcher.synced, 30, "the watcher's first lists")
            victim = pods(cloud, namespace, COMPUTE)[0]
            name, node, uid = victim["metadata"]["name"], victim["spec"]["nodeName"], victim["metadata"]["uid"]
            failed_at = time.monotonic()
            testbed.fail_pod(namespace, name, "crashloop")
            wait_for(lambda: any(d.pod == name for d in watcher.done), 30, f"{name} restarted")
            took = time.monotonic() - failed_at
            assert took < 10, f"restarted {took:.1f}s after the failure (grace 1s)"
            wait_for(lambda: all_ready(cloud, namespace, COMPUTE, 3) and
                     uid not in {p["metadata"]["uid"] for p in pods(cloud, namespace, COMPUTE)},
                     60, "a new compute pod Ready on the node")
            # reported: Events on the pod and the DaemonSet, metrics, the status section, Alertmanager
            restarts = events(cloud, namespace, "HealthWatcherRestart")
            assert {(e["regarding"]["kind"], e["regarding"]["name"]) for e in restarts} == {
                ("Pod", name), ("DaemonSet", "nova-compute-default")}
            assert node in restarts[0]["note"]
            assert _metric(watcher, "openstack_gitops_health_watcher_restarts_total", namespace=namespace,
                           workload="nova-compute-default", action="delete") == 1
            assert _metric(watcher, "openstack_gitops_health_watcher_detection_to_restart_seconds_count") == 1
            section = wait_for(lambda: ((cloud.get(api.API_VERSION, api.KIND, "cloud", namespace) or {})
                                        .get("status") or {}).get(api.HEALTH_WATCHER_STATUS), 10, "the status")
            wait_for(lambda: ((cloud.get(api.API_VERSION, api.KIND, "cloud", namespace) or {})
                              .get("status") or {}).get(api.HEALTH_WATCHER_STATUS, {}).get("recent"), 10,
                     "the restart in the status")
            section = (cloud.get(api.API_VERSION, api.KIND, "cloud", namespace) or {})["status"][
                api.HEALTH_WATCHER_STATUS]
            assert section["recent"][0]["pod"] == name and section["recent"][0]["action"] == "delete"
            assert section["workloads"]["nova-compute-default"]["breaker"] == "closed"
            alerts = wait_for(lambda: alertmanager.alerts({"alertname": "OpenStackPodRestarted", "pod": name}), 15,
                              "the restart alert in Alertmanager")
            assert alerts[0]["labels"]["node"] == node
            assert alerts[0]["labels"]["namespace"] == namespace
            # exactly one restart: the replacement is not touched
            time.sleep(3)
            deletes = pod_deletes(testbed, namespace)
            assert [e["objectRef"]["name"] for e in deletes] == [name]
    finally:
        notifier.stop()


def test_a_database_member_failing_while_another_is_down_is_not_restarted(
        testbed: bed.TestBed, namespace: str, cloud: Cluster) -> None:
    watcher, _ = in_process(testbed, namespace)
    with running(watcher):
        wait_for(watcher.synced, 30, "the watcher's first lists")
        testbed.fail_pod(namespace, "mariadb-server-1", "crashloop")
        testbed.fail_pod(namespace, "mariadb-server-2", "crashloop")
        refused = wait_for(lambda: [e for e in events(cloud, namespace, "HealthWatcherRefused")
                                    if e["regarding"]["kind"] == "Pod"], 30, "the refusal reported")
        assert "db-quorum" in refused[0]["note"], refused[0]["note"]
        assert "quorum 2" in refused[0]["note"]
        time.sleep(4)  # several grace times: still nothing restarted
        assert pod_deletes(testbed, namespace) == []
        assert _metric(watcher, "openstack_gitops_health_watcher_refusals_total", namespace=namespace,
                       workload="mariadb-server", reason="db-quorum") == 2
        assert watcher.done == []


def test_half_the_compute_pods_failing_opens_the_breaker(
        testbed: bed.TestBed, namespace: str, cloud: Cluster, alertmanager: Alertmanager) -> None:
    # "at once" is within the grace time: kwok may take a second or two between the two failures
    publish(cloud, namespace, policy(**{"nova-compute-default": {"graceSeconds": {**FAST, "crashLoop": 6}}}))
    notifier = _notifier(alertmanager)
    watcher, _ = in_process(testbed, namespace, notifier)
    try:
        with running(watcher):
            wait_for(watcher.synced, 30, "the watcher's first lists")
            for pod in pods(cloud, namespace, COMPUTE)[:2]:
                testbed.fail_pod(namespace, pod["metadata"]["name"], "crashloop")
            opened = wait_for(lambda: events(cloud, namespace, "HealthWatcherBreakerOpen"), 30, "the breaker opened")
            assert opened[0]["regarding"] == {"apiVersion": "apps/v1", "kind": "DaemonSet",
                                              "name": "nova-compute-default", "namespace": namespace}
            assert "2 of 3 pods" in opened[0]["note"]
            wait_for(lambda: alertmanager.alerts({"alertname": "OpenStackHealthWatcherBreakerOpen",
                                                  "namespace": namespace}), 15, "the breaker alert")
            time.sleep(3)
            assert pod_deletes(testbed, namespace) == [] and watcher.done == []
            assert _metric(watcher, "openstack_gitops_health_watcher_breaker_open", namespace=namespace,
                           workload="nova-compute-default") == 1
            section = wait_for(lambda: ((cloud.get(api.API_VERSION, api.KIND, "cloud", namespace) or {})
                                        .get("status") or {}).get(api.HEALTH_WATCHER_STATUS, {})
                               .get("workloads", {}).get("nova-compute-default", {}).get("breaker") == "open",
                               10, "the breaker in the status")
            assert section
    finally:
        notifier.stop()


def test_the_watch_survives_an_apiserver_restart_and_sees_what_failed_meanwhile(
        testbed: bed.TestBed, namespace: str, cloud: Cluster) -> None:
    watcher, _ = in_process(testbed, namespace)
    with running(watcher):
        wait_for(watcher.synced, 30, "the watcher's first lists")
        victim = pods(cloud, namespace, COMPUTE)[1]["metadata"]["name"]
        testbed.restart("kube-apiserver")
        testbed.fail_pod(namespace, victim, "crashloop")  # at once: the watcher is still backing off
        wait_for(lambda: any(d.pod == victim for d in watcher.done), 90, f"{victim} restarted after the outage")
        assert sum(w.counters.failures + w.counters.expired for w in watcher.watches) > 0, \
            "the watches never noticed the apiserver was gone"
        assert [e["objectRef"]["name"] for e in pod_deletes(testbed, namespace)] == [victim]


def _leader(metrics_ports: dict[str, int]) -> str | None:
    for identity, port in metrics_ports.items():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
                if "openstack_gitops_leader 1.0" in response.read().decode():
                    return identity
        except OSError:
            continue
    return None


def test_a_leader_killed_after_a_restart_hands_over_without_restarting_a_pod_twice(
        testbed: bed.TestBed, namespace: str, cloud: Cluster, tmp_path: Path) -> None:
    procs = {}
    ports = {}
    try:
        for identity in ("watcher-a", "watcher-b"):
            procs[identity], ports[identity] = start_process(testbed, namespace, identity, tmp_path / f"{identity}.log")
        leader = wait_for(lambda: _leader(ports), 60, "a leader")
        time.sleep(3)  # its first lists
        victim = pods(cloud, namespace, COMPUTE)[0]
        name, node = victim["metadata"]["name"], victim["spec"]["nodeName"]
        testbed.fail_pod(namespace, name, "crashloop")
        wait_for(lambda: pod_deletes(testbed, namespace), 30, f"{name} restarted by the leader")
        procs[leader].send_signal(signal.SIGKILL)
        procs[leader].wait(10)
        # its replacement fails at once too: the new leader must know the slot was just restarted
        successor = wait_for(lambda: [p for p in pods(cloud, namespace, COMPUTE)
                                      if p["spec"].get("nodeName") == node and p["metadata"]["name"] != name
                                      and p.get("status", {}).get("phase") == "Running"], 60, "the replacement")
        testbed.fail_pod(namespace, successor[0]["metadata"]["name"], "crashloop")
        other = next(i for i in procs if i != leader)
        wait_for(lambda: _leader({other: ports[other]}), 60, "the standby to lead")
        refused = wait_for(lambda: [e for e in events(cloud, namespace, "HealthWatcherRefused")
                                    if e["regarding"]["name"] == successor[0]["metadata"]["name"]], 30,
                           "the new leader's back-off refusal")
        assert "backing-off" in refused[0]["note"]
        deletes = pod_deletes(testbed, namespace)
        uids = [(e.get("requestObject") or {}).get("preconditions", {}).get("uid") for e in deletes]
        assert [e["objectRef"]["name"] for e in deletes] == [name], "a pod restarted twice, or too soon"
        assert len(set(uids)) == len(uids)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
                proc.wait(15)


def test_a_new_compute_node_triggers_host_discovery_once(
        testbed: bed.TestBed, namespace: str, cloud: Cluster) -> None:
    apply_cronjob(cloud, namespace, cell_setup_objects())

    def jobs() -> list[dict[str, Any]]:
        return cloud.list("batch/v1", "Job", f"{discovery.LABEL}=true", namespace)

    watcher, _ = in_process(testbed, namespace)
    with running(watcher):
        wait_for(lambda: namespace in watcher.discoveries and watcher.discoveries[namespace].state.primed, 30,
                 "host discovery primed with the nodes already there")
        time.sleep(2)
        assert jobs() == [], "the nodes that were there when it started are the chart's CronJob's"
        with testbed.api_client() as client_:
            testbed.add_nodes(control_plane=3, compute=4)
            try:
                wait_for(lambda: all_ready(cloud, namespace, COMPUTE, 4), 60, "nova-compute on the new node")
                job = wait_for(jobs, 60, "the host discovery Job")[0]
                owner = job["metadata"]["ownerReferences"][0]
                assert (owner["kind"], owner["name"]) == ("CronJob", "nova-cell-setup")
                wait_for(lambda: [j for j in jobs() if discovery.job_state(j) is True], 60, "the Job complete")
                time.sleep(7)  # longer than the debounce: no second Job for the same node
                assert len(jobs()) == 1
                started = [e for e in events(cloud, namespace, "HostDiscoveryStarted")
                           if e["regarding"]["kind"] == "CronJob"]
                assert len(started) == 1 and "compute-0003" in started[0]["note"]
                assert _metric(watcher, "openstack_gitops_health_watcher_host_discovery_total", namespace=namespace,
                               result="HostDiscoverySucceeded") == 1
            finally:
                kube_client.CoreV1Api(client_).delete_node("compute-0003")


def _pdb(namespace: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "nova-compute",
                                                                                  "namespace": namespace},
            "spec": {"selector": {"matchLabels": {"application": "nova", "component": "compute"}}, **spec}}


def test_a_pod_a_disruption_budget_guards_is_evicted_and_a_refusal_of_the_budget_is_reported(
        testbed: bed.TestBed, namespace: str, cloud: Cluster) -> None:
    cloud.apply(_pdb(namespace, minAvailable=3))  # no disruption allowed while all 3 must be available
    watcher, _ = in_process(testbed, namespace)
    with running(watcher):
        wait_for(watcher.synced, 30, "the watcher's first lists")
        victim = pods(cloud, namespace, COMPUTE)[2]["metadata"]["name"]
        testbed.fail_pod(namespace, victim, "crashloop")
        refused = wait_for(lambda: [e for e in events(cloud, namespace, "HealthWatcherRefused")
                                    if e["regarding"]["name"] == victim], 30, "the budget's refusal reported")
        assert "pdb-refused" in refused[0]["note"]
        assert watcher.done == []
        # the operator loosens it (an integer minAvailable: DaemonSets have no scale, so no maxUnavailable)
        cloud.apply(_pdb(namespace, minAvailable=2))
        wait_for(lambda: any(d.pod == victim for d in watcher.done), 30, f"{victim} evicted after the budget allows")
        assert watcher.done[0].action == "evict"
        restarts = pod_deletes(testbed, namespace)
        assert [(e["verb"], e["objectRef"].get("subresource"), e["objectRef"]["name"]) for e in restarts] == [
            ("create", "eviction", victim)]


def test_a_pod_stuck_terminating_on_a_notready_node_is_force_deleted(
        testbed: bed.TestBed, namespace: str, cloud: Cluster) -> None:
    member = next(p for p in pods(cloud, namespace, DATABASE) if p["metadata"]["name"] == "mariadb-server-1")
    node = member["spec"]["nodeName"]
    watcher, _ = in_process(testbed, namespace)
    with running(watcher), testbed.api_client() as client_:
        core = kube_client.CoreV1Api(client_)
        wait_for(watcher.synced, 30, "the watcher's first lists")
        testbed.stop_component("kwok")  # no kubelet: nothing confirms a deletion any more
        try:
            core.patch_node_status(node, {"status": {"conditions": [
                {"type": "Ready", "status": "False", "reason": "KubeletDown", "message": "test"}]}})
            core.delete_namespaced_pod("mariadb-server-1", namespace, grace_period_seconds=1)
            wait_for(lambda: any(d.pod == "mariadb-server-1" for d in watcher.done), 30,
                     "the stuck member force-deleted")
            assert watcher.done[0].action == "force-delete"
            assert len(pod_deletes(testbed, namespace)) == 1
            # gone at once with no kubelet to confirm it: only a grace-0 delete does that
            now = cloud.get("v1", "Pod", "mariadb-server-1", namespace)
            assert now is None or now["metadata"]["uid"] != member["metadata"]["uid"]
        finally:
            core.patch_node_status(node, {"status": {"conditions": [
                {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kwok"}]}})
            testbed.start_component("kwok")
