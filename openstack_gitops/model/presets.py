"""Size presets as data: how many replicas and how much CPU/memory each component gets.

Components are grouped into a few classes (API, worker, clustered database, ...) so a size is a
small table of numbers per class rather than a number per Deployment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from .tree import tree_of


class Size(StrEnum):
    """Cloud size: small (lab, ~10 computes), medium (~50-300), large (300+)."""

    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"


class ComponentClass(StrEnum):
    """Components that scale alike."""

    API = "api"
    WORKER = "worker"
    CLUSTER = "cluster"  # quorum-based: Galera, RabbitMQ, OVN raft; 1 or an odd number
    CACHE = "cache"
    AGENT = "agent"  # DaemonSet pods, one per node: resources only


REPLICA_COMPONENTS: Mapping[str, Mapping[str, ComponentClass]] = MappingProxyType(
    {
        "mariadb": {"server": ComponentClass.CLUSTER},
        "rabbitmq": {"server": ComponentClass.CLUSTER},
        "memcached": {"server": ComponentClass.CACHE},
        "keystone": {"api": ComponentClass.API},
        "glance": {"api": ComponentClass.API},
        "placement": {"api": ComponentClass.API},
        "nova": {
            "osapi": ComponentClass.API,
            "api_metadata": ComponentClass.API,
            "novncproxy": ComponentClass.API,
            "conductor": ComponentClass.WORKER,
            "scheduler": ComponentClass.WORKER,
        },
        "neutron": {"server": ComponentClass.API, "rpc_server": ComponentClass.WORKER},
        "ovn": {
            "ovn_ovsdb_nb": ComponentClass.CLUSTER,
            "ovn_ovsdb_sb": ComponentClass.CLUSTER,
            "ovn_northd": ComponentClass.WORKER,
        },
        "cinder": {
            "api": ComponentClass.API,
            "scheduler": ComponentClass.WORKER,
            "volume": ComponentClass.WORKER,
            "backup": ComponentClass.WORKER,
        },
        "heat": {"api": ComponentClass.API, "cfn": ComponentClass.API, "engine": ComponentClass.WORKER},
        "horizon": {"server": ComponentClass.API},
    }
)
"""chart -> `pod.replicas.<component>` -> class."""

RESOURCE_KEYS: Mapping[str, Mapping[str, str]] = MappingProxyType({"nova": {"osapi": "api"}})
"""chart -> replica component -> its `pod.resources` key, where OSH names the two differently
(nova-api-osapi reads `pod.replicas.osapi` but `pod.resources.api`). The keys are the ones the
templates read, whatever values.yaml declares: memcached's StatefulSet reads `pod.resources.server`
(values.yaml declares an unread `memcached`), cinder-backup `backup`, neutron-rpc-server
`rpc_server` (both undeclared); tests/golden/test_values_contract.py renders all three."""

AGENT_COMPONENTS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "nova": ("compute",),
        "libvirt": ("libvirt",),
        "neutron": (
            "agent.dhcp",
            "agent.l3",
            "agent.metadata",
            "agent.ovs",
            "agent.ovn_metadata",
            "netns_cleanup_cron",
        ),
        "openvswitch": ("ovs.db", "ovs.vswitchd"),
        "ovn": ("ovn_controller",),
    }
)
"""chart -> DaemonSet components (dotted paths) under `pod.resources`: one pod per node, no count."""

_API, _WORKER, _CLUSTER, _CACHE = (
    ComponentClass.API,
    ComponentClass.WORKER,
    ComponentClass.CLUSTER,
    ComponentClass.CACHE,
)

REPLICAS: Mapping[Size, Mapping[ComponentClass, int]] = MappingProxyType(
    {
        Size.SMALL: {_API: 1, _WORKER: 1, _CLUSTER: 1, _CACHE: 1},
        Size.MEDIUM: {_API: 2, _WORKER: 2, _CLUSTER: 3, _CACHE: 2},
        Size.LARGE: {_API: 3, _WORKER: 3, _CLUSTER: 3, _CACHE: 3},
    }
)
"""Clustered components stay at 1 or 3: Galera, RabbitMQ and OVN raft need an odd quorum."""


@dataclass(frozen=True)
class Resources:
    """Requests and limits of one container, in Kubernetes quantity strings."""

    cpu_request: str
    memory_request: str
    cpu_limit: str
    memory_limit: str

    def values(self) -> dict[str, dict[str, str]]:
        """The `{requests, limits}` mapping the charts read."""
        return {
            "requests": {"cpu": self.cpu_request, "memory": self.memory_request},
            "limits": {"cpu": self.cpu_limit, "memory": self.memory_limit},
        }


RESOURCES: Mapping[Size, Mapping[ComponentClass, Resources]] = MappingProxyType(
    {
        Size.SMALL: {
            ComponentClass.API: Resources("100m", "256Mi", "1", "1Gi"),
            ComponentClass.WORKER: Resources("100m", "256Mi", "1", "1Gi"),
            ComponentClass.CLUSTER: Resources("250m", "512Mi", "2", "2Gi"),
            ComponentClass.CACHE: Resources("50m", "128Mi", "500m", "512Mi"),
            ComponentClass.AGENT: Resources("100m", "256Mi", "2", "2Gi"),
        },
        Size.MEDIUM: {
            ComponentClass.API: Resources("250m", "512Mi", "2", "2Gi"),
            ComponentClass.WORKER: Resources("250m", "512Mi", "2", "2Gi"),
            ComponentClass.CLUSTER: Resources("1", "2Gi", "4", "8Gi"),
            ComponentClass.CACHE: Resources("100m", "512Mi", "1", "2Gi"),
            ComponentClass.AGENT: Resources("250m", "512Mi", "4", "4Gi"),
        },
        Size.LARGE: {
            ComponentClass.API: Resources("500m", "1Gi", "4", "4Gi"),
            ComponentClass.WORKER: Resources("500m", "1Gi", "4", "4Gi"),
            ComponentClass.CLUSTER: Resources("2", "4Gi", "8", "16Gi"),
            ComponentClass.CACHE: Resources("250m", "1Gi", "2", "4Gi"),
            ComponentClass.AGENT: Resources("500m", "1Gi", "8", "8Gi"),
        },
    }
)

VOLUMES: Mapping[str, Mapping[Size, str]] = MappingProxyType(
    {"mariadb": {Size.SMALL: "5Gi", Size.MEDIUM: "50Gi", Size.LARGE: "200Gi"}}
)
"""chart -> size of its persistent volume (`volume.size`)."""


def replicas(size: Size, chart: str) -> dict[str, int]:
    """`pod.replicas` of `chart` at `size` (empty for charts of DaemonSets only)."""
    table = REPLICAS[size]
    return {component: table[klass] for component, klass in sorted(REPLICA_COMPONENTS.get(chart, {}).items())}


def resources(size: Size, chart: str) -> dict[str, Any]:
    """`pod.resources` of `chart` at `size` (replicated and DaemonSet components), switched on."""
    table = RESOURCES[size]
    leaves: list[tuple[str | tuple[str, ...], Any]] = [(("enabled",), True)]
    keys = RESOURCE_KEYS.get(chart, {})
    leaves += [((keys.get(c, c),), table[k].values()) for c, k in REPLICA_COMPONENTS.get(chart, {}).items()]
    leaves += [(c, table[ComponentClass.AGENT].values()) for c in AGENT_COMPONENTS.get(chart, ())]
    return tree_of(leaves)


def volume(size: Size, chart: str) -> dict[str, Any]:
    """`volume` of `chart` at `size`; empty for charts without persistent storage."""
    sizes = VOLUMES.get(chart)
    return {"volume": {"enabled": True, "size": sizes[size]}} if sizes else {}
