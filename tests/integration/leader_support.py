"""Replicas of the real reconciler process for leader-election tests and the takeover benchmark.

Each replica is ``python -m reconciler.cli reconcile`` with its own ``--identity`` and metrics
port, sharing one Lease and one config repo. Its requests carry the identity in their user agent
(``openstack_gitops.kube.lease.user_agent``), so the audit log tells the replicas apart.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testbed import bed, build, process

from .reconcile_support import WRITE_VERBS

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Replica:
    identity: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    started: float = field(default_factory=time.monotonic)

    @property
    def agent_suffix(self) -> str:
        """How this replica's user agent ends (``openstack_gitops.kube.lease.user_agent``)."""
        return f" ({self.identity})"

    def get(self, path: str, timeout: float = 1.0) -> tuple[int, str]:
        """(status, body) of one probe; (0, error) when the process does not answer."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=timeout) as resp:
                return int(resp.status), resp.read().decode()
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read().decode()
        except OSError as exc:
            return 0, str(exc)

    def leads(self, timeout: float = 1.0) -> bool:
        status, body = self.get("/readyz", timeout)
        return status == 200 and body.startswith("leader")

    def standby(self) -> bool:
        status, body = self.get("/readyz")
        return status == 200 and body.startswith("standby")

    def metric(self, prefix: str) -> list[str]:
        _, body = self.get("/metrics", 3)
        return [line for line in body.splitlines() if line.startswith(prefix)]

    def reconciled(self) -> bool:
        """At least one reconcile finished successfully in this process."""
        return bool(self.metric("openstack_gitops_last_applied_commit_info{"))

    def signal(self, sig: signal.Signals) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then SIGKILL if it hangs; the exit code."""
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def logs(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def start_replica(testbed: bed.TestBed, repo_url: str, root: Path, lease_namespace: str, lease_name: str,
                  identity: str | None = None, extra: tuple[str, ...] = ()) -> Replica:
    identity = identity or f"replica-{uuid.uuid4().hex[:6]}"
    port = process.free_port()
    log = root / f"{identity}.log"
    env = {**os.environ, "KUBECONFIG": str(testbed.kubeconfig_for("openstack-gitops")),
           "OPENSTACK_GITOPS_HELM": str(build.binary("helm")),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    argv = [sys.executable, "-m", "reconciler.cli", "--log-json", "reconcile", "--repo", repo_url,
            "--workdir", str(root / f"w-{identity}"), "--metrics-port", str(port), "--interval", "3600",
            "--identity", identity, "--lease-namespace", lease_namespace, "--lease-name", lease_name, *extra]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    return Replica(identity, port, proc, log)


@contextmanager
def replicas() -> Iterator[list[Replica]]:
    """Every replica appended to the list is stopped at the end, whatever happened."""
    started: list[Replica] = []
    try:
        yield started
    finally:
        for replica in started:
            if replica.proc.poll() is None:
                replica.proc.kill()
                replica.proc.wait()


def wait_until(predicate: Any, timeout: float, what: str, every: float = 0.1) -> float:
    """Seconds until ``predicate()`` held; AssertionError naming ``what`` after ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def writes_by(testbed: bed.TestBed, replica: Replica, leases: bool = False) -> list[str]:
    """The write requests of one replica in the audit log, as ``verb resource/name`` (Lease writes left out
    unless ``leases``); failed ones are marked with their status code."""
    out = []
    for event in testbed.audit_events():
        if not str(event.get("userAgent", "")).endswith(replica.agent_suffix):
            continue
        ref = event.get("objectRef") or {}
        if event.get("verb") not in WRITE_VERBS or (ref.get("resource") == "leases" and not leases):
            continue
        code = int((event.get("responseStatus") or {}).get("code") or 0)
        dry = "dry-run " if "dryRun=All" in str(event.get("requestURI", "")) else ""
        failed = f" ({code})" if code >= 400 else ""
        out.append(f"{dry}{event['verb']} {ref.get('resource')}/{ref.get('name')}{failed}")
    return out
