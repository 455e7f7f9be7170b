"""kwok nodes behave like kubelets over time: Leases renewed, Ready for good, NotReady when kwok dies.

Tests and benchmarks that run longer than a few minutes, and the pod health watcher, rely on a
node being Ready exactly while its (simulated) kubelet, kwok, is alive.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client

from testbed import bed, controlplane
from tests.waiting import wait_for

pytestmark = pytest.mark.testbed

HOLD_SECONDS = 600
CHECK_EVERY = 30
# kwok renews every lease_duration / 4 (10 s); a lease older than half its duration missed a renewal
MAX_LEASE_AGE = controlplane.NODE_LEASE_SECONDS / 2


@pytest.fixture
def big_bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[bed.TestBed]:
    directory = tmp_path_factory.mktemp("nodes-ready")
    tb = bed.up(directory, control_plane=3, compute=100, pod_ready_delay_ms=100)
    try:
        yield tb
    finally:
        bed.down(directory)


@pytest.fixture
def small_bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[bed.TestBed]:
    directory = tmp_path_factory.mktemp("kwok-dies")
    tb = bed.up(directory, control_plane=1, compute=2, pod_ready_delay_ms=100)
    try:
        yield tb
    finally:
        bed.down(directory)


def _ready(conditions: list[Any] | None) -> Any:
    return next((c for c in conditions or [] if c.type == "Ready"), None)


def _not_ready_nodes(core: client.CoreV1Api) -> list[str]:
    nodes = core.list_node().items
    return sorted(n.metadata.name for n in nodes if (c := _ready(n.status.conditions)) is None or c.status != "True")


def _start_pod(core: client.CoreV1Api) -> tuple[str, datetime]:
    """A pod in a namespace of its own, Ready; returns the namespace and its Ready transition time."""
    namespace = f"t-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": namespace}})
    core.create_namespaced_pod(namespace, {"metadata": {"name": "steady"},
                                           "spec": {"containers": [{"name": "c", "image": "keystone"}]}})

    def ready() -> Any:
        cond = _ready(core.read_namespaced_pod("steady", namespace).status.conditions)
        return cond if cond is not None and cond.status == "True" else None

    return namespace, wait_for(ready, timeout=60, what="pod Ready").last_transition_time


def _pod_ready(core: client.CoreV1Api, namespace: str) -> Any:
    return _ready(core.read_namespaced_pod("steady", namespace).status.conditions)


@pytest.mark.timeout(HOLD_SECONDS + 600)
def test_nodes_and_a_pod_stay_ready_for_ten_minutes(big_bed: bed.TestBed) -> None:
    with big_bed.api_client() as api:
        core = client.CoreV1Api(api)
        coordination = client.CoordinationV1Api(api)
        names = {n.metadata.name for n in core.list_node().items}
        assert len(names) == 103
        namespace, pod_ready_since = _start_pod(core)
        started = time.monotonic()
        worst_age = 0.0
        renewals: dict[str, set[datetime]] = {name: set() for name in names}
        while True:
            elapsed = time.monotonic() - started
            at = f"after {elapsed:.0f}s"
            assert _not_ready_nodes(core) == [], f"nodes not Ready {at}"
            events = core.list_event_for_all_namespaces(field_selector="reason=NodeNotReady").items
            assert not events, f"{len(events)} NodeNotReady events {at}, first: {events[0].message}"
            leases = {lease.metadata.name: lease.spec
                      for lease in coordination.list_namespaced_lease("kube-node-lease").items}
            assert set(leases) == names, f"node Leases {at}: {len(leases)} for {len(names)} nodes"
            now = datetime.now(UTC)
            for name, spec in leases.items():
                age = (now - spec.renew_time).total_seconds()
                worst_age = max(worst_age, age)
                assert age <= MAX_LEASE_AGE, f"Lease of {name} last renewed {age:.1f}s ago ({at})"
                assert spec.lease_duration_seconds == controlplane.NODE_LEASE_SECONDS
                renewals[name].add(spec.renew_time)
            pod_ready = _pod_ready(core, namespace)
            assert pod_ready.status == "True", f"pod not Ready {at}"
            assert pod_ready.last_transition_time == pod_ready_since, f"pod readiness flapped ({at})"
            if elapsed >= HOLD_SECONDS:
                break
            time.sleep(CHECK_EVERY)
        # every check saw a fresh renewal of every lease, not one lease written long ago
        assert min(len(times) for times in renewals.values()) >= HOLD_SECONDS // CHECK_EVERY
        print(f"held {elapsed:.0f}s: 103 nodes Ready, oldest Lease renewal seen {worst_age:.1f}s old")


@pytest.mark.timeout(600)
def test_nodes_go_not_ready_when_kwok_stops_and_recover(small_bed: bed.TestBed) -> None:
    with small_bed.api_client() as api:
        core = client.CoreV1Api(api)
        namespace, _since = _start_pod(core)
        node_count = len(core.list_node().items)
        small_bed.stop_component("kwok")
        stopped = time.monotonic()
        wait_for(lambda: len(_not_ready_nodes(core)) == node_count, timeout=120, every=1,
                 what="every node NotReady after kwok stopped")
        not_ready_after = time.monotonic() - stopped
        # the node monitor grace period decides: no lease renewal for it, and the node is NotReady
        grace = controlplane.NODE_MONITOR_GRACE_SECONDS
        assert grace - controlplane.NODE_LEASE_SECONDS / 4 - 5 <= not_ready_after <= grace + 20, not_ready_after
        wait_for(lambda: _pod_ready(core, namespace).status != "True", timeout=30, what="pod marked not Ready")

        small_bed.start_component("kwok")
        restarted = time.monotonic()
        wait_for(lambda: not _not_ready_nodes(core), timeout=60, every=1, what="nodes Ready again")
        ready_after = time.monotonic() - restarted
        wait_for(lambda: _pod_ready(core, namespace).status == "True", timeout=60, what="pod Ready again")
        print(f"nodes NotReady {not_ready_after:.0f}s after kwok stopped, Ready {ready_after:.0f}s after it started")
