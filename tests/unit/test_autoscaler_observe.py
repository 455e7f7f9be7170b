"""Observing load: one query per metric preset for all its targets, answers parsed per backend (fake Prometheus)."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest

from autoscaler import presets
from autoscaler.decide import Current, Reading, Reason, ScaleEvent
from autoscaler.edges.prometheus import PrometheusError
from autoscaler.observe import Target, cloud_of, read_load
from openstack_gitops import api
from openstack_gitops.model.spec import AutoscalingPolicy, MetricPreset, policy_document

BASE = AutoscalingPolicy("keystone-api", 2, 10, 10.0)


def target(deployment: str, metric: MetricPreset = MetricPreset.HAPROXY_SESSIONS, **kw: Any) -> Target:
    return Target("cloud", "openstack", replace(BASE, deployment=deployment, metric=metric, **kw))


def sample(label: str, backend: str, value: str, kind: str = "value") -> dict[str, Any]:
    return {"metric": {label: backend, presets.KIND_LABEL: kind}, "value": [1700000000.0, value]}


class FakePrometheus:
    """Answers each query from ``answers`` (a callable of the query) and records what was asked."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.asked: list[str] = []

    def query(self, promql: str) -> list[dict[str, Any]]:
        self.asked.append(promql)
        result = self.answer(promql)
        if isinstance(result, Exception):
            raise result
        return list(result)


def test_backend_defaults_to_the_apis_service_name_and_can_be_overridden() -> None:
    assert presets.backend_of(replace(BASE, deployment="nova-api-osapi")) == "nova-api"
    assert presets.backend_of(replace(BASE, deployment="horizon")) == "horizon-int"
    assert presets.backend_of(replace(BASE, deployment="nova-api-osapi", backend="openstack_nova-api_8774")) == \
        "openstack_nova-api_8774"
    assert presets.backend_of(replace(BASE, deployment="my-own-api")) == "my-own-api"


def test_group_query_names_every_backend_once_escaped() -> None:
    query = presets.group_query(presets.PRESETS[MetricPreset.HAPROXY_SESSIONS], ["b.x", "a", "a"])
    assert query.count('proxy=~"a|b\\\\.x"') == 2  # value and age, the dot matched literally
    assert query.startswith("label_replace(sum by (proxy) (haproxy_backend_current_sessions{")
    assert "time() - timestamp(haproxy_backend_current_sessions{" in query


def test_rate_presets_date_their_counter_not_the_rate() -> None:
    query = presets.group_query(presets.PRESETS[MetricPreset.HAPROXY_REQUEST_RATE], ["keystone-api"])
    assert 'rate(haproxy_backend_http_requests_total{proxy=~"keystone-api"}[1m])' in query
    assert 'timestamp(haproxy_backend_http_requests_total{proxy=~"keystone-api"})' in query


def test_one_query_per_preset_covers_every_target() -> None:
    targets = [target(f"api-{i}", backend=f"b{i}") for i in range(50)]
    targets += [target(f"rate-{i}", MetricPreset.HAPROXY_REQUEST_RATE, backend=f"r{i}") for i in range(20)]
    answers = [sample("proxy", f"b{i}", str(i)) for i in range(50)] + \
              [sample("proxy", f"b{i}", "2", "age") for i in range(50)]
    prom = FakePrometheus(lambda q: answers if "current_sessions" in q else [sample("proxy", "r3", "7.5")])
    load = read_load(prom, targets)
    assert len(prom.asked) == 2
    assert dict(load.queries) == {"haproxy-sessions": 1, "haproxy-request-rate": 1}
    assert load.readings["openstack/api-7"] == Reading(7.0, 2.0)
    assert load.readings["openstack/rate-3"] == Reading(7.5, None)
    assert load.readings["openstack/rate-4"] == Reading()  # no series: the decision holds (no-data)


def test_a_failed_query_holds_only_the_targets_of_its_preset() -> None:
    def answer(q: str) -> Any:
        return PrometheusError("timeout", "no answer within 10s") if "queue" in q else [sample("proxy", "a", "3")]

    load = read_load(FakePrometheus(answer), [target("x", backend="a"), target("y", MetricPreset.HAPROXY_QUEUE)])
    assert load.readings["openstack/x"].value == 3.0
    failed = load.readings["openstack/y"]
    assert (failed.failure, failed.detail) == (Reason.QUERY_FAILED, "timeout: no answer within 10s")
    assert list(load.errors) == ["haproxy-queue"]


@pytest.mark.parametrize(("result", "expected"), [
    pytest.param([], Reading(), id="empty"),
    pytest.param([{"metric": {}, "value": [1, "4"]}], Reading(4.0), id="one-series"),
    pytest.param([{"metric": {"a": "1"}, "value": [1, "4"]}, {"metric": {"a": "2"}, "value": [1, "5"]}],
                 Reason.SEVERAL_SERIES, id="several-series"),
])
def test_raw_promql_is_one_query_per_target_and_must_return_one_series(result: list[Any], expected: Any) -> None:
    prom = FakePrometheus(lambda _q: result)
    t = target("nova-api-osapi", MetricPreset.PROMQL, query='sum(my_requests{svc="$backend"})')
    reading = read_load(prom, [t]).readings[t.key]
    assert prom.asked == ['sum(my_requests{svc="nova-api"})']
    if isinstance(expected, Reason):
        assert reading.failure is expected and "2 series" in reading.detail
    else:
        assert reading == expected


def test_nan_from_prometheus_parses_as_nan() -> None:
    parsed = presets.parse_group(presets.PRESETS[MetricPreset.HAPROXY_SESSIONS], [sample("proxy", "a", "NaN")])
    assert math.isnan(parsed["a"].value or 0.0)


def test_cloud_of_reads_policies_replicas_pauses_and_the_last_scale() -> None:
    policy = replace(BASE, deployment="keystone-api")
    resource = {
        "metadata": {"name": "cloud", "namespace": "openstack",
                     "annotations": {api.AUTOSCALING_ANNOTATION: api.AUTOSCALING_PAUSED}},
        "spec": {"autoscaling": {"keystone-api": policy_document(policy),
                                 "glance-api": policy_document(replace(policy, deployment="glance-api"))}},
        "status": {"autoscaler": {"targets": {"keystone-api": {"lastScale": {"at": 5.0, "from": 1, "to": 2}}}}},
    }
    deployments = [{"metadata": {"name": "keystone-api", "annotations": {api.AUTOSCALING_ANNOTATION: "paused"}},
                    "spec": {"replicas": 2}, "status": {"readyReplicas": 1}}]
    cloud = cloud_of(resource, deployments)
    assert cloud.paused
    by_name = {s.target.deployment: s for s in cloud.targets}
    assert by_name["keystone-api"].current == Current(2, 1)
    assert by_name["keystone-api"].paused
    assert by_name["keystone-api"].last_scale == ScaleEvent(5.0, 1, 2)
    assert by_name["keystone-api"].target.policy == policy
    assert by_name["glance-api"].current is None  # no such Deployment: reported, never scaled


def test_published_policy_round_trips_with_every_default() -> None:
    policy = replace(BASE, metric=MetricPreset.ENVOY_REQUEST_RATE, backend="x", tolerance=0.2, interval_seconds=5)
    assert api.autoscaling_policies({"autoscaling": {"keystone-api": policy_document(policy)}}) == (policy,)
    old_words = {"minReplicas": 2, "maxReplicas": 10, "targetSessionsPerReplica": 10,
                 "scaleDownStabilizationSeconds": 300}
    assert api.autoscaling_policies({"autoscaling": {"keystone-api": old_words}}) == (BASE,)
