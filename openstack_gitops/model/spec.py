"""The operator's spec as frozen dataclasses, built from a schema-valid document.

Defaults for omitted fields are one table (`DEFAULTS`), keyed by the path they fill, so the
README, the template and the code agree on a single source of truth.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from .catalog import AUTOSCALABLE, SERVICES, AutoscalableApi, NetworkBackend, NodeRole, charts_for
from .presets import Size
from .source import Document, Path, SourceMap
from .tree import merge_all

__all__ = [
    "DEFAULTS",
    "AutoscalingPolicy",
    "ChartSource",
    "ChartSourceType",
    "HealthWatcherPolicy",
    "MetricPreset",
    "NetworkBackend",
    "NodeRoles",
    "NodeSelector",
    "ServiceSpec",
    "Size",
    "Spec",
    "WatchedWorkloadPolicy",
    "autoscaled",
    "build",
    "watcher_document",
    "watcher_policy",
]


DEFAULT_SCALE_DOWN_STABILIZATION_SECONDS = 300  # HPA's default window


class ChartSourceType(StrEnum):
    """Where the charts come from."""

    DIRECTORY = "directory"  # a folder of the config repo
    HELM = "helm"  # an http(s) Helm repository
    OCI = "oci"  # an OCI registry


@dataclass(frozen=True)
class ChartSource:
    """Chart location: a path relative to the config repo root, or a repository URL."""

    type: ChartSourceType
    location: str


@dataclass(frozen=True)
class NodeSelector:
    """One node label; OpenStack-Helm charts select nodes by exactly one key/value pair."""

    key: str
    value: str


@dataclass(frozen=True)
class NodeRoles:
    """Which nodes run the control plane, the hypervisors and the network agents."""

    control_plane: NodeSelector
    compute: NodeSelector
    network: NodeSelector

    def selector(self, role: NodeRole) -> NodeSelector:
        """The label of `role`."""
        return {
            NodeRole.CONTROL_PLANE: self.control_plane,
            NodeRole.COMPUTE: self.compute,
            NodeRole.NETWORK: self.network,
        }[role]


@dataclass(frozen=True)
class ServiceSpec:
    """One service switched on or off."""

    name: str
    enabled: bool


class MetricPreset(StrEnum):
    """Where a target's load is read: a load balancer's exporter metric, or the operator's own PromQL."""

    HAPROXY_SESSIONS = "haproxy-sessions"  # HAProxy's (and haproxy-ingress') built-in exporter
    HAPROXY_QUEUE = "haproxy-queue"
    HAPROXY_REQUEST_RATE = "haproxy-request-rate"
    ENVOY_ACTIVE_REQUESTS = "envoy-active-requests"  # Envoy (Gateway API)
    ENVOY_REQUEST_RATE = "envoy-request-rate"
    NGINX_REQUEST_RATE = "nginx-request-rate"  # ingress-nginx
    PROMQL = "promql"  # `query`, with $backend replaced by the target's backend


@dataclass(frozen=True)
class AutoscalingPolicy:
    """How the autoscaler scales one API Deployment; every default but the bounds and target is the HPA's."""

    deployment: str
    min_replicas: int
    max_replicas: int
    target_per_replica: float  # the metric's value one replica should carry (sessions, requests/s, ...)
    scale_down_stabilization_seconds: int = DEFAULT_SCALE_DOWN_STABILIZATION_SECONDS
    metric: MetricPreset = MetricPreset.HAPROXY_SESSIONS
    query: str = ""  # PromQL when metric is promql
    backend: str = ""  # the load balancer's name for the target; "" means the API's Service name
    tolerance: float = 0.1
    scale_up_stabilization_seconds: int = 0
    scale_up_max_percent: int = 100
    scale_up_max_pods: int = 4
    scale_up_period_seconds: int = 15
    scale_down_max_percent: int = 100
    scale_down_period_seconds: int = 15
    interval_seconds: int = 15
    stale_after_seconds: int = 60

    @property
    def target_sessions_per_replica(self) -> float:
        """The name of the target before presets existed (kept for readers of the old spec)."""
        return self.target_per_replica


