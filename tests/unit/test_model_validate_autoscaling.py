"""Bad autoscaling policies are refused at validate time with file:line: field (pure rules; the
PromQL parser's answers and the render's Deployments are passed in as the edges would)."""

from __future__ import annotations

from typing import Any

import pytest

from openstack_gitops.kube.objects import ObjectKey
from openstack_gitops.model.validate import promql_checked, validate
from reconciler.engine import pipeline
from reconciler.plan.diff import Desired

from .model_support import spec, text

BAD_QUERY = 'sum(rate(my_requests{svc="$backend"}[1m])'
GOOD_QUERY = 'sum(rate(my_requests{svc="$backend"}[1m]))'


def policy(**extra: Any) -> dict[str, Any]:
    return {"minReplicas": 2, "maxReplicas": 6, "targetPerReplica": 10, **extra}


@pytest.mark.parametrize(("changes", "kwargs", "field", "message", "expected"), [
    pytest.param({"spec.autoscaling": {"nova-api-osapi": policy(metric="promql")}}, {},
                 "spec.autoscaling.nova-api-osapi.metric", "metric promql needs a query", "query:",
                 id="promql-without-query"),
    pytest.param({"spec.autoscaling": {"nova-api-osapi": policy(query=GOOD_QUERY)}}, {},
                 "spec.autoscaling.nova-api-osapi.query", "not read with metric haproxy-sessions", "metric: promql",
                 id="query-without-promql"),
    pytest.param({"spec.autoscaling": {"nova-api-osapi": policy(metric="promql", query=BAD_QUERY)}},
                 {"promql_errors": {BAD_QUERY.replace("$backend", "backend"): "1:40: parse error: unclosed left "
                                                                              "parenthesis"}},
                 "spec.autoscaling.nova-api-osapi.query", "PromQL does not parse: 1:40: parse error", "PromQL",
                 id="promql-does-not-parse"),
    pytest.param({"spec.autoscaling": {"keystone-api": policy()}},
                 {"rendered_deployments": frozenset({"keystone-api-v2", "glance-api"})},
                 "spec.autoscaling.keystone-api", "the render has no Deployment 'keystone-api'; did you mean "
                                                  "'keystone-api-v2'?", "charts render",
                 id="deployment-not-in-render"),
])
def test_bad_policy_is_refused_with_its_line(changes: dict[str, Any], kwargs: dict[str, Any], field: str,
                                             message: str, expected: str) -> None:
    errors = validate(spec(changes), **kwargs)
    assert len(errors) == 1, errors
    (error,) = errors
    assert (error.file, error.field) == ("openstack.yaml", field)
    assert message in error.message
    assert expected in error.expected
    line = text(changes).splitlines()[error.line - 1]  # type: ignore[operator]
    assert field.rsplit(".", 1)[-1] in line


def test_sound_policies_pass_every_rule() -> None:
    changes = {"spec.autoscaling": {
        "keystone-api": policy(metric="haproxy-request-rate", backend="openstack_keystone-api_5000", tolerance=0.2),
        "nova-api-osapi": policy(metric="promql", query=GOOD_QUERY, scaleUpMaxPods=2, intervalSeconds=5)}}
    s = spec(changes)
    assert validate(s, promql_errors={}, rendered_deployments=frozenset({"keystone-api", "nova-api-osapi"})) == []
    assert promql_checked(s.autoscaling[1]) == 'sum(rate(my_requests{svc="backend"}[1m]))'


def test_old_spec_words_stay_valid() -> None:
    old = {"minReplicas": 2, "maxReplicas": 10, "targetSessionsPerReplica": 50, "scaleDownStabilizationSeconds": 600}
    s = spec({"spec.autoscaling": {"keystone-api": old}})
    assert validate(s) == []
    assert (s.autoscaling[0].target_per_replica, s.autoscaling[0].scale_down_stabilization_seconds) == (50.0, 600)


def test_the_reconcile_pipeline_checks_policies_against_the_rendered_deployments() -> None:
    s = spec({"spec.autoscaling": {"keystone-api": policy(), "glance-api": policy()}})
    rendered = [Desired(ObjectKey.of(o), "x", o) for o in (
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "keystone-api", "namespace": "o"}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "glance-api", "namespace": "o"}})]
    (error,) = pipeline.check_render(s, rendered)
    assert (error.field, error.message) == ("spec.autoscaling.glance-api", "the render has no Deployment 'glance-api'")
