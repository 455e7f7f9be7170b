"""The test bed is a real Kubernetes: version, scheduling on kwok nodes, Jobs, failures, SSA, faults."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, dynamic
from kubernetes.client.rest import ApiException

from testbed import bed, controlplane, kwok_stages, process
from testbed.errors import TestbedError
from tests.waiting import wait_for

pytestmark = pytest.mark.testbed



def test_server_reports_pinned_version(testbed: bed.TestBed, api: client.ApiClient) -> None:
    info = client.VersionApi(api).get_code()
    assert info.git_version.startswith("v1.36."), info.git_version
    assert (info.major, info.minor) == ("1", "36")


def test_deployment_gets_ready_pods_on_kwok_nodes(api: client.ApiClient, namespace: str) -> None:
    apps = client.AppsV1Api(api)
    labels = {"app": "web"}
    apps.create_namespaced_deployment(namespace, {
        "metadata": {"name": "web"},
        "spec": {"replicas": 3, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "web", "image": "nginx"}]}}},
    })
    wait_for(lambda: (apps.read_namespaced_deployment("web", namespace).status.ready_replicas or 0) == 3,
             what="3 ready replicas")
    pods = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector="app=web").items
    assert len(pods) == 3
    node_names = {n.metadata.name for n in client.CoreV1Api(api).list_node().items}
    assert all(p.spec.node_name in node_names and p.status.phase == "Running" for p in pods)


def test_daemonset_gets_one_pod_per_compute_node(api: client.ApiClient, namespace: str) -> None:
    apps = client.AppsV1Api(api)
    labels = {"app": "compute"}
    apps.create_namespaced_daemon_set(namespace, {
        "metadata": {"name": "compute"},
        "spec": {"selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"nodeSelector": {"openstack-compute-node": "enabled"},
                                       "containers": [{"name": "c", "image": "nova-compute"}]}}},
    })
    core = client.CoreV1Api(api)
    compute_nodes = core.list_node(label_selector="openstack-compute-node=enabled").items
    computes = {n.metadata.name for n in compute_nodes}
    assert len(computes) == 3

    def scheduled() -> bool:
        status = apps.read_namespaced_daemon_set("compute", namespace).status
        return bool(status.number_ready == len(computes) and status.desired_number_scheduled == len(computes))

    wait_for(scheduled, what="one ready pod per compute node")
    pods = core.list_namespaced_pod(namespace, label_selector="app=compute").items
    assert sorted(p.spec.node_name for p in pods) == sorted(computes)


def test_job_completes(api: client.ApiClient, namespace: str) -> None:
    batch = client.BatchV1Api(api)
    batch.create_namespaced_job(namespace, {
        "metadata": {"name": "db-sync"},
        "spec": {"template": {"spec": {"restartPolicy": "Never",
                                        "containers": [{"name": "sync", "image": "keystone"}]}}},
    })
    wait_for(lambda: (batch.read_namespaced_job("db-sync", namespace).status.succeeded or 0) == 1,
             what="job completion")


@pytest.mark.parametrize("mode", ["crashloop", "failed"])
def test_injected_failure_shows_in_pod_status(testbed: bed.TestBed, api: client.ApiClient, namespace: str,
                                              mode: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(namespace, {
        "metadata": {"name": "victim"},
        "spec": {"containers": [{"name": "c", "image": "nova-compute"}]},
    })
    wait_for(lambda: core.read_namespaced_pod("victim", namespace).status.phase == "Running", what="running")
    testbed.fail_pod(namespace, "victim", mode)

    def failed() -> bool:
        pod_status = core.read_namespaced_pod("victim", namespace).status
        if mode == "failed":
            return bool(pod_status.phase == "Failed")
        waiting = [cs.state.waiting for cs in pod_status.container_statuses or [] if cs.state.waiting]
        return any(w.reason == "CrashLoopBackOff" for w in waiting) and all(
            not cs.ready for cs in pod_status.container_statuses)

    wait_for(failed, timeout=30, what=f"{mode} status")


def _apply(api: client.ApiClient, namespace: str, manager: str, data: dict[str, str], force: bool) -> Any:
    dyn = dynamic.DynamicClient(api)
    configmaps = dyn.resources.get(api_version="v1", kind="ConfigMap")
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared"}, "data": data}
    return dyn.server_side_apply(configmaps, body=body, namespace=namespace, field_manager=manager,
                                 force_conflicts=force).to_dict()


def test_server_side_apply_conflict_and_force(api: client.ApiClient, namespace: str) -> None:
    _apply(api, namespace, "first", {"key": "one"}, force=False)
    with pytest.raises(ApiException) as conflict:
        _apply(api, namespace, "second", {"key": "two"}, force=False)
    assert conflict.value.status == 409
    assert "conflict" in conflict.value.body.lower()
    live = _apply(api, namespace, "second", {"key": "two"}, force=True)
    assert live["data"] == {"key": "two"}
    owners = {m["manager"] for m in live["metadata"]["managedFields"] if "f:data" in m.get("fieldsV1", {})}
    assert owners == {"second"}


def test_audit_log_counts_requests_per_client(testbed: bed.TestBed, namespace: str) -> None:
    with testbed.api_client("openstack-gitops") as api:
        client.CoreV1Api(api).create_namespaced_config_map(namespace, {"metadata": {"name": "audited"}})
    counts = wait_for(lambda: testbed.requests_by(user="openstack-gitops") or None, what="audit events")
    assert counts["create"] >= 1


def test_apiserver_restart_keeps_data(testbed: bed.TestBed, api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "survivor"}, "data": {"a": "1"}})
    testbed.restart("kube-apiserver")
    assert core.read_namespaced_config_map("survivor", namespace).data == {"a": "1"}
    testbed.restart("etcd")
    assert core.read_namespaced_config_map("survivor", namespace).data == {"a": "1"}
    testbed.restart("kwok")
    wait_for(lambda: all(any(c.type == "Ready" and c.status == "True" for c in n.status.conditions)
                         for n in core.list_node().items), what="nodes Ready after kwok restart")


def test_status_and_down_in_a_second_testbed(tmp_path: Path) -> None:
    """Two test beds side by side; ``down`` stops exactly its own processes by pid."""
    second = bed.up(tmp_path / "second", control_plane=1, compute=1)
    try:
        info = bed.status(second.directory)
        assert all(p["running"] for p in info["processes"].values())
        assert set(info["processes"]) == set(controlplane.COMPONENTS)
        assert Path(info["audit_log"]).exists()
    finally:
        stopped = bed.down(second.directory)
    assert set(stopped) == set(controlplane.COMPONENTS)
    info = bed.status(second.directory)
    assert info["processes"] == {}


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        ports = controlplane.Ports.pick()
        ports.etcd_client = busy
        control = controlplane.ControlPlane(tmp_path, ports)
        with pytest.raises(TestbedError) as err:
            control.start()
    assert "etcd" in str(err.value) and str(busy) in str(err.value)
    assert "etcd.log" in str(err.value)


def test_component_dying_at_start_names_its_log(tmp_path: Path) -> None:
    control = controlplane.ControlPlane(tmp_path)
    control.start_component("etcd")
    try:
        # an apiserver pointed at a dead etcd port never becomes ready; with a bogus flag it dies at once
        argv, _ready, _timeout = control._spec("kube-apiserver")
        proc = process.start("kube-apiserver", [*argv, "--no-such-flag"], control.log_file("kube-apiserver"))
        with pytest.raises(TestbedError) as err:
            process.wait_ready(proc, lambda: False, 30)
        assert "kube-apiserver" in str(err.value) and "kube-apiserver.log" in str(err.value)
        assert "exited" in str(err.value)
    finally:
        control.stop()


def test_pods_of_a_crashloop_image_crash_loop(api: client.ApiClient, namespace: str) -> None:
    """Rollout tests make new pods fail by image tag (the gate of an upgrade must notice)."""
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(namespace, {
        "metadata": {"name": "bad-image"},
        "spec": {"containers": [{"name": "c", "image": f"keystone:2025.2{kwok_stages.CRASHLOOP_IMAGE_SUFFIX}"}]},
    })

    def crashing() -> bool:
        statuses = core.read_namespaced_pod("bad-image", namespace).status.container_statuses or []
        return any(cs.state.waiting and cs.state.waiting.reason == "CrashLoopBackOff" for cs in statuses)

    wait_for(crashing, timeout=30, what="CrashLoopBackOff")