@dataclass(frozen=True)
class WatchedWorkloadPolicy:
    """One workload's overrides (by the workload's name, e.g. nova-compute-default).

    None keeps the default workload's value, so an operator states only what differs.
    """

    name: str
    kind: str | None = None  # "DaemonSet" | "StatefulSet"; required for a name that is not a default
    enabled: bool = True  # false: not guarded
    database: bool | None = None  # None: the default's
    quorum: int | None = None
    restart_limit: int | None = None
    crash_loop_grace_seconds: float | None = None
    phase_failed_grace_seconds: float | None = None
    not_ready_grace_seconds: float | None = None
    terminating_grace_seconds: float | None = None


@dataclass(frozen=True)
class HealthWatcherPolicy:
    """Limits of the health watcher's self-healing: restart budgets, the breaker, per-workload overrides."""

    enabled: bool = True
    max_restarts_per_hour: int = 10
    max_restarts_per_node_per_hour: int = 3
    max_restarts_per_workload_per_hour: int = 5
    breaker_percent: int = 50  # more than this % of a workload's pods failed at once opens the breaker
    workloads: tuple[WatchedWorkloadPolicy, ...] = ()  # sorted by name

    def workload(self, name: str) -> WatchedWorkloadPolicy | None:
        """The overrides of workload ``name``, if any."""
        return next((w for w in self.workloads if w.name == name), None)


@dataclass(frozen=True)
class Spec:
    """The whole desired state an operator declared, with defaults filled in."""

    name: str
    release: str
    size: Size
    region: str
    public_domain: str
    namespace: str
    services: tuple[ServiceSpec, ...]
    network_backend: NetworkBackend
    node_roles: NodeRoles
    chart_source: ChartSource
    chart_versions: Mapping[str, str]
    overrides: Mapping[str, Mapping[str, Any]]
    autoscaling: tuple[AutoscalingPolicy, ...]
    health_watcher: HealthWatcherPolicy
    source: SourceMap = field(default=SourceMap("<spec>"), compare=False, repr=False)

    @property
    def enabled_services(self) -> frozenset[str]:
        """Names of the services switched on."""
        return frozenset(s.name for s in self.services if s.enabled)

    @property
    def charts(self) -> tuple[str, ...]:
        """Charts of the enabled services, in apply order."""
        return charts_for(self.enabled_services, self.network_backend)

    def policy(self, deployment: str) -> AutoscalingPolicy | None:
        """The autoscaling policy of `deployment`, if any."""
        return next((p for p in self.autoscaling if p.deployment == deployment), None)


UPSTREAM_HELM_REPOSITORY = "https://tarballs.opendev.org/openstack/openstack-helm"
"""Where OpenStack-Helm publishes its charts: a spec that names no source gets the real charts from there."""

DEFAULTS: Mapping[Path, Any] = MappingProxyType(
    {
        ("region",): "RegionOne",
        ("namespace",): "openstack",
        ("networking", "backend"): "openvswitch",
        ("nodeRoles", "controlPlane"): {"openstack-control-plane": "enabled"},
        ("nodeRoles", "compute"): {"openstack-compute-node": "enabled"},
        ("nodeRoles", "network"): {"openvswitch": "enabled"},
        ("charts", "source"): {"type": "helm", "url": UPSTREAM_HELM_REPOSITORY},
        ("charts", "versions"): {},
        ("overrides",): {},
        ("autoscaling",): {},
        ("healthWatcher", "enabled"): True,
        ("healthWatcher", "maxRestartsPerHour"): 10,
        ("healthWatcher", "maxRestartsPerNodePerHour"): 3,
        ("healthWatcher", "maxRestartsPerWorkloadPerHour"): 5,
        ("healthWatcher", "breakerPercent"): 50,
        ("healthWatcher", "workloads"): {},
    }
)
"""Values of the `spec` fields an operator may omit, keyed by their path under `spec`."""


