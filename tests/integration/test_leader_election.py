"""Leader election on the real test bed: two reconciler processes, one Lease, one cloud.

Only the leader writes (the audit log, by each replica's user agent); a SIGKILLed leader is
replaced within the lease duration and its successor's first reconcile writes nothing already
applied; a SIGTERMed leader hands over within 2 s; an apiserver restart never makes both lead;
a reconcile that loses the Lease stops writing at once. Timings are client-go's defaults.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from openstack_gitops.kube.client import Cluster
from openstack_gitops.kube.lease import LeaderElector, Timings
from reconciler.engine.outcome import Reason
from testbed import bed, build

from .leader_support import Replica, replicas, start_replica, wait_until, writes_by
from .reconcile_support import AUDIT_LAG, WRITE_VERBS, ConfigRepo, make_reconciler

pytestmark = pytest.mark.testbed

T = Timings()  # 15 s / 10 s / 2 s


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, helm_repo: str) -> ConfigRepo:
    """One cloud for the module; whichever replica leads first applies it."""
    return ConfigRepo(tmp_path_factory.mktemp("leader-repo"), helm_repo)


def _pair(testbed: bed.TestBed, repo: ConfigRepo, root: Path, namespace: str,
          started: list[Replica]) -> tuple[Replica, Replica]:
    """A leader that has reconciled the cloud, and a ready standby."""
    lease = f"lease-{uuid.uuid4().hex[:6]}"
    a = start_replica(testbed, str(repo.bare), root, namespace, lease, identity=f"a-{lease}")
    started.append(a)
    wait_until(a.leads, 30, "the first replica to lead")
    b = start_replica(testbed, str(repo.bare), root, namespace, lease, identity=f"b-{lease}")
    started.append(b)
    wait_until(b.standby, 30, "the second replica to be a ready standby")
    wait_until(a.reconciled, 180, "the leader's first successful reconcile", every=0.5)
    return a, b


def _cloud_ready(testbed: bed.TestBed, repo: ConfigRepo) -> bool:
    with testbed.api_client() as api:
        live = client.CustomObjectsApi(api).get_namespaced_custom_object(
            "openstack-gitops.io", "v1alpha1", repo.namespace, "openstackdeployments", repo.name)
    return bool((live.get("status") or {}).get("state") == "Ready")


def test_only_the_leader_writes(testbed: bed.TestBed, repo: ConfigRepo, tmp_path: Path, namespace: str) -> None:
    with replicas() as started:
        a, b = _pair(testbed, repo, tmp_path, namespace, started)
        assert a.metric("openstack_gitops_leader ") == ["openstack_gitops_leader 1.0"]
        assert b.metric("openstack_gitops_leader ") == ["openstack_gitops_leader 0.0"]
        for replica in (a, b):  # both alive and not wedged, on the metrics port
            status, body = replica.get("/healthz")
            assert status == 200, body
        assert a.get("/nothing")[0] == 404
        time.sleep(3)  # the leader's drift watch connects after its first reconcile
        with testbed.api_client() as api:  # a manual deletion: the leader's drift watch puts it back
            client.CoreV1Api(api).delete_namespaced_service("keystone-api", repo.namespace)

            def restored() -> bool:
                try:
                    client.CoreV1Api(api).read_namespaced_service("keystone-api", repo.namespace)
                except client.ApiException:
                    return False
                return True

            wait_until(restored, 60, "the leader to restore the deleted Service", every=0.5)
        time.sleep(AUDIT_LAG)
        assert "patch services/keystone-api" in writes_by(testbed, a)  # server-side apply re-creates it
        assert writes_by(testbed, b) == []  # not one write, not even a dry-run, from the standby
        lease_writes = writes_by(testbed, b, leases=True)
        assert all("(409)" in w for w in lease_writes), lease_writes  # at most a lost race to create it
        assert b.standby()


def test_sigkill_standby_takes_over_within_the_lease_duration(testbed: bed.TestBed, repo: ConfigRepo,
                                                               tmp_path: Path, namespace: str) -> None:
    with replicas() as started:
        a, b = _pair(testbed, repo, tmp_path, namespace, started)
        wait_until(lambda: _cloud_ready(testbed, repo), 180, "the cloud to be Ready", every=1)
        time.sleep(AUDIT_LAG)
        before = len(writes_by(testbed, b))
        killed = time.monotonic()
        a.signal(signal.SIGKILL)
        took = wait_until(b.leads, T.lease_duration + T.retry_period + 5, "the standby to lead")
        print(f"SIGKILL takeover: {took:.2f}s")
        assert took <= T.lease_duration + T.retry_period, took
        assert time.monotonic() - killed >= T.lease_duration - T.retry_period - 1  # it waited for the expiry
        wait_until(b.reconciled, 120, "the new leader's first reconcile", every=0.5)
        time.sleep(AUDIT_LAG)
        # everything was applied by the old leader: the new one writes no object at all
        new = writes_by(testbed, b)[before:]
        print(f"new leader's first reconcile wrote: {new}")
        assert new == [], new
        assert 'openstack_gitops_reconcile_total{reason="Applied",result="success"} 1.0' in b.metric(
            "openstack_gitops_reconcile_total")


def test_sigterm_hands_over_within_two_seconds(testbed: bed.TestBed, repo: ConfigRepo, tmp_path: Path,
                                               namespace: str) -> None:
    with replicas() as started:
        a, b = _pair(testbed, repo, tmp_path, namespace, started)
        time.sleep(1)
        stopping = time.monotonic()
        a.signal(signal.SIGTERM)
        took = wait_until(b.leads, 10, "the standby to lead after SIGTERM", every=0.05)
        print(f"SIGTERM takeover: {took:.2f}s")
        assert took < 2.0, took
        assert a.proc.wait(30) == 0, a.logs()[-3000:]
        assert '"msg": "released the Lease"' in a.logs()
        assert time.monotonic() - stopping < 30


def test_apiserver_restart_never_makes_both_lead(testbed: bed.TestBed, repo: ConfigRepo, tmp_path: Path,
                                                 namespace: str) -> None:
    with replicas() as started:
        a, b = _pair(testbed, repo, tmp_path, namespace, started)
        samples: list[tuple[float, bool, bool]] = []
        done = threading.Event()

        def sample() -> None:  # both replicas every 100 ms
            t0 = time.monotonic()
            while not done.is_set():
                samples.append((time.monotonic() - t0, a.leads(0.3), b.leads(0.3)))
                time.sleep(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        time.sleep(1)
        restart_started = time.monotonic()
        testbed.restart("kube-apiserver")
        restart_took = time.monotonic() - restart_started
        time.sleep(T.lease_duration + 2 * T.retry_period)  # past any expiry the restart could cause
        done.set()
        sampler.join()
        both = [s for s in samples if s[1] and s[2]]
        leaders = {("a" if s[1] else "b" if s[2] else "-") for s in samples}
        print(f"apiserver restart took {restart_took:.1f}s; {len(samples)} samples; leaders seen: {sorted(leaders)}; "
              f"a exit: {a.proc.poll()}")
        assert not both, both[:5]
        assert samples[-1][1] or samples[-1][2], "nobody leads after the restart"
        if not samples[-1][1]:  # a lost its Lease: it exited non-zero, to be restarted as a standby
            assert a.proc.wait(30) == 1, a.logs()[-2000:]


def test_a_reconcile_that_loses_the_lease_writes_nothing_more(testbed: bed.TestBed, tmp_path: Path,
                                                              helm_repo: str) -> None:
    """The fence: a cold apply whose Lease is lost after a few waves stops there, and records nothing."""
    fresh = ConfigRepo(tmp_path / "repo", helm_repo)
    reconciler = make_reconciler(testbed, str(fresh.bare), tmp_path)
    agent = reconciler.cluster.api.user_agent
    checks = 0
    lost_at: list[int] = []

    def still_leader() -> bool:
        nonlocal checks
        checks += 1
        if checks <= 4:
            return True
        if not lost_at:
            time.sleep(AUDIT_LAG)
            lost_at.append(len(testbed.audit_events(user_agent_prefix=agent)))
        return False

    reconciler.still_leader = still_leader
    outcome = reconciler.reconcile()
    time.sleep(AUDIT_LAG)
    assert not outcome.ok and outcome.reason is Reason.LEADERSHIP_LOST, outcome.message
    after: list[dict[str, Any]] = testbed.audit_events(user_agent_prefix=agent)[lost_at[0]:]
    assert [e["verb"] for e in after if e.get("verb") in WRITE_VERBS] == []
    with testbed.api_client() as api:
        items = client.CustomObjectsApi(api).list_namespaced_custom_object(
            "openstack-gitops.io", "v1alpha1", fresh.namespace, "openstackdeployments")["items"]
    assert all("LeadershipLost" not in str(i.get("status")) for i in items)  # not even the failure recorded


def test_once_with_leader_election_takes_and_releases_the_lease(testbed: bed.TestBed, repo: ConfigRepo,
                                                                tmp_path: Path, namespace: str) -> None:
    """``--once --leader-elect``: one reconcile under the Lease, then the Lease is handed back."""
    lease = f"lease-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "KUBECONFIG": str(testbed.kubeconfig), "OPENSTACK_GITOPS_HELM": str(build.binary("helm"))}
    cli = [sys.executable, "-m", "reconciler.cli", "reconcile", "--once", "--leader-elect", "--repo", str(repo.bare),
           "--workdir", str(tmp_path / "w"), "--lease-namespace", namespace, "--lease-name", lease,
           "--identity", "once-a"]
    done = subprocess.run(cli, env=env, capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    with testbed.api_client() as api:
        spec = client.CoordinationV1Api(api).read_namespaced_lease(lease, namespace).spec
    assert spec.holder_identity in (None, "") and spec.lease_transitions == 0  # taken once, then released
    bad = subprocess.run([*cli, "--renew-deadline", "20"], env=env, capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "longer than the renew deadline" in bad.stderr


def test_a_leader_renews_with_one_request_and_reads_the_lease_only_after_a_failed_write(
        testbed: bed.TestBed, namespace: str) -> None:
    """client-go's fast path: renewing what it wrote itself needs no GET first (half the requests at rest);
    a write that conflicts (someone else wrote) makes it read the Lease again."""
    agent = f"lease-fast-path-{uuid.uuid4().hex[:6]}"
    with testbed.api_client() as api:
        cluster = Cluster(api)
        api.user_agent = agent  # after the Cluster, which names its process
        elector = LeaderElector(cluster, namespace, "fast-path", "me", Timings(4, 3, 0.5))
        elector.start()
        try:
            assert elector.wait_leader(10)
            time.sleep(AUDIT_LAG)
            start = len(testbed.audit_events(user_agent_prefix=agent))
            time.sleep(5)
            verbs = [(e["verb"], e["objectRef"].get("resource")) for e in
                     testbed.audit_events(user_agent_prefix=agent)[start:] if e["verb"] != "watch"]
            renewals = verbs.count(("update", "leases"))
            assert renewals >= 6 and ("get", "leases") not in verbs, verbs
            # someone else writes the Lease: the leader's next update conflicts, then it reads again
            lease = client.CoordinationV1Api(api).read_namespaced_lease("fast-path", namespace)
            lease.metadata.annotations = {"touched": "by a test"}
            client.CoordinationV1Api(api).replace_namespaced_lease("fast-path", namespace, lease)
            time.sleep(2 + AUDIT_LAG)
            after = [(e["verb"], (e.get("responseStatus") or {}).get("code")) for e in
                     testbed.audit_events(user_agent_prefix=agent)[start:] if e["objectRef"].get("resource") == "leases"
                     and e["verb"] in ("get", "update")]
            assert ("update", 409) in after and ("get", 200) in after[after.index(("update", 409)):], after
            assert elector.is_leader()  # the conflict was its own Lease touched, not a takeover
        finally:
            elector.step_down()
            elector.release()
