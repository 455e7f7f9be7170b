"""The autoscaler's tick against an in-memory cluster and Prometheus: what it writes, in which order, and when not."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

from autoscaler import presets
from autoscaler.loop import Autoscaler
from autoscaler.metrics import Metrics
from openstack_gitops import api
from openstack_gitops.kube.client import Cluster
from openstack_gitops.model.spec import AutoscalingPolicy, policy_document

POLICY = AutoscalingPolicy("nova-api-osapi", 2, 10, 10.0, interval_seconds=15)


class FakeCluster:
    """OpenStackDeployments and Deployments in memory; every write is recorded in order."""

    def __init__(self, policies: list[AutoscalingPolicy], replicas: dict[str, int]) -> None:
        self.resource: dict[str, Any] = {
            "metadata": {"name": "cloud", "namespace": "openstack", "annotations": {}},
            "spec": {"autoscaling": {p.deployment: policy_document(p) for p in policies}}, "status": {}}
        self.deployments = {name: {"metadata": {"name": name, "annotations": {}}, "spec": {"replicas": n},
                                   "status": {"readyReplicas": n}} for name, n in replicas.items()}
        self.writes: list[tuple[str, Any]] = []

    def list(self, api_version: str, kind: str, label_selector: str = "", namespace: str | None = None) -> list[Any]:
        return [self.resource] if kind == api.KIND else list(self.deployments.values())

    def scale(self, api_version: str, kind: str, name: str, namespace: str, replicas: int) -> None:
        self.writes.append(("scale", (name, replicas)))
        self.deployments[name]["spec"]["replicas"] = replicas
        self.deployments[name]["status"]["readyReplicas"] = replicas

    def patch_status(self, api_version: str, kind: str, name: str, namespace: str, status: Any) -> None:
        self.writes.append(("status", status))
        self.resource["status"] = {**self.resource["status"], **status}

    def create_event(self, event: Any) -> None:
        self.writes.append(("event", event["note"]))

    def verbs(self) -> list[str]:
        return [verb for verb, _ in self.writes]


class FakePrometheus:
    def __init__(self) -> None:
        self.sessions: dict[str, float] = {}
        self.asked: list[str] = []

    def query(self, promql: str) -> list[dict[str, Any]]:
        self.asked.append(promql)
        return [{"metric": {"proxy": b, presets.KIND_LABEL: kind}, "value": [0, str(v if kind == "value" else 1)]}
                for b, v in self.sessions.items() for kind in ("value", "age")]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def make(policies: list[AutoscalingPolicy] | None = None, replicas: dict[str, int] | None = None,
         **kw: Any) -> tuple[Autoscaler, FakeCluster, FakePrometheus, Clock]:
    cluster = FakeCluster(policies or [POLICY], replicas or {"nova-api-osapi": 2})
    prom, clock = FakePrometheus(), Clock()
    scaler = Autoscaler(cast(Cluster, cluster), prom, Metrics(), clock=clock, identity="me", **kw)
    return scaler, cluster, prom, clock


def test_below_min_goes_to_min_and_the_status_is_written_before_the_scale() -> None:
    scaler, cluster, _, _ = make(replicas={"nova-api-osapi": 1})
    report = scaler.tick()
    assert report.scaled == [("openstack/nova-api-osapi", 1, 2, "below-min")]
    assert cluster.verbs() == ["status", "scale", "event"]
    line = cluster.writes[0][1]["autoscaler"]["targets"]["nova-api-osapi"]
    assert (line["lastScale"]["from"], line["lastScale"]["to"], line["reason"]) == (1, 2, "below-min")
    assert "1 -> 2 replicas, below-min" in cluster.writes[2][1]


def test_load_scales_up_and_a_steady_tick_writes_nothing() -> None:
    scaler, cluster, prom, clock = make()
    prom.sessions = {"nova-api": 45.0}
    assert scaler.tick().scaled == [("openstack/nova-api-osapi", 2, 5, "scale-up")]
    clock.now += 15
    scaler.tick()  # the pods came up and the decision is steady: the status says so
    cluster.writes.clear()
    clock.now += 15
    report = scaler.tick()
    assert (report.scaled, cluster.writes) == ([], [])  # nothing changed: not even a status write


def test_targets_wait_for_their_interval() -> None:
    scaler, _, prom, clock = make()
    prom.sessions = {"nova-api": 20.0}
    scaler.tick()
    clock.now += 5
    assert scaler.tick().decided == 0
    assert len(prom.asked) == 1
    clock.now += 10
    assert scaler.tick().decided == 1


def test_one_query_per_preset_per_tick_for_many_targets() -> None:
    policies = [replace(POLICY, deployment=f"api-{i}") for i in range(30)]
    scaler, _, prom, _ = make(policies, {f"api-{i}": 2 for i in range(30)})
    prom.sessions = {f"api-{i}": 20.0 for i in range(30)}
    report = scaler.tick()
    assert (report.decided, report.queries, len(prom.asked)) == (30, 1, 1)


def test_no_data_holds_and_is_reported() -> None:
    scaler, cluster, _, _ = make(replicas={"nova-api-osapi": 6})
    report = scaler.tick()
    assert report.scaled == [] and report.holds == {"openstack/nova-api-osapi": "no-data"}
    assert cluster.verbs() == ["status"]
    assert cluster.resource["status"]["autoscaler"]["targets"]["nova-api-osapi"]["dataOk"] is False
    errors = scaler.metrics.registry.get_sample_value(
        "openstack_gitops_autoscaler_errors_total",
        {"namespace": "openstack", "deployment": "nova-api-osapi", "reason": "no-data"})
    assert errors == 1.0


def test_pause_by_annotation_by_cloud_and_by_flag() -> None:
    for where in ("deployment", "cloud", "flag"):
        scaler, cluster, prom, _ = make(replicas={"nova-api-osapi": 1}, paused=where == "flag")
        if where == "deployment":
            cluster.deployments["nova-api-osapi"]["metadata"]["annotations"][api.AUTOSCALING_ANNOTATION] = "paused"
        if where == "cloud":
            cluster.resource["metadata"]["annotations"][api.AUTOSCALING_ANNOTATION] = "paused"
        report = scaler.tick()
        assert report.scaled == [], where
        assert prom.asked == [], where  # a paused target costs no query
        line = cluster.resource["status"]["autoscaler"]["targets"]["nova-api-osapi"]
        assert (line["reason"], line["paused"]) == ("paused", True), where


def test_a_standby_writes_nothing() -> None:
    scaler, cluster, prom, _ = make(replicas={"nova-api-osapi": 1}, still_leader=lambda: False)
    prom.sessions = {"nova-api": 100.0}
    scaler.tick()
    assert cluster.writes == []


def test_policy_change_is_followed_without_restart_and_removal_forgets_the_target() -> None:
    scaler, cluster, prom, clock = make()
    prom.sessions = {"nova-api": 45.0}
    scaler.tick()
    assert cluster.deployments["nova-api-osapi"]["spec"]["replicas"] == 5
    cluster.resource["spec"]["autoscaling"]["nova-api-osapi"] = policy_document(replace(POLICY, max_replicas=3))
    clock.now += 15
    assert scaler.tick().scaled == [("openstack/nova-api-osapi", 5, 3, "above-max")]
    cluster.resource["spec"]["autoscaling"] = {}
    cluster.writes.clear()
    clock.now += 15
    scaler.tick()
    assert cluster.writes == [] and scaler.histories == {}


def test_a_new_leader_continues_without_a_double_step() -> None:
    """The old leader scaled 2 -> 6 (status written first); a fresh process taking over five
    seconds later sees the step in the status and spends no second step within the period."""
    policy = replace(POLICY, max_replicas=30)
    old, cluster, prom, clock = make([policy])
    prom.sessions = {"nova-api": 1000.0}
    assert old.tick().scaled == [("openstack/nova-api-osapi", 2, 6, "scale-up-rate-limited")]
    new = Autoscaler(cast(Cluster, cluster), prom, Metrics(), clock=clock, identity="standby")
    clock.now += 5
    report = new.tick()
    assert report.scaled == []
    clock.now += 15
    assert new.tick().scaled == [("openstack/nova-api-osapi", 6, 12, "scale-up-rate-limited")]


def test_missing_deployment_is_reported_and_others_go_on() -> None:
    policies = [POLICY, replace(POLICY, deployment="glance-api")]
    scaler, cluster, _, _ = make(policies, {"glance-api": 1})
    report = scaler.tick()
    assert report.scaled == [("openstack/glance-api", 1, 2, "below-min")]
    line = cluster.resource["status"]["autoscaler"]["targets"]["nova-api-osapi"]
    assert line["reason"] == "deployment-missing"