def build(document: Document) -> Spec:
    """Build the Spec from a document that already passed the schema."""
    doc: Mapping[str, Any] = document.data
    spec: Mapping[str, Any] = doc["spec"]

    def get(*path: str) -> Any:
        node: Any = spec
        for key in path:
            if not isinstance(node, Mapping) or key not in node:
                return DEFAULTS[path]
            node = node[key]
        return node

    source = get("charts", "source")
    source_type = ChartSourceType(source["type"])
    return Spec(
        name=doc["metadata"]["name"],
        release=spec["release"],
        size=Size(spec["size"]),
        region=get("region"),
        public_domain=spec["publicDomain"],
        namespace=get("namespace"),
        services=tuple(ServiceSpec(name, bool(spec["services"][name]["enabled"])) for name in SERVICES),
        network_backend=NetworkBackend(get("networking", "backend")),
        node_roles=NodeRoles(
            control_plane=_selector(get("nodeRoles", "controlPlane")),
            compute=_selector(get("nodeRoles", "compute")),
            network=_selector(get("nodeRoles", "network")),
        ),
        chart_source=ChartSource(
            source_type, source["path"] if source_type is ChartSourceType.DIRECTORY else source["url"]
        ),
        chart_versions=MappingProxyType(dict(sorted(get("charts", "versions").items()))),
        overrides=MappingProxyType(
            {chart: MappingProxyType(merge_all([values])) for chart, values in sorted(get("overrides").items())}
        ),
        autoscaling=tuple(autoscaling_policy(name, policy) for name, policy in sorted(get("autoscaling").items())),
        health_watcher=watcher_policy(spec.get("healthWatcher") or {}),
        source=document.source,
    )


POLICY_FIELDS: Mapping[str, tuple[str, type]] = MappingProxyType(
    {
        "scaleDownStabilizationSeconds": ("scale_down_stabilization_seconds", int),
        "metric": ("metric", MetricPreset),
        "query": ("query", str),
        "backend": ("backend", str),
        "tolerance": ("tolerance", float),
        "scaleUpStabilizationSeconds": ("scale_up_stabilization_seconds", int),
        "scaleUpMaxPercent": ("scale_up_max_percent", int),
        "scaleUpMaxPods": ("scale_up_max_pods", int),
        "scaleUpPeriodSeconds": ("scale_up_period_seconds", int),
        "scaleDownMaxPercent": ("scale_down_max_percent", int),
        "scaleDownPeriodSeconds": ("scale_down_period_seconds", int),
        "intervalSeconds": ("interval_seconds", int),
        "staleAfterSeconds": ("stale_after_seconds", int),
    }
)
"""Optional policy fields: spec name -> (AutoscalingPolicy attribute, type); omitted ones keep the dataclass default."""


def autoscaling_policy(deployment: str, policy: Mapping[str, Any]) -> AutoscalingPolicy:
    """One policy from the spec's words (the spec file, or what the resource publishes)."""
    target = policy.get("targetPerReplica", policy.get("targetSessionsPerReplica", 0.0))
    optional = {attr: kind(policy[name]) for name, (attr, kind) in POLICY_FIELDS.items() if name in policy}
    return AutoscalingPolicy(deployment, int(policy["minReplicas"]), int(policy["maxReplicas"]), float(target),
                             **optional)


def policy_document(policy: AutoscalingPolicy) -> dict[str, Any]:
    """A policy in the spec's words with every default filled in (what the resource publishes)."""
    out: dict[str, Any] = {"minReplicas": policy.min_replicas, "maxReplicas": policy.max_replicas,
                           "targetPerReplica": policy.target_per_replica}
    for name, (attr, _) in POLICY_FIELDS.items():
        value = getattr(policy, attr)
        out[name] = value.value if isinstance(value, StrEnum) else value
    return out


WATCHER_FIELDS: Mapping[str, tuple[str, type]] = MappingProxyType(
    {
        "enabled": ("enabled", bool),
        "maxRestartsPerHour": ("max_restarts_per_hour", int),
        "maxRestartsPerNodePerHour": ("max_restarts_per_node_per_hour", int),
        "maxRestartsPerWorkloadPerHour": ("max_restarts_per_workload_per_hour", int),
        "breakerPercent": ("breaker_percent", int),
    }
)
"""The health watcher's scalar fields: spec name -> (HealthWatcherPolicy attribute, type)."""

