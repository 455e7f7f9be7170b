"""Observe: what the cluster and Prometheus say, read with as few requests as the answer allows.

The cluster: one LIST of OpenStackDeployments (the policies they publish, the global pause, the
status the last leader left) and one LIST of Deployments per cloud namespace (asked-for and ready
replicas, the per-target pause). Prometheus: one query per metric preset in use, covering every
target of that preset, plus one per raw-PromQL target (:mod:`autoscaler.presets`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from autoscaler import presets
from autoscaler.decide import Current, Reading, Reason, ScaleEvent
from autoscaler.edges.prometheus import PrometheusError
from openstack_gitops import api
from openstack_gitops.kube.client import ApiError, Cluster
from openstack_gitops.kube.objects import Manifest
from openstack_gitops.model.spec import AutoscalingPolicy, MetricPreset

STATUS_SECTION = api.AUTOSCALER_STATUS  # status.autoscaler of the OpenStackDeployment


@dataclass(frozen=True)
class Target:
    """One autoscaled Deployment of one cloud, with the policy its cloud publishes."""

    cloud: str
    namespace: str
    policy: AutoscalingPolicy

    @property
    def deployment(self) -> str:
        return self.policy.deployment

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.policy.deployment}"

    @property
    def backend(self) -> str:
        return presets.backend_of(self.policy)


@dataclass(frozen=True)
class TargetState:
    """A target as the cluster has it now; ``current`` is None when its Deployment does not exist."""

    target: Target
    current: Current | None
    paused: bool
    last_scale: ScaleEvent | None = None  # what the status says was the last scale (seeds a new leader)


@dataclass(frozen=True)
class Cloud:
    name: str
    namespace: str
    paused: bool  # the OpenStackDeployment is annotated paused
    targets: tuple[TargetState, ...]
    status: Mapping[str, Any] = field(default_factory=dict)  # status.autoscaler as last written


def _paused(obj: Manifest) -> bool:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return bool(annotations.get(api.AUTOSCALING_ANNOTATION) == api.AUTOSCALING_PAUSED)


def _last_scale(section: Mapping[str, Any], deployment: str) -> ScaleEvent | None:
    raw = ((section.get("targets") or {}).get(deployment) or {}).get("lastScale") or {}
    try:
        return ScaleEvent(float(raw["at"]), int(raw["from"]), int(raw["to"]))
    except (KeyError, TypeError, ValueError):
        return None


def cloud_of(resource: Manifest, deployments: Sequence[Manifest]) -> Cloud:
    """A cloud's targets from its resource and the Deployments of its namespace. Pure."""
    meta = resource.get("metadata") or {}
    namespace = str(meta.get("namespace") or "")
    section = (resource.get("status") or {}).get(STATUS_SECTION) or {}
    by_name = {(d.get("metadata") or {}).get("name"): d for d in deployments}
    states = []
    for policy in api.autoscaling_policies(resource.get("spec") or {}):
        target = Target(str(meta.get("name") or ""), namespace, policy)
        live = by_name.get(policy.deployment)
        current = None
        if live is not None:
            spec, status = live.get("spec") or {}, live.get("status") or {}
            replicas = spec.get("replicas")
            current = Current(1 if replicas is None else int(replicas), int(status.get("readyReplicas") or 0))
        states.append(TargetState(target, current, live is not None and _paused(live),
                                  _last_scale(section, policy.deployment)))
    return Cloud(str(meta.get("name") or ""), namespace, _paused(resource), tuple(states), section)


def read_clouds(cluster: Cluster, namespace: str | None) -> list[Cloud]:
    """Every cloud with autoscaling policies in ``namespace`` (None: all namespaces); raises ApiError.
    No CRD yet (the reconciler installs it) means no cloud yet."""
    try:
        resources = cluster.list(api.API_VERSION, api.KIND, label_selector="", namespace=namespace)
    except ApiError as exc:
        if exc.kind_not_served:
            return []
        raise
    clouds = []
    deployments_of: dict[str, list[Manifest]] = {}
    for resource in resources:
        if not (resource.get("spec") or {}).get("autoscaling"):
            continue
        ns = str((resource.get("metadata") or {}).get("namespace") or "")
        if ns not in deployments_of:
            deployments_of[ns] = cluster.list("apps/v1", "Deployment", label_selector="", namespace=ns)
        clouds.append(cloud_of(resource, deployments_of[ns]))
    return clouds


class Reader(Protocol):
    """What observing needs of Prometheus (the edge, or a fake in unit tests)."""

    def query(self, promql: str) -> list[dict[str, Any]]: ...


@dataclass
class Load:
    """This tick's readings by target key, and what reading them cost."""

    readings: dict[str, Reading] = field(default_factory=dict)
    queries: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # by metric preset
    errors: dict[str, str] = field(default_factory=dict)  # metric preset (or target key) -> error


def read_load(reader: Reader, targets: Sequence[Target]) -> Load:
    """One query per preset for all its targets, one per raw-PromQL target; a failure holds only its own."""
    load = Load()
    groups: dict[MetricPreset, list[Target]] = defaultdict(list)
    for target in targets:
        groups[target.policy.metric].append(target)
    for metric, group in sorted(groups.items()):
        if metric is MetricPreset.PROMQL:
            for target in group:
                load.queries[metric.value] += 1
                try:
                    load.readings[target.key] = presets.parse_single(reader.query(presets.promql_query(target.policy)))
                except PrometheusError as exc:
                    load.errors[target.key] = str(exc)
                    load.readings[target.key] = Reading(failure=Reason.QUERY_FAILED, detail=str(exc))
            continue
        preset = presets.PRESETS[metric]
        load.queries[metric.value] += 1
        try:
            answer = presets.parse_group(preset, reader.query(presets.group_query(preset, {t.backend for t in group})))
        except PrometheusError as exc:
            load.errors[metric.value] = str(exc)
            for target in group:
                load.readings[target.key] = Reading(failure=Reason.QUERY_FAILED, detail=str(exc))
            continue
        for target in group:
            load.readings[target.key] = answer.get(target.backend, Reading())
    return load
