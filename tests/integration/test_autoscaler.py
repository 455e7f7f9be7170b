"""The autoscaler on the real test bed: a real Prometheus scraping a real HAProxy in front of real HTTP
backends, load held open on loopback (bounded), Deployments on the kwok nodes, the scale subresource."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from autoscaler.decide import Reason
from openstack_gitops.kube.client import Cluster
from openstack_gitops.model.spec import AutoscalingPolicy, MetricPreset
from testbed import bed
from testbed.haproxy import HAProxy
from testbed.prometheus import Prometheus as PrometheusServer

from .autoscaler_support import (
    backend_sessions,
    deployment,
    in_process,
    publish,
    replicas,
    running,
    scale_writes,
    sessions,
    start_process,
    wait_for,
)

pytestmark = pytest.mark.testbed
BACKENDS = {"as-rise": 1, "as-flap": 1, "as-lead": 1}
TICK = 2  # seconds between ticks in these tests (intervalSeconds)


@pytest.fixture(scope="module")
def lb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HAProxy, PrometheusServer]]:
    """This module's own HAProxy and a Prometheus scraping it every second (no other test's load counts)."""
    proxy = HAProxy(tmp_path_factory.mktemp("as-haproxy"), backends=BACKENDS)
    prom = PrometheusServer(tmp_path_factory.mktemp("as-prometheus"), scrape_interval=1.0)
    try:
        proxy.start()
        prom.start()
        prom.add_target("haproxy", proxy.metrics_address)
        yield proxy, prom
    finally:
        prom.stop()
        proxy.stop()


def policy(name: str, backend: str, **kw: object) -> AutoscalingPolicy:
    base = AutoscalingPolicy(name, min_replicas=1, max_replicas=5, target_per_replica=4.0, backend=backend,
                             interval_seconds=TICK, scale_down_stabilization_seconds=10)
    return replace(base, **kw)  # type: ignore[arg-type]


def test_load_rises_then_falls_scale_up_within_two_ticks_down_after_the_window(
        testbed: bed.TestBed, namespace: str, lb: tuple[HAProxy, PrometheusServer]) -> None:
    proxy, prom = lb
    admin = Cluster(testbed.api_client())
    admin.apply(deployment("rise-api", namespace, 1))
    publish(admin, namespace, [policy("rise-api", "as-rise")])
    scaler, cluster = in_process(testbed, prom.url, namespace)
    with running(scaler), sessions(proxy.frontend_url("as-rise")) as load:
        wait_for(lambda: backend_sessions(prom, "as-rise") == 0.0, 30, "Prometheus to see the idle backend")
        load.set(12)  # 12 sessions / 4 per replica: 3 replicas
        seen = wait_for(lambda: backend_sessions(prom, "as-rise") == 12.0, 30, "Prometheus to see 12 sessions")
        scaled = wait_for(lambda: replicas(cluster, namespace, "rise-api") == 3, 20, "the scale-up to 3")
        assert scaled - seen <= 2 * TICK + 1.0, f"scale-up {scaled - seen:.1f}s after Prometheus saw the load"
        load.set(60)  # far beyond max: the bound holds
        wait_for(lambda: replicas(cluster, namespace, "rise-api") == 5, 20, "the scale-up to max")
        time.sleep(3 * TICK)
        assert replicas(cluster, namespace, "rise-api") == 5
        load.set(0)
        idle = wait_for(lambda: backend_sessions(prom, "as-rise") == 0.0, 30, "Prometheus to see the load gone")
        down = wait_for(lambda: replicas(cluster, namespace, "rise-api") == 1, 40, "the scale-down to min")
        assert down - idle >= 10 - TICK - 1.0, f"scaled down {down - idle:.1f}s after the load went (window 10 s)"
    events = [e for e in admin.list("events.k8s.io/v1", "Event", "", namespace)
              if (e.get("regarding") or {}).get("name") == "rise-api"]
    reasons = [e["reason"] for e in events]
    assert reasons.count("ScaledUp") >= 2 and "ScaledDown" in reasons, reasons
    assert any("-> 3 replicas, scale-up (haproxy-sessions: 12 sessions for as-rise" in e["note"] for e in events), \
        [e["note"] for e in events]
    section = ((admin.get("openstack-gitops.io/v1alpha1", "OpenStackDeployment", "cloud", namespace) or {})
               .get("status") or {}).get("autoscaler") or {}
    assert section["targets"]["rise-api"]["replicas"] == 1
    assert section["targets"]["rise-api"]["lastScale"]["reason"] == "scale-down"
    ups = scaler.metrics.registry.get_sample_value("openstack_gitops_autoscaler_scale_writes_total",
                                                   {"namespace": namespace, "deployment": "rise-api",
                                                    "direction": "up"})
    assert ups is not None and ups >= 2


def test_missing_nan_ambiguous_or_unreachable_data_changes_nothing_and_is_counted(
        testbed: bed.TestBed, namespace: str, lb: tuple[HAProxy, PrometheusServer], tmp_path: Path) -> None:
    """Every target sits at 3 replicas with no load and no stabilization window: trusted data would
    scale each down to 1 at once. Only the target whose data is sound moves."""
    proxy, _ = lb
    prom = PrometheusServer(tmp_path / "prometheus", scrape_interval=1.0)  # its own: this test stops it
    try:
        prom.start()
        prom.add_target("haproxy", proxy.metrics_address)
        admin = Cluster(testbed.api_client())
        targets = {
            "sound-api": policy("sound-api", "as-flap", scale_down_stabilization_seconds=0),
            "empty-api": policy("empty-api", "no-such-backend", scale_down_stabilization_seconds=0),
            "nan-api": policy("nan-api", "as-flap", metric=MetricPreset.PROMQL, scale_down_stabilization_seconds=0,
                              query='sum(haproxy_backend_current_sessions{proxy="$backend"}) / 0'),
            "several-api": policy("several-api", "as-flap", metric=MetricPreset.PROMQL,
                                  scale_down_stabilization_seconds=0, query="haproxy_backend_current_sessions"),
        }
        for name in targets:
            admin.apply(deployment(name, namespace, 3))
        publish(admin, namespace, list(targets.values()))
        wait_for(lambda: backend_sessions(prom, "as-flap") == 0.0, 30, "Prometheus to see the idle backend")
        wait_for(lambda: all(((admin.get("apps/v1", "Deployment", n, namespace) or {}).get("status") or {})
                             .get("readyReplicas") == 3 for n in targets), 30, "3 ready replicas each")
        scaler, cluster = in_process(testbed, prom.url, namespace)
        report = scaler.tick(force=True)
        assert report.scaled == [(f"{namespace}/sound-api", 3, 1, "scale-down")]
        assert report.holds == {f"{namespace}/empty-api": Reason.NO_DATA.value,
                                f"{namespace}/nan-api": Reason.NAN.value,
                                f"{namespace}/several-api": Reason.SEVERAL_SERIES.value}
        prom.stop()  # Prometheus gone: every target holds
        admin.apply(deployment("sound-api", namespace, 3), field_manager="test-operator")
        report = scaler.tick(force=True)
        assert report.scaled == []
        assert set(report.holds.values()) == {Reason.QUERY_FAILED.value}
        for name in targets:
            assert replicas(cluster, namespace, name) == 3, name
        errors = scaler.metrics.registry.get_sample_value(
            "openstack_gitops_autoscaler_errors_total",
            {"namespace": namespace, "deployment": "sound-api", "reason": "query-failed"})
        assert errors == 1.0
        section = (admin.get("openstack-gitops.io/v1alpha1", "OpenStackDeployment", "cloud", namespace) or {})[
            "status"]["autoscaler"]["targets"]
        assert section["nan-api"]["dataOk"] is False and section["nan-api"]["replicas"] == 3
    finally:
        prom.stop()


def test_flapping_load_gives_a_bounded_number_of_scale_events(
        testbed: bed.TestBed, namespace: str, lb: tuple[HAProxy, PrometheusServer]) -> None:
    proxy, prom = lb
    admin = Cluster(testbed.api_client())
    admin.apply(deployment("flap-api", namespace, 1))
    publish(admin, namespace, [policy("flap-api", "as-flap", scale_down_stabilization_seconds=15)])
    scaler, cluster = in_process(testbed, prom.url, namespace)
    with running(scaler), sessions(proxy.frontend_url("as-flap")) as load:
        wait_for(lambda: backend_sessions(prom, "as-flap") == 0.0, 30, "Prometheus to see the idle backend")
        flips = 0
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:  # 16 sessions and none, every 3 s: 13 changes of load
            load.set(16 if flips % 2 == 0 else 0)
            flips += 1
            time.sleep(3)
        load.set(0)
        during = len(scale_writes(testbed, namespace, "flap-api", scale_only=True))
        assert replicas(cluster, namespace, "flap-api") == 4  # up once, held by the window while the highs recur
        wait_for(lambda: replicas(cluster, namespace, "flap-api") == 1, 40, "the scale-down once the load stays off")
    assert flips >= 12
    assert during <= 3, f"{during} scale writes for {flips} changes of load"


def test_a_killed_leader_is_followed_without_a_double_step(
        testbed: bed.TestBed, namespace: str, lb: tuple[HAProxy, PrometheusServer], tmp_path: Path) -> None:
    """Each 20 s period allows one more replica. The leader takes the first step and is SIGKILLed; the
    standby takes over within seconds and still waits for the period (it reads the step in the status)."""
    proxy, prom = lb
    admin = Cluster(testbed.api_client())
    admin.apply(deployment("lead-api", namespace, 1))
    publish(admin, namespace, [policy("lead-api", "as-lead", target_per_replica=1.0, max_replicas=10,
                                      interval_seconds=1, scale_up_max_pods=1, scale_up_max_percent=1,
                                      scale_up_period_seconds=20)])
    lease = ("--lease-duration", "4", "--renew-deadline", "3", "--retry-period", "1")
    procs = []
    try:
        with sessions(proxy.frontend_url("as-lead")) as load:
            load.set(8)
            wait_for(lambda: backend_sessions(prom, "as-lead") == 8.0, 30, "Prometheus to see 8 sessions")
            first, _ = start_process(testbed, prom.url, namespace, "first", tmp_path / "first.log", lease)
            procs.append(first)
            wait_for(lambda: replicas(admin, namespace, "lead-api") == 2, 60, "the leader's first step")
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            second, _ = start_process(testbed, prom.url, namespace, "second", tmp_path / "second.log", lease)
            procs.append(second)
            wait_for(lambda: replicas(admin, namespace, "lead-api") == 3, 60, "the standby's step")
        writes = scale_writes(testbed, namespace, "lead-api", scale_only=True)
        by = [str(w.get("userAgent", "")).rsplit("(", 1)[-1].rstrip(")") for w in writes]
        assert by[:2] == ["first", "second"], by
        stamps = [time.mktime(time.strptime(w["requestReceivedTimestamp"][:19], "%Y-%m-%dT%H:%M:%S"))
                  for w in writes[:2]]
        assert stamps[1] - stamps[0] >= 20 - 1, f"second step {stamps[1] - stamps[0]:.0f}s after the first"
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
