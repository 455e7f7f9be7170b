"""The test bed as one object: ``up`` it, use its kubeconfig, break and heal components, ``down`` it.

A test bed lives in one directory (state.json, logs, etcd data, kubeconfig, audit log), so any
process can find it, report on it and stop exactly what it started.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client, config

from testbed import build, controlplane, kwok_stages, nodes, process, state
from testbed.errors import TestbedError

DEFAULT_ROOT = Path(
    os.environ.get("OPENSTACK_GITOPS_TESTBEDS", Path(tempfile.gettempdir()) / "openstack-gitops-testbeds"))


@dataclass
class TestBed:
    """A running control plane (and its nodes) in ``directory``."""

    __test__ = False

    directory: Path
    control: controlplane.ControlPlane
    log: Callable[[str], None] = field(default=lambda _m: None, repr=False)

    @property
    def kubeconfig(self) -> Path:
        return self.control.kubeconfig

    @property
    def audit_log(self) -> Path:
        return self.control.audit_log

    def kubeconfig_for(self, user: str) -> Path:
        return self.control.kubeconfig_for(user)

    def api_client(self, user: str = "admin") -> client.ApiClient:
        api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(self.kubeconfig_for(user)))
        return api

    def add_nodes(self, control_plane: int, compute: int, timeout: float = 900) -> None:
        with self.api_client() as api:
            nodes.ensure(api, control_plane, compute, timeout=timeout, log=self.log)

    def restart(self, component: str) -> None:
        """Stop and start one component (etcd, kube-apiserver, kwok, ...) keeping its data."""
        self.control.restart_component(component)
        if component in ("etcd", "kube-apiserver"):
            process.wait_ready(self.control._procs["kube-apiserver"], self.control._apiserver_ready, 60)

    def stop_component(self, component: str) -> None:
        self.control.stop_component(component)

    def start_component(self, component: str) -> None:
        self.control.start_component(component)

    def fail_pod(self, namespace: str, name: str, mode: str = "crashloop") -> None:
        """Make kwok fail a running pod: ``crashloop`` (CrashLoopBackOff) or ``failed`` (phase Failed)."""
        if mode == "crashloop":
            labels = {kwok_stages.FAIL_LABEL: "crashloop"}
        elif mode == "failed":
            labels = {kwok_stages.KWOK_FAILED_LABEL: "true"}
        else:
            raise ValueError(f"mode must be crashloop or failed, not {mode!r}")
        with self.api_client() as api:
            client.CoreV1Api(api).patch_namespaced_pod(name, namespace, {"metadata": {"labels": labels}})

    def requests_by(self, user_agent_prefix: str = "", user: str = "") -> Counter[str]:
        """Audit-log request counts by verb for one client (matched by user agent and/or user)."""
        return count_requests(self.audit_log, user_agent_prefix, user)

    def audit_events(self, user_agent_prefix: str = "", user: str = "") -> list[dict[str, Any]]:
        return audit_events(self.audit_log, user_agent_prefix, user)

    def down(self) -> list[str]:
        return down(self.directory)


def audit_events(audit_log: Path, user_agent_prefix: str = "", user: str = "") -> list[dict[str, Any]]:
    """Completed requests from the audit log, optionally only one client's (user agent / user)."""
    events: list[dict[str, Any]] = []
    if not audit_log.exists():
        return events
    with audit_log.open() as fh:
        for line in fh:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if event.get("stage") != "ResponseComplete":
                continue
            if user_agent_prefix and not str(event.get("userAgent", "")).startswith(user_agent_prefix):
                continue
            if user and event.get("user", {}).get("username") != user:
                continue
            events.append(event)
    return events


def count_requests(audit_log: Path, user_agent_prefix: str = "", user: str = "") -> Counter[str]:
    return Counter(str(e.get("verb", "?")) for e in audit_events(audit_log, user_agent_prefix, user))


def up(directory: Path | None = None, control_plane: int = 1, compute: int = 2, pod_ready_delay_ms: int = 300,
       log: Callable[[str], None] = lambda _m: None) -> TestBed:
    """Build (if needed) and start a test bed; on failure everything started is stopped again."""
    directory = directory or DEFAULT_ROOT / "default"
    if state.load(directory).processes and any(
        process.pid_runs(p.pid, p.exe) for p in state.load(directory).processes
    ):
        raise TestbedError("testbed", f"a test bed is already running in {directory}; run `down` first")
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    build.build_all(log=log)
    started = time.monotonic()
    control = controlplane.ControlPlane(directory, pod_ready_delay_ms=pod_ready_delay_ms,
                                        pod_ready_jitter_ms=pod_ready_delay_ms, log=log)
    control.start()
    bed = TestBed(directory, control, log)
    try:
        bed.add_nodes(control_plane, compute)
        _create_storage_classes(bed)
        _wait_default_service_account(bed)
    except BaseException:
        down(directory)
        raise
    with state.locked(directory) as st:
        st.facts.update({
            "kubeconfig": str(control.kubeconfig), "audit_log": str(control.audit_log),
            "server": control.server, "ports": control.ports.__dict__,
            "nodes": {"control_plane": control_plane, "compute": compute},
        })
    log(f"testbed: up in {time.monotonic() - started:.1f}s ({control.version()}, "
        f"{control_plane} control-plane + {compute} compute nodes)")
    return bed


def _create_storage_classes(bed: TestBed) -> None:
    with bed.api_client() as api:
        storage = client.StorageV1Api(api)
        for sc in kwok_stages.storage_classes():
            storage.create_storage_class(sc)  # type: ignore[arg-type]  # the client takes plain dicts


def _wait_default_service_account(bed: TestBed, timeout: float = 60) -> None:
    """Pods can be created only once the controller-manager made the namespace's ServiceAccount."""
    with bed.api_client() as api:
        core = client.CoreV1Api(api)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            accounts = core.list_namespaced_service_account("default").items
            if any(sa.metadata and sa.metadata.name == "default" for sa in accounts):
                return
            time.sleep(0.2)
    raise TestbedError("kube-controller-manager", "no default ServiceAccount after 60s",
                       str(bed.control.log_file("kube-controller-manager")))


def down(directory: Path | None = None) -> list[str]:
    """Stop every process this test bed started (by pid); the directory is kept for its logs."""
    directory = directory or DEFAULT_ROOT / "default"
    if not directory.exists():
        return []
    return state.stop_all(directory)


def status(directory: Path | None = None) -> dict[str, Any]:
    """Which recorded processes run, plus the kubeconfig and audit-log paths."""
    directory = directory or DEFAULT_ROOT / "default"
    st = state.load(directory)
    procs = {p.name: {"pid": p.pid, "running": process.pid_runs(p.pid, p.exe), "log": p.log} for p in st.processes}
    return {"directory": str(directory), "processes": procs, **st.facts}
