"""Leader takeover times of the real reconciler process on the test bed (client-go's default timings).

A leader and a standby against one converged cloud; the leader is SIGKILLed (the standby must wait
for the Lease to expire: at most lease duration + retry period) or SIGTERMed (it releases the
Lease: the standby takes over at once). Each round starts a fresh standby, so every sample is a
new process taking over. Measured: from the signal to the standby's ``/readyz`` saying ``leader``
(polled every 20 ms), plus the object writes of each new leader's first reconcile (should be 0).

Run: .venv/bin/python tests/benchmarks/leader_bench.py [--rounds 5]
Progress on stderr; one JSON object as the last line on stdout.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from kubernetes import client

from openstack_gitops.kube.lease import Timings
from testbed import bed
from testbed.helmrepo import HelmRepo

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.integration.leader_support import Replica, replicas, start_replica, wait_until, writes_by
from tests.integration.reconcile_support import AUDIT_LAG, ConfigRepo

T = Timings()


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def takeover(tb: bed.TestBed, leader: Replica, standby: Replica, sig: signal.Signals) -> tuple[float, int]:
    """Seconds from ``sig`` to the standby leading, and the object writes of its first reconcile."""
    time.sleep(AUDIT_LAG)
    before = len(writes_by(tb, standby))
    leader.signal(sig)
    took = wait_until(standby.leads, T.lease_duration + T.retry_period + 10, "the standby to lead", every=0.02)
    wait_until(standby.reconciled, 180, "the new leader's first reconcile", every=0.5)
    time.sleep(AUDIT_LAG)
    writes = writes_by(tb, standby)[before:]  # every write but the Lease's, status and Events included
    log(f"{sig.name}: {took:.2f}s after the signal (exit {leader.proc.wait(30)}); first reconcile wrote {writes}")
    # what the goal counts: writes of applied objects, not the resource's status, Events or the inventory
    applied = [w for w in writes if not any(part in w for part in (" events/", " openstackdeployments/", "-inventory"))]
    return took, len(applied)


def cloud_ready(tb: bed.TestBed, repo: ConfigRepo) -> bool:
    """Converged and recorded, so every round starts from a steady state (nothing left to write)."""
    with tb.api_client() as api:
        live = client.CustomObjectsApi(api).get_namespaced_custom_object(
            "openstack-gitops.io", "v1alpha1", repo.namespace, "openstackdeployments", repo.name)
    return bool((live.get("status") or {}).get("state") == "Ready")


def run(tb: bed.TestBed, root: Path, rounds: int) -> dict[str, Any]:
    charts = HelmRepo(tb.directory)  # recorded in the test bed's state: bed.down stops it too
    charts.start()
    repo = ConfigRepo(root / "repo", charts.url)
    namespace = f"lease-{uuid.uuid4().hex[:6]}"
    with tb.api_client() as api:
        client.CoreV1Api(api).create_namespace({"metadata": {"name": namespace}})
    out: dict[str, Any] = {"benchmark": "leader-takeover", "timings": T.__dict__, "rounds": rounds}
    with replicas() as started:
        def new_replica() -> Replica:
            replica = start_replica(tb, str(repo.bare), root, namespace, "openstack-gitops-reconciler",
                                    identity=f"r{len(started)}")
            started.append(replica)
            return replica

        leader = new_replica()
        wait_until(leader.leads, 60, "the first leader")
        wait_until(leader.reconciled, 300, "the first reconcile (cold apply)", every=0.5)
        wait_until(lambda: cloud_ready(tb, repo), 300, "the cloud to be Ready", every=1)
        log("cloud applied by the first leader and Ready")
        for sig in (signal.SIGKILL, signal.SIGTERM):
            samples, writes = [], []
            for _ in range(rounds):
                standby = new_replica()
                wait_until(standby.standby, 60, "a ready standby")
                time.sleep(T.retry_period + 1)  # a steady state: renewals seen, watches connected
                took, wrote = takeover(tb, leader, standby, sig)
                samples.append(round(took, 3))
                writes.append(wrote)
                leader = standby
            out[sig.name.lower()] = {"samples_seconds": samples, "median_seconds": statistics.median(samples),
                                     "max_seconds": max(samples), "first_reconcile_object_writes": writes}
        leader.stop()
    ok = (out["sigkill"]["max_seconds"] <= T.lease_duration + T.retry_period
          and out["sigterm"]["max_seconds"] < 2.0
          and not any(sum(out[k]["first_reconcile_object_writes"]) for k in ("sigkill", "sigterm")))
    out["goals_met"] = ok
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="leader-bench-") as tmp:
        root = Path(tmp)
        tb = bed.up(root / "testbed", control_plane=1, compute=3, pod_ready_delay_ms=100, log=log)
        try:
            result = run(tb, root, args.rounds)
        finally:
            bed.down(tb.directory)
    print(json.dumps(result))
    return 0 if result["goals_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
