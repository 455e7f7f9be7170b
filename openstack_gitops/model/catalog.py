"""What OpenStack is made of, as data: services, their charts, dependencies, users and order.

Everything the expansion and the validation need to know about a service lives in these tables,
so adding a service means adding rows, not branches.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class NetworkBackend(StrEnum):
    """The Neutron ML2 backend; it decides which switch chart runs next to neutron."""

    OPENVSWITCH = "openvswitch"
    OVN = "ovn"


class NodeRole(StrEnum):
    """Which of the spec's `nodeRoles` selects the nodes a component runs on."""

    CONTROL_PLANE = "controlPlane"
    COMPUTE = "compute"
    NETWORK = "network"


@dataclass(frozen=True)
class ServiceInfo:
    """One entry of the spec's `services` list."""

    name: str
    charts: tuple[str, ...]
    depends_on: tuple[str, ...]
    infra: bool = False
    backend_chart: bool = False  # also runs the switch chart of the network backend


INFRA_DEPS = ("mariadb", "rabbitmq", "memcached")

SERVICES: Mapping[str, ServiceInfo] = MappingProxyType(
    {
        s.name: s
        for s in (
            ServiceInfo("mariadb", ("mariadb",), (), infra=True),
            ServiceInfo("rabbitmq", ("rabbitmq",), (), infra=True),
            ServiceInfo("memcached", ("memcached",), (), infra=True),
            ServiceInfo("identity", ("keystone",), INFRA_DEPS),
            ServiceInfo("image", ("glance",), (*INFRA_DEPS, "identity")),
            ServiceInfo("placement", ("placement",), (*INFRA_DEPS, "identity")),
            ServiceInfo("networking", ("neutron",), (*INFRA_DEPS, "identity"), backend_chart=True),
            ServiceInfo("compute", ("nova", "libvirt"), (*INFRA_DEPS, "identity", "image", "placement", "networking")),
            ServiceInfo("block-storage", ("cinder",), (*INFRA_DEPS, "identity")),
            ServiceInfo("orchestration", ("heat",), (*INFRA_DEPS, "identity")),
            ServiceInfo("dashboard", ("horizon",), (*INFRA_DEPS, "identity")),
        )
    }
)
"""Services in the order operators read them (infra first)."""

BACKEND_CHARTS: Mapping[NetworkBackend, str] = MappingProxyType(
    {NetworkBackend.OPENVSWITCH: "openvswitch", NetworkBackend.OVN: "ovn"}
)

APPLY_ORDER: tuple[str, ...] = (
    "rabbitmq",
    "mariadb",
    "memcached",
    "keystone",
    "heat",
    "glance",
    "cinder",
    "openvswitch",
    "ovn",
    "libvirt",
    "placement",
    "nova",
    "neutron",
    "horizon",
)
"""Chart install order documented by OpenStack-Helm (pods also wait for their dependencies)."""

UPGRADE_ORDER: tuple[str, ...] = (
    "mariadb",
    "rabbitmq",
    "memcached",
    "identity",
    "placement",
    "image",
    "networking",
    "compute",
    "block-storage",
    "orchestration",
    "dashboard",
)
"""Service upgrade order, one at a time: infra first, then the order the Mirantis controller uses."""


@dataclass(frozen=True)
class ApiEndpoint:
    """An OpenStack API as the charts address it under `endpoints.<service_type>`."""

    service_type: str
    name: str  # catalog name, `endpoints.<type>.name`
    host: str  # Kubernetes Service name (`hosts.default`)
    public_host: str  # first label of the public FQDN: `<public_host>.<publicDomain>`
    path: str
    port_name: str  # key under `port`: api, metadata, novnc_proxy, web
    port: int  # `port.<port_name>.default`
    internal_host: str | None = None  # `hosts.internal`, when it differs from the default
    internal_port: int | None = None  # `port.<port_name>.internal`


