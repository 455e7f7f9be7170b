"""The Kubernetes control plane of a test bed: etcd, kube-apiserver, controller-manager, scheduler, kwok.

Each component runs from the pinned binaries (``testbed.build``) on free loopback ports with its
data under the test bed's directory; ports and arguments are kept so that one component can be
stopped and started again with its data (fault tests).
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from testbed import build, kwok_stages, pki, process, state
from testbed.errors import TestbedError

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
SERVICE_CIDR = "10.96.0.0/16"

# Node liveness as with kubelets: kwok renews each node's Lease every NODE_LEASE_SECONDS / 4 (10 s);
# the controller-manager marks a node NotReady (and its pods unready) once no renewal came for
# NODE_MONITOR_GRACE_SECONDS (Kubernetes' default), so a dead kwok shows within about a minute.
NODE_LEASE_SECONDS = 40
NODE_MONITOR_GRACE_SECONDS = 50
# kwok renews Leases with this many concurrent requests (its default, 4, manages 2,000 nodes' 200
# renewals a second only while a renewal takes < 20 ms, which 2 busy cores do not promise)
NODE_LEASE_PARALLELISM = 32


@dataclass
class Ports:
    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int
    kwok: int

    @classmethod
    def pick(cls) -> Ports:
        return cls(*(process.free_port() for _ in range(6)))


def write_kubeconfig(path: Path, server: str, ca: Path, token: str, user: str) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "testbed", "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "testbed", "context": {"cluster": "testbed", "user": user}}],
        "current-context": "testbed",
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)


AUDIT_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  nonResourceURLs: ["/healthz*", "/readyz*", "/livez*", "/version"]
- level: None
  users: ["kwok", "kube-controller-manager", "kube-scheduler"]
  verbs: ["get", "update", "patch"]
  resources: [{group: "coordination.k8s.io", resources: ["leases"]}]
- level: Metadata
"""