WORKLOAD_FIELDS: Mapping[str, tuple[str, type]] = MappingProxyType(
    {
        "kind": ("kind", str),
        "enabled": ("enabled", bool),
        "database": ("database", bool),
        "quorum": ("quorum", int),
        "restartLimit": ("restart_limit", int),
    }
)
"""A watched workload's optional fields beside ``graceSeconds``: spec name -> (attribute, type)."""

GRACE_FIELDS: Mapping[str, str] = MappingProxyType(
    {
        "crashLoop": "crash_loop_grace_seconds",
        "phaseFailed": "phase_failed_grace_seconds",
        "notReady": "not_ready_grace_seconds",
        "terminating": "terminating_grace_seconds",
    }
)
"""``graceSeconds.<rule>`` -> WatchedWorkloadPolicy attribute."""


def watcher_policy(raw: Mapping[str, Any]) -> HealthWatcherPolicy:
    """The health-watcher policy from the spec's words (the spec file, or what the resource publishes).

    Tolerant: an omitted field takes its default from `DEFAULTS`, so a document an older reconciler
    published still reads; unknown keys (a newer one's) are ignored.
    """
    scalars = {attr: kind(raw.get(name, DEFAULTS[("healthWatcher", name)]))
               for name, (attr, kind) in WATCHER_FIELDS.items()}
    workloads = raw.get("workloads") or DEFAULTS[("healthWatcher", "workloads")]
    return HealthWatcherPolicy(**scalars, workloads=tuple(
        watched_workload_policy(name, w or {}) for name, w in sorted(workloads.items())))


def watched_workload_policy(name: str, raw: Mapping[str, Any]) -> WatchedWorkloadPolicy:
    """One workload's overrides from the spec's words; omitted fields stay None (the default's)."""
    values: dict[str, Any] = {attr: kind(raw[key]) for key, (attr, kind) in WORKLOAD_FIELDS.items()
                              if raw.get(key) is not None}
    grace = raw.get("graceSeconds") or {}
    values.update({attr: float(grace[key]) for key, attr in GRACE_FIELDS.items() if grace.get(key) is not None})
    return WatchedWorkloadPolicy(name, **values)


def watcher_document(policy: HealthWatcherPolicy) -> dict[str, Any]:
    """The policy in the spec's words, every scalar filled in and each override as stated (what the
    resource publishes; `watcher_policy` reads it back to an equal policy)."""
    out: dict[str, Any] = {name: getattr(policy, attr) for name, (attr, _) in WATCHER_FIELDS.items()}
    out["workloads"] = {w.name: watched_workload_document(w) for w in policy.workloads}
    return out


def watched_workload_document(policy: WatchedWorkloadPolicy) -> dict[str, Any]:
    """One workload's overrides in the spec's words: only the fields it sets (and ``enabled``)."""
    out: dict[str, Any] = {key: getattr(policy, attr) for key, (attr, _) in WORKLOAD_FIELDS.items()
                           if getattr(policy, attr) is not None}
    grace = {key: getattr(policy, attr) for key, attr in GRACE_FIELDS.items() if getattr(policy, attr) is not None}
    if grace:
        out["graceSeconds"] = grace
    return out


def _selector(labels: Mapping[str, str]) -> NodeSelector:
    ((key, value),) = labels.items()
    return NodeSelector(key, value)


def autoscaled(spec: Spec) -> tuple[tuple[AutoscalingPolicy, AutoscalableApi], ...]:
    """Policies that apply: a known API Deployment of an enabled service."""
    enabled = spec.enabled_services
    return tuple(
        (p, AUTOSCALABLE[p.deployment])
        for p in spec.autoscaling
        if p.deployment in AUTOSCALABLE and AUTOSCALABLE[p.deployment].service in enabled
    )