API_ENDPOINTS: tuple[ApiEndpoint, ...] = (
    ApiEndpoint("identity", "keystone", "keystone", "keystone", "/v3", "api", 80, "keystone-api", 5000),
    ApiEndpoint("image", "glance", "glance-api", "glance", "/", "api", 9292),
    ApiEndpoint("placement", "placement", "placement-api", "placement", "/", "api", 8778),
    ApiEndpoint("compute", "nova", "nova-api", "nova", "/v2.1/%(tenant_id)s", "api", 8774),
    ApiEndpoint("compute_metadata", "nova", "nova-metadata", "metadata", "/", "metadata", 8775),
    ApiEndpoint("compute_novnc_proxy", "nova", "nova-novncproxy", "novncproxy", "/vnc_auto.html", "novnc_proxy", 6080),
    ApiEndpoint("network", "neutron", "neutron-server", "neutron", "/", "api", 9696),
    ApiEndpoint("volumev3", "cinderv3", "cinder-api", "cinder", "/v3/%(tenant_id)s", "api", 8776),
    ApiEndpoint("orchestration", "heat", "heat-api", "heat", "/v1/%(project_id)s", "api", 8004),
    ApiEndpoint("dashboard", "horizon", "horizon-int", "horizon", "/", "web", 80),
)
"""Every OpenStack chart receives all of these, so a chart's values never depend on which other
services happen to be enabled (toggling one service must not roll every other one)."""


@dataclass(frozen=True)
class ChartInfo:
    """What one chart needs from the shared world: databases, vhost, service users, node roles."""

    name: str
    service: str
    databases: Mapping[str, str]  # endpoints key (oslo_db, oslo_db_api, ...) -> database name
    db_user: str | None = None
    vhost: str | None = None  # RabbitMQ vhost and user
    keystone_users: tuple[str, ...] = ()  # service users it authenticates as (own user first)
    conf_section: str | None = None  # `conf.<section>`: the INI file the service reads
    region_keys: tuple[tuple[str, ...], ...] = ()  # conf paths that carry the region name
    labels: Mapping[str, NodeRole] = field(default_factory=lambda: _EMPTY)  # label component (dotted) -> role
    daemonsets: tuple[str, ...] = ()  # components under pod.lifecycle.upgrades.daemonsets
    credential_paths: Mapping[str, str] = field(default_factory=lambda: _EMPTY)  # other credential -> values path
    account_names: Mapping[str, str] = field(default_factory=lambda: _EMPTY)  # values path -> fixed user name

    @property
    def openstack(self) -> bool:
        """True for OpenStack API service charts (they read the shared endpoint groups)."""
        return self.conf_section is not None


_CP = NodeRole.CONTROL_PLANE
DB_ADMIN_USER = "root"
MQ_ADMIN_USER = "rabbitmq"
KEYSTONE_ADMIN_USER = "admin"
AUTHTOKEN_REGION = ("keystone_authtoken", "region_name")


def _paths(mapping: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping))


def _labels(**roles: NodeRole) -> Mapping[str, NodeRole]:
    return MappingProxyType({k.replace("__", "."): v for k, v in roles.items()})


def _chart(
    name: str,
    service: str,
    *,
    dbs: Iterable[tuple[str, str]] = (),
    messaging: bool = True,
    users: tuple[str, ...] = (),
    region_keys: tuple[tuple[str, ...], ...] = (AUTHTOKEN_REGION,),
    labels: Mapping[str, NodeRole],
    daemonsets: tuple[str, ...] = (),
    extra: Mapping[str, str] = _EMPTY,
) -> ChartInfo:
    """An OpenStack service chart: DB user, vhost and service user are all named after the chart."""
    databases = dict(dbs) or {"oslo_db": name}
    return ChartInfo(
        name=name,
        service=service,
        databases=MappingProxyType(databases),
        db_user=name,
        vhost=name if messaging else None,
        keystone_users=users or (name,),
        conf_section=name,
        region_keys=region_keys,
        labels=labels,
        daemonsets=daemonsets,
        credential_paths=extra,
    )