class ControlPlane:
    """Starts, stops and restarts the control-plane components of one test bed directory."""

    def __init__(self, directory: Path, ports: Ports | None = None, pod_ready_delay_ms: int = 300,
                 pod_ready_jitter_ms: int = 300, log: Callable[[str], None] = lambda _m: None) -> None:
        self.directory = directory
        self.ports = ports or Ports.pick()
        self.pod_ready_delay_ms = pod_ready_delay_ms
        self.pod_ready_jitter_ms = pod_ready_jitter_ms
        self.log = log
        self.pki = pki.Pki(directory / "pki")
        self._procs: dict[str, process.Managed] = {}

    # -- paths a client needs -------------------------------------------------
    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports.apiserver}"

    @property
    def kubeconfig(self) -> Path:
        return self.directory / "kubeconfig"

    def kubeconfig_for(self, user: str) -> Path:
        """A kubeconfig with this user's own token (the audit log tells users apart)."""
        path = self.directory / f"kubeconfig-{user}"
        if not path.exists():
            write_kubeconfig(path, self.server, self.pki.serving_cert, self.pki.token(user), user)
        return path

    @property
    def audit_log(self) -> Path:
        return self.directory / "audit.log"

    def log_file(self, component: str) -> Path:
        return self.directory / "logs" / f"{component}.log"

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> None:
        """Start every component in order; on any failure stop what was started and re-raise."""
        self.directory.mkdir(parents=True, exist_ok=True)
        pki.create(self.pki.directory)
        (self.directory / "audit-policy.yaml").write_text(AUDIT_POLICY)
        try:
            for component in COMPONENTS:
                self.start_component(component)
        except BaseException:
            self.stop()
            raise
        write_kubeconfig(self.kubeconfig, self.server, self.pki.serving_cert, self.pki.token("admin"), "admin")

    def stop(self) -> None:
        for component in reversed(COMPONENTS):
            self.stop_component(component)

    def stop_component(self, component: str) -> None:
        proc = self._procs.pop(component, None)
        if proc is not None:
            process.stop(proc.pid, proc.exe)
            state.forget(self.directory, component)

    def restart_component(self, component: str) -> None:
        """Stop one component and start it again on the same ports with the same data."""
        self.stop_component(component)
        self.start_component(component)

    def start_component(self, component: str) -> None:
        started = time.monotonic()
        argv, ready, timeout = self._spec(component)
        log = self.log_file(component)
        if component in ("etcd", "kube-apiserver"):
            port = self.ports.etcd_client if component == "etcd" else self.ports.apiserver
            if process.port_in_use(port):
                raise TestbedError(component, f"port 127.0.0.1:{port} is already in use", str(log))
        if component == "kwok":
            self._release_node_leases()
        proc = process.start(component, argv, log)
        self._procs[component] = proc
        state.record(self.directory, proc)
        process.wait_ready(proc, ready, timeout)
        self.log(f"testbed: {component} ready in {time.monotonic() - started:.1f}s (log: {log})")

    # -- per component: argv, readiness check, timeout -----------------------
    def _spec(self, component: str) -> tuple[list[str], Callable[[], bool], float]:
        p, d = self.ports, self.directory
        if component == "etcd":
            peer = f"http://127.0.0.1:{p.etcd_peer}"
            client = f"http://127.0.0.1:{p.etcd_client}"
            argv = [str(build.binary("etcd")), "--name=testbed", f"--data-dir={d / 'etcd'}",
                    f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
                    f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
                    f"--initial-cluster=testbed={peer}", "--unsafe-no-fsync",
                    "--quota-backend-bytes=8589934592", "--log-level=warn"]
            return argv, lambda: _http_ok(f"{client}/health"), 30
        if component == "kube-apiserver":
            argv = [str(build.binary("kube-apiserver")),
                    f"--etcd-servers=http://127.0.0.1:{p.etcd_client}",
                    "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
                    f"--secure-port={p.apiserver}", f"--cert-dir={self.pki.directory}",
                    f"--token-auth-file={self.pki.token_file}", "--authorization-mode=RBAC",
                    f"--service-cluster-ip-range={SERVICE_CIDR}",
                    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                    f"--service-account-key-file={self.pki.sa_pub}",
                    f"--service-account-signing-key-file={self.pki.sa_key}",
                    f"--audit-policy-file={d / 'audit-policy.yaml'}", f"--audit-log-path={self.audit_log}",
                    "--audit-log-format=json", "--audit-log-maxsize=0",
                    "--allow-privileged=true", "--profiling=false",
                    "--max-requests-inflight=1000", "--max-mutating-requests-inflight=500"]
            return argv, self._apiserver_ready, 90
        if component in ("kube-controller-manager", "kube-scheduler"):
            port = p.controller_manager if component == "kube-controller-manager" else p.scheduler
            argv = [str(build.binary(component)), f"--kubeconfig={self.kubeconfig_for(component)}",
                    "--leader-elect=false", "--bind-address=127.0.0.1", f"--secure-port={port}",
                    "--kube-api-qps=200", "--kube-api-burst=400"]
            if component == "kube-controller-manager":
                argv += [f"--service-account-private-key-file={self.pki.sa_key}",
                         f"--root-ca-file={self.pki.serving_cert}", "--concurrent-deployment-syncs=10",
                         "--concurrent-replicaset-syncs=10", "--concurrent-daemonset-syncs=5",
                         "--concurrent-job-syncs=10",
                         f"--node-monitor-grace-period={NODE_MONITOR_GRACE_SECONDS}s"]
            return argv, lambda: _http_ok(f"https://127.0.0.1:{port}/healthz"), 60
        if component == "kwok":
            bin_dir = build.bin_dir_for("kwok")
            config = d / "kwok.yaml"
            config.write_text(_kwok_configuration() + "---\n"
                              + kwok_stages.render(bin_dir, self.pod_ready_delay_ms, self.pod_ready_jitter_ms))
            argv = [str(bin_dir / "kwok"), f"--kubeconfig={self.kubeconfig_for('kwok')}",
                    "--manage-all-nodes=false",
                    "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                    f"--config={config}", f"--server-address=127.0.0.1:{p.kwok}",
                    "--cidr=10.244.0.0/16", "--node-ip=10.0.0.1",
                    # standalone kwok renews no node Lease unless given a duration (its default is 0)
                    f"--node-lease-duration-seconds={NODE_LEASE_SECONDS}",
                    # INFO logs a line per lease renewal: 65 kB/s at 2,000 nodes
                    "--v=WARN"]
            return argv, lambda: _http_ok(f"http://127.0.0.1:{p.kwok}/healthz"), 60
        raise ValueError(component)

    def _release_node_leases(self) -> None:
        """Delete the node Leases a previous kwok held, so a restarted kwok renews them at once.

        kwok's lease holder identity is new in every process; without this a restarted kwok would
        wait for the old Leases to expire (40 s) and leave the nodes unmanaged, and NotReady, meanwhile.
        A restarted kubelet keeps its identity and renews at once; this makes kwok do the same.
        """
        url = f"{self.server}/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
        try:
            _http_request(url, "DELETE", token=self.pki.token("admin"), ca=self.pki.serving_cert, timeout=60)
        except urllib.error.HTTPError as err:
            if err.code != 404:
                raise TestbedError("kwok", f"could not release the node Leases: {err}") from err

    def _apiserver_ready(self) -> bool:
        if not self.pki.serving_cert.exists():
            return False
        return _http_ok(f"{self.server}/readyz", token=self.pki.token("admin"), ca=self.pki.serving_cert)

    def version(self) -> str:
        body = _http_get(f"{self.server}/version", token=self.pki.token("admin"), ca=self.pki.serving_cert)
        return str(json.loads(body)["gitVersion"])


def _context(ca: Path | None) -> ssl.SSLContext:
    if ca is not None:
        return ssl.create_default_context(cafile=str(ca))
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # components' own self-signed health endpoints
    return ctx


def _kwok_configuration() -> str:
    """kwok's options document, to raise its lease parallelism (no flag sets that).

    kwok v0.8.0 applies its option defaults only when no KwokConfiguration is given, so this one
    spells out each of them (zero would mean "no workers"); the flags in argv override the rest.
    """
    return yaml.safe_dump({
        "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
        "kind": "KwokConfiguration",
        "options": {
            "nodeLeaseParallelism": NODE_LEASE_PARALLELISM,
            # kwok's own defaults
            "podPlayStageParallelism": 4, "nodePlayStageParallelism": 4, "podsOnNodeSyncParallelism": 1,
            "enablePodsOnNodeSyncListPager": True, "enablePodsOnNodeSyncStreamWatch": False,
            "enableDebuggingHandlers": True, "enableProfilingHandler": True, "enableContentionProfiling": False,
        },
    }, sort_keys=False)


def _http_request(url: str, method: str = "GET", token: str | None = None, ca: Path | None = None,
                  timeout: float = 2) -> bytes:
    req = urllib.request.Request(url, method=method,
                                 headers={"Authorization": f"Bearer {token}"} if token else {})
    ctx = _context(ca) if url.startswith("https") else None
    with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:
        return bytes(resp.read())


def _http_get(url: str, token: str | None = None, ca: Path | None = None) -> bytes:
    return _http_request(url, token=token, ca=ca)


def _http_ok(url: str, token: str | None = None, ca: Path | None = None) -> bool:
    try:
        _http_get(url, token, ca)
    except OSError:
        return False
    return True
