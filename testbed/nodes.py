"""kwok-managed Node objects labelled the way OpenStack-Helm charts select nodes."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kubernetes import client

from testbed.errors import TestbedError

CONTROL_PLANE_LABELS = {"openstack-control-plane": "enabled"}
COMPUTE_LABELS = {"openstack-compute-node": "enabled", "openvswitch": "enabled"}


def node_manifest(name: str, labels: dict[str, str]) -> dict[str, Any]:
    capacity = {"cpu": "64", "memory": "512Gi", "pods": "250", "ephemeral-storage": "1Ti"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                       "kubernetes.io/arch": "amd64", "type": "kwok", **labels},
        },
        "spec": {},
        "status": {"allocatable": capacity, "capacity": capacity,
                   # every field: the typed Python client refuses nodes missing any of them
                   "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux", "osImage": "kwok",
                                "kernelVersion": "kwok", "containerRuntimeVersion": "kwok://0.8.0",
                                "kubeletVersion": "fake", "kubeProxyVersion": "fake", "machineID": name,
                                "systemUUID": name, "bootID": name}},
    }


def wanted(control_plane: int, compute: int) -> dict[str, dict[str, str]]:
    names = {f"control-{i:02d}": CONTROL_PLANE_LABELS for i in range(control_plane)}
    names.update({f"compute-{i:04d}": COMPUTE_LABELS for i in range(compute)})
    return names


def ensure(api: client.ApiClient, control_plane: int, compute: int, timeout: float = 600,
           log: Callable[[str], None] = lambda _m: None) -> None:
    """Create the missing nodes (in parallel) and wait until all of them are Ready."""
    core = client.CoreV1Api(api)
    existing = {n.metadata.name for n in core.list_node().items if n.metadata}
    todo = [(n, labels) for n, labels in wanted(control_plane, compute).items() if n not in existing]

    def create(item: tuple[str, dict[str, str]]) -> None:
        core.create_node(node_manifest(*item))  # type: ignore[arg-type]  # the client takes plain dicts

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        for done, _ in enumerate(pool.map(create, todo), 1):
            if done % 250 == 0 or done == len(todo):
                log(f"testbed: nodes created {done}/{len(todo)}")
    expected = set(wanted(control_plane, compute))
    while True:
        ready = {n.metadata.name for n in core.list_node().items if n.metadata and _is_ready(n)}
        missing = expected - ready
        if not missing:
            log(f"testbed: {len(expected)} nodes Ready after {time.monotonic() - started:.1f}s")
            return
        if time.monotonic() - started > timeout:
            raise TestbedError("kwok", f"{len(missing)} of {len(expected)} nodes not Ready after {timeout:.0f}s")
        time.sleep(0.5)


def _is_ready(node: Any) -> bool:
    conditions = (node.status and node.status.conditions) or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)