CHARTS: Mapping[str, ChartInfo] = MappingProxyType(
    {
        c.name: c
        for c in (
            ChartInfo(
                "mariadb",
                "mariadb",
                MappingProxyType({}),
                labels=_labels(server=_CP, prometheus_mysql_exporter=_CP, job=_CP),
                credential_paths=_paths({"oslo_db.admin": "endpoints.oslo_db.auth.admin.password"}),
                account_names=_paths({"endpoints.oslo_db.auth.admin.username": DB_ADMIN_USER}),
            ),
            ChartInfo(
                "rabbitmq",
                "rabbitmq",
                MappingProxyType({}),
                labels=_labels(server=_CP, prometheus_rabbitmq_exporter=_CP, jobs=_CP),
                credential_paths=_paths(
                    {
                        "oslo_messaging.admin": "endpoints.oslo_messaging.auth.user.password",
                        "oslo_messaging.erlang_cookie": "endpoints.oslo_messaging.auth.erlang_cookie",
                    }
                ),
                account_names=_paths({"endpoints.oslo_messaging.auth.user.username": MQ_ADMIN_USER}),
            ),
            ChartInfo("memcached", "memcached", MappingProxyType({}), labels=_labels(server=_CP)),
            _chart("keystone", "identity", users=("admin",), region_keys=(), labels=_labels(api=_CP, job=_CP)),
            _chart("glance", "image", labels=_labels(api=_CP, job=_CP)),
            _chart("placement", "placement", messaging=False, labels=_labels(api=_CP, job=_CP)),
            _chart(
                "nova",
                "compute",
                dbs=(("oslo_db", "nova"), ("oslo_db_api", "nova_api"), ("oslo_db_cell0", "nova_cell0")),
                users=("nova", "neutron", "placement", "cinder"),
                region_keys=(
                    AUTHTOKEN_REGION,
                    ("placement", "region_name"),
                    ("neutron", "region_name"),
                    ("cinder", "os_region_name"),
                ),
                labels=_labels(
                    agent__compute=NodeRole.COMPUTE,
                    api_metadata=_CP,
                    conductor=_CP,
                    job=_CP,
                    novncproxy=_CP,
                    osapi=_CP,
                    scheduler=_CP,
                ),
                daemonsets=("compute",),
            ),
            ChartInfo(
                "libvirt",
                "compute",
                MappingProxyType({}),
                labels=_labels(agent__libvirt=NodeRole.COMPUTE),
                daemonsets=("libvirt",),
            ),
            _chart(
                "neutron",
                "networking",
                users=("neutron", "nova", "placement"),
                region_keys=(AUTHTOKEN_REGION, ("nova", "region_name"), ("placement", "region_name")),
                labels=_labels(
                    agent__dhcp=NodeRole.NETWORK,
                    agent__l3=NodeRole.NETWORK,
                    agent__metadata=NodeRole.NETWORK,
                    ovs=NodeRole.NETWORK,  # also schedules the OVN metadata agent (OSH has no labels.ovn_metadata)
                    job=_CP,
                    server=_CP,
                    rpc_server=_CP,
                ),
                daemonsets=("dhcp_agent", "l3_agent", "metadata_agent", "ovs_agent", "ovn_metadata_agent"),
            ),
            ChartInfo(
                "openvswitch",
                "networking",
                MappingProxyType({}),
                labels=_labels(ovs=NodeRole.NETWORK),
                daemonsets=("ovs",),
            ),
            ChartInfo(
                "ovn",
                "networking",
                MappingProxyType({}),
                labels=_labels(
                    ovn_controller=NodeRole.NETWORK,
                    ovn_ovsdb_nb=_CP,
                    ovn_ovsdb_sb=_CP,
                    ovn_northd=_CP,
                ),
                daemonsets=("ovn_controller",),
            ),
            _chart("cinder", "block-storage", labels=_labels(api=_CP, backup=_CP, job=_CP, scheduler=_CP, volume=_CP)),
            _chart(
                "heat",
                "orchestration",
                users=("heat", "heat_trustee", "heat_stack_user"),
                labels=_labels(api=_CP, cfn=_CP, engine=_CP, job=_CP),
            ),
            _chart(
                "horizon",
                "dashboard",
                messaging=False,
                users=("admin",),
                region_keys=(),
                labels=_labels(dashboard=_CP, job=_CP),
                extra=_paths({"horizon.secret_key": "conf.horizon.local_settings.config.horizon_secret_key"}),
            ),
        )
    }
)


@dataclass(frozen=True)
class AutoscalableApi:
    """An API Deployment the autoscaler may scale, and the chart value holding its replicas."""

    deployment: str
    service: str
    chart: str
    replicas_component: str  # pod.replicas.<component>


