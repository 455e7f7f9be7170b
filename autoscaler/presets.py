"""The metric presets, and the one query per preset that serves every target using it. Pure.

A preset knows which load balancer's exporter it reads, the label that names a backend there, the
expression of a backend's load, and the raw series whose sample timestamps tell how fresh that
load is. :func:`group_query` asks for every backend of a preset at once, value and age together::

    label_replace(sum by (proxy) (haproxy_backend_current_sessions{proxy=~"a|b"}), "og_kind", "value", "", "")
    or label_replace(max by (proxy) (time() - timestamp(haproxy_backend_current_sessions{proxy=~"a|b"})),
                     "og_kind", "age", "", "")

so a tick costs one Prometheus query per preset in use, not one per target. :func:`parse_group`
turns the answer into one :class:`~autoscaler.decide.Reading` per backend. A raw PromQL policy
cannot be grouped: it is one query per target (``$backend`` replaced), and must return one series.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from autoscaler.decide import Reading, Reason
from openstack_gitops.model.catalog import AUTOSCALABLE
from openstack_gitops.model.spec import AutoscalingPolicy, MetricPreset

KIND_LABEL = "og_kind"  # marks a series of a group answer as the value or the age of a backend
BACKEND_PLACEHOLDER = "$backend"
RATE_WINDOW = "1m"


@dataclass(frozen=True)
class Preset:
    """One load balancer's metric: ``value`` and ``fresh`` are PromQL with ``{sel}`` for the backend matcher."""

    name: MetricPreset
    label: str  # the label naming a backend in that exporter
    value: str  # a backend's load, summed over load-balancer instances
    fresh: str  # the raw series whose newest sample dates the load
    unit: str


def _rate(metric: str) -> str:
    return f"rate({metric}{{sel}}[{RATE_WINDOW}])"


PRESETS: Mapping[MetricPreset, Preset] = {
    p.name: p for p in (
        Preset(MetricPreset.HAPROXY_SESSIONS, "proxy", "haproxy_backend_current_sessions{sel}",
               "haproxy_backend_current_sessions{sel}", "sessions"),
        Preset(MetricPreset.HAPROXY_QUEUE, "proxy", "haproxy_backend_current_queue{sel}",
               "haproxy_backend_current_queue{sel}", "queued requests"),
        Preset(MetricPreset.HAPROXY_REQUEST_RATE, "proxy", _rate("haproxy_backend_http_requests_total"),
               "haproxy_backend_http_requests_total{sel}", "requests/s"),
        Preset(MetricPreset.ENVOY_ACTIVE_REQUESTS, "envoy_cluster_name", "envoy_cluster_upstream_rq_active{sel}",
               "envoy_cluster_upstream_rq_active{sel}", "active requests"),
        Preset(MetricPreset.ENVOY_REQUEST_RATE, "envoy_cluster_name", _rate("envoy_cluster_upstream_rq_total"),
               "envoy_cluster_upstream_rq_total{sel}", "requests/s"),
        Preset(MetricPreset.NGINX_REQUEST_RATE, "service", _rate("nginx_ingress_controller_requests"),
               "nginx_ingress_controller_requests{sel}", "requests/s"),
    )
}


def backend_of(policy: AutoscalingPolicy) -> str:
    """The load balancer's name for the target: the policy's ``backend``, else the API's Service name."""
    if policy.backend:
        return policy.backend
    api = AUTOSCALABLE.get(policy.deployment)
    return api.service_name if api is not None and api.service_name else policy.deployment


def unit_of(policy: AutoscalingPolicy) -> str:
    preset = PRESETS.get(policy.metric)
    return preset.unit if preset is not None else "units"


def _regex_literal(name: str) -> str:
    """``name`` as an exact RE2 alternative inside a PromQL double-quoted string."""
    escaped = "".join(f"\\{c}" if c in r".+*?()|[]{}^$\\" else c for c in name)
    return escaped.replace("\\", "\\\\").replace('"', '\\"')


def group_query(preset: Preset, backends: Iterable[str]) -> str:
    """One query for the load and data age of every backend in ``backends``."""
    names = sorted(set(backends))
    sel = f'{{{preset.label}=~"{"|".join(_regex_literal(b) for b in names)}"}}'
    value = preset.value.replace("{sel}", sel)
    fresh = preset.fresh.replace("{sel}", sel)
    return (f'label_replace(sum by ({preset.label}) ({value}), "{KIND_LABEL}", "value", "", "") or '
            f'label_replace(max by ({preset.label}) (time() - timestamp({fresh})), "{KIND_LABEL}", "age", "", "")')


def promql_query(policy: AutoscalingPolicy) -> str:
    """A raw-PromQL policy's query with its backend filled in."""
    return policy.query.replace(BACKEND_PLACEHOLDER, backend_of(policy))


def _number(sample: Mapping[str, Any]) -> float:
    """The value of one instant-vector sample (``"NaN"`` and ``"+Inf"`` parse as such)."""
    try:
        return float(sample["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        return math.nan


def parse_group(preset: Preset, result: Sequence[Mapping[str, Any]]) -> dict[str, Reading]:
    """backend -> Reading from a :func:`group_query` answer; a backend without a value series is absent."""
    values: dict[str, float] = {}
    ages: dict[str, float] = {}
    for sample in result:
        labels = sample.get("metric") or {}
        backend = labels.get(preset.label)
        if backend is None:
            continue
        (ages if labels.get(KIND_LABEL) == "age" else values)[str(backend)] = _number(sample)
    return {backend: Reading(value, ages.get(backend)) for backend, value in values.items()}


def parse_single(result: Sequence[Mapping[str, Any]]) -> Reading:
    """The Reading of a raw PromQL answer: exactly one series, or a failure saying what came back."""
    if not result:
        return Reading()
    if len(result) > 1:
        shown = ", ".join(str(dict(s.get("metric") or {})) for s in result[:3])
        return Reading(failure=Reason.SEVERAL_SERIES,
                       detail=f"{len(result)} series for one target (expected one): {shown}")
    return Reading(_number(result[0]))
