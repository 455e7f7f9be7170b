"""Helpers for autoscaler tests on the real test bed: bounded loopback load on a real HAProxy, the
resource publishing policies, Deployments to scale, and the autoscaler run in-process or as processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from autoscaler.edges.prometheus import Prometheus, PrometheusConfig
from autoscaler.loop import Autoscaler
from autoscaler.metrics import Metrics
from openstack_gitops import api
from openstack_gitops.api import Process
from openstack_gitops.kube.client import Cluster
from openstack_gitops.model.spec import AutoscalingPolicy, policy_document
from reconciler.engine import status
from testbed import bed, process
from testbed.prometheus import Prometheus as PrometheusServer
from tests import background

REPO = Path(__file__).resolve().parents[2]
MAX_SESSIONS = 200  # the load generator never holds more than this many connections
SESSION_SECONDS = 120  # and each one ends on its own after this long


class Sessions:
    """Concurrent sessions held open through an HAProxy frontend: ``set(n)`` opens or closes connections
    (each a ``GET /slow`` the backend answers as soon as the connection closes). Bounded in count and time."""

    def __init__(self, frontend_url: str) -> None:
        url = urlsplit(frontend_url)
        self.address = (url.hostname or "127.0.0.1", int(url.port or 80))
        self.open: list[socket.socket] = []

    def set(self, count: int) -> None:
        if not 0 <= count <= MAX_SESSIONS:
            raise ValueError(f"between 0 and {MAX_SESSIONS} sessions, not {count}")
        while len(self.open) > count:
            self.open.pop().close()
        while len(self.open) < count:
            conn = socket.create_connection(self.address, timeout=5)
            conn.sendall(f"GET /slow?seconds={SESSION_SECONDS} HTTP/1.1\r\nHost: load\r\n\r\n".encode())
            self.open.append(conn)

    def close(self) -> None:
        self.set(0)


@contextmanager
def sessions(frontend_url: str) -> Iterator[Sessions]:
    load = Sessions(frontend_url)
    try:
        yield load
    finally:
        load.close()


def backend_sessions(prom: PrometheusServer, backend: str) -> float | None:
    """What Prometheus sees now of a backend's sessions (None: no series)."""
    result = prom.query(f'sum(haproxy_backend_current_sessions{{proxy="{backend}"}})')
    return float(result[0]["value"][1]) if result else None


def wait_for(predicate: Any, timeout: float, what: str, every: float = 0.1) -> float:
    """The monotonic time at which ``predicate()`` first held; AssertionError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic()
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def deployment(name: str, namespace: str, replicas: int) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "api", "image": "registry.invalid/api:1"}]}}}}


def publish(cluster: Cluster, namespace: str, policies: list[AutoscalingPolicy], name: str = "cloud") -> None:
    """The OpenStackDeployment as the reconciler publishes it: the policies in the spec's words."""
    status.ensure_crd(cluster)
    cluster.apply({"apiVersion": api.API_VERSION, "kind": api.KIND, "metadata": {"name": name, "namespace": namespace},
                   "spec": {"autoscaling": {p.deployment: policy_document(p) for p in policies}}},
                  field_manager="test-publisher")


def replicas(cluster: Cluster, namespace: str, name: str) -> int:
    return cluster.get_scale("apps/v1", "Deployment", name, namespace).spec_replicas


def in_process(testbed: bed.TestBed, prom_url: str, namespace: str, **kw: Any) -> tuple[Autoscaler, Cluster]:
    """An autoscaler in this process, talking as the autoscaler (its user agent and field manager)."""
    cluster = Cluster(testbed.api_client(), Process.AUTOSCALER)
    return Autoscaler(cluster, Prometheus(PrometheusConfig(prom_url, timeout=5)), Metrics(), namespace=namespace,
                      **kw), cluster


def running(scaler: Autoscaler) -> AbstractContextManager[Autoscaler]:
    """``scaler.run`` in a thread until the block ends."""
    return background.running(scaler, "autoscaler", 10)


def start_process(testbed: bed.TestBed, prom_url: str, namespace: str, identity: str, log: Path,
                  extra: tuple[str, ...] = ()) -> tuple[subprocess.Popen[bytes], int]:
    """``python -m autoscaler`` with a Lease in ``namespace``; (process, metrics port)."""
    port = process.free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    argv = [sys.executable, "-m", "autoscaler", "--log-json", "--kubeconfig", str(testbed.kubeconfig),
            "--prometheus-url", prom_url, "--namespace", namespace, "--metrics-port", str(port),
            "--identity", identity, "--lease-namespace", namespace, *extra]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    return proc, port


def scale_writes(testbed: bed.TestBed, namespace: str, name: str, after: int = 0,
                 scale_only: bool = False) -> list[dict[str, Any]]:
    """Writes of the Deployment's replicas in the audit log after its first ``after`` lines: through
    the scale subresource, and (unless ``scale_only``) patches and updates of the object itself."""
    out = []
    for event in testbed.audit_events()[after:]:
        ref = event.get("objectRef") or {}
        if (ref.get("namespace"), ref.get("resource"), ref.get("name")) != (namespace, "deployments", name):
            continue
        wanted = ("scale",) if scale_only else (None, "scale")
        if event.get("verb") in ("patch", "update") and ref.get("subresource") in wanted:
            out.append(event)
    return out