AUTOSCALABLE: Mapping[str, AutoscalableApi] = MappingProxyType(
    {
        a.deployment: a
        for a in (
            AutoscalableApi("keystone-api", "identity", "keystone", "api"),
            AutoscalableApi("glance-api", "image", "glance", "api"),
            AutoscalableApi("placement-api", "placement", "placement", "api"),
            AutoscalableApi("nova-api-osapi", "compute", "nova", "osapi"),
            AutoscalableApi("neutron-server", "networking", "neutron", "server"),
            AutoscalableApi("cinder-api", "block-storage", "cinder", "api"),
            AutoscalableApi("heat-api", "orchestration", "heat", "api"),
            AutoscalableApi("horizon", "dashboard", "horizon", "server"),
        )
    }
)

ALL_CHARTS: tuple[str, ...] = APPLY_ORDER


def service_charts(service: str, backend: NetworkBackend) -> tuple[str, ...]:
    """Charts that implement `service`, with the backend's switch chart for networking."""
    info = SERVICES[service]
    if info.backend_chart:
        return (*info.charts, BACKEND_CHARTS[backend])
    return info.charts


def charts_for(services: Iterable[str], backend: NetworkBackend) -> tuple[str, ...]:
    """Charts of the given services, in apply order."""
    wanted = {chart for s in services for chart in service_charts(s, backend)}
    return tuple(c for c in APPLY_ORDER if c in wanted)


def upgrade_order(services: Iterable[str]) -> tuple[str, ...]:
    """The given services in the order they are upgraded, one at a time."""
    wanted = set(services)
    return tuple(s for s in UPGRADE_ORDER if s in wanted)


def chart_credentials(chart: str) -> tuple[str, ...]:
    """Stable names of every credential the chart's values carry, sorted."""
    info = CHARTS[chart]
    names = set(info.credential_paths)
    if info.db_user:
        names |= {"oslo_db.admin", f"oslo_db.{info.db_user}"}
    if info.vhost:
        names |= {"oslo_messaging.admin", f"oslo_messaging.{info.vhost}"}
    if info.openstack:
        names |= {"identity.admin", "oslo_cache.memcache_secret_key"}
        names |= {f"identity.{user}" for user in info.keystone_users}
    return tuple(sorted(names))


_OVS_AGENTS = ("daemonset_dhcp_agent", "daemonset_l3_agent", "daemonset_metadata_agent", "daemonset_ovs_agent")

BACKEND_READERS: tuple[str, ...] = ("libvirt", "neutron", "nova")
"""Charts whose `network.backend` selects the backend: neutron its agents, nova-compute and libvirt
the vswitch agent pod they wait for on their node (`dependencies.dynamic.targeted.<backend>`)."""

_BACKEND_SETTINGS: Mapping[NetworkBackend, Mapping[str, Mapping[str, Any]]] = MappingProxyType(
    {
        NetworkBackend.OPENVSWITCH: {
            "neutron": {
                "manifests": {**{m: True for m in _OVS_AGENTS}, "daemonset_ovn_metadata_agent": False},
                "conf": {
                    "neutron": {"DEFAULT": {"core_plugin": "ml2", "service_plugins": "router"}},
                    "plugins": {
                        "ml2_conf": {
                            "ml2": {
                                "mechanism_drivers": "openvswitch,l2population",
                                "type_drivers": "flat,vlan,vxlan",
                                "tenant_network_types": "vxlan",
                            }
                        }
                    },
                },
            },
        },
        NetworkBackend.OVN: {
            "neutron": {
                "manifests": {**{m: False for m in _OVS_AGENTS}, "daemonset_ovn_metadata_agent": True},
                "conf": {
                    "neutron": {"DEFAULT": {"core_plugin": "ml2", "service_plugins": "ovn-router"}},
                    "plugins": {
                        "ml2_conf": {
                            "ml2": {
                                "mechanism_drivers": "ovn",
                                "type_drivers": "flat,vlan,geneve",
                                "tenant_network_types": "geneve",
                            }
                        }
                    },
                },
            },
        },
    }
)
"""What else the backend switches, beyond `network.backend` (the chart does not derive these)."""

BACKEND_VALUES: Mapping[NetworkBackend, Mapping[str, Mapping[str, Any]]] = MappingProxyType(
    {
        backend: {
            chart: {"network": {"backend": [backend.value]}, **_BACKEND_SETTINGS[backend].get(chart, {})}
            for chart in BACKEND_READERS
        }
        for backend in NetworkBackend
    }
)
"""Values the network backend switches in the charts that care (CONTRACT.md "Backend switch")."""
