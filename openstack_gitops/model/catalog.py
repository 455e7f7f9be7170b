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
    ApiEndpoint("cloudformation", "heat-cfn", "heat-cfn", "cloudformation", "/v1", "api", 8000),
    ApiEndpoint("dashboard", "horizon", "horizon-int", "horizon", "/", "web", 80),
)
"""Every OpenStack chart receives all of these, so a chart's values never depend on which other
services happen to be enabled (toggling one service must not roll every other one)."""


class DbRole(StrEnum):
    """Which connection of its service a database is (nova has three, every other service one)."""

    MAIN = "main"  # `[database] connection` of a one-database service
    API = "api"  # nova `[api_database] connection`
    CELL0 = "cell0"  # nova's cell0: written into the cell mapping, in no config file
    CELL1 = "cell1"  # nova `[database] connection`: the cell the computes live in


@dataclass(frozen=True)
class Database:
    """One database of a chart, as the chart addresses it under `endpoints.<endpoint>`."""

    endpoint: str  # oslo_db, oslo_db_cell0, oslo_db_cell1
    name: str  # the schema: `endpoints.<endpoint>.path` is `/<name>`
    role: DbRole


class Scope(StrEnum):
    """What the expansion says about a Keystone account besides its name and password."""

    ADMIN = "admin"  # the cloud admin: admin project, default domain
    SERVICE = "service"  # a service account: service project and domain, admin and service roles
    CHART = "chart"  # project, domain and role stay the chart's (test users, heat's stack domain admin)


@dataclass(frozen=True)
class Account:
    """A Keystone account as one chart addresses it: `endpoints.identity.auth.<key>`.

    The stored credential is named after the account, so every chart that addresses the same
    account (nova's `neutron` key and neutron's own) carries the same password by construction.
    """

    key: str
    username: str
    scope: Scope = Scope.SERVICE

    @property
    def credential(self) -> str:
        return f"identity.{self.username}"


@dataclass(frozen=True)
class ChartInfo:
    """What one chart needs from the shared world: databases, vhost, accounts, secrets, node roles."""

    name: str
    service: str
    databases: tuple[Database, ...] = ()
    db_user: str | None = None  # the one MariaDB account of all its databases
    vhost: str | None = None  # RabbitMQ vhost and user
    accounts: tuple[Account, ...] = ()  # every key of the chart's `endpoints.identity.auth`
    memcache_secret: bool = False  # reads `endpoints.oslo_cache.auth.memcache_secret_key`
    conf_section: str | None = None  # `conf.<section>`: the INI file the service reads
    region_keys: tuple[tuple[str, ...], ...] = ()  # conf paths that carry the region name
    labels: Mapping[str, NodeRole] = field(default_factory=lambda: _EMPTY)  # label component (dotted) -> role
    daemonsets: tuple[str, ...] = ()  # components under pod.lifecycle.upgrades.daemonsets
    deployment_upgrades: bool = True  # its Deployments read pod.lifecycle.upgrades.deployments
    secrets: Mapping[str, str] = field(default_factory=lambda: _EMPTY)  # other values path -> credential
    account_names: Mapping[str, str] = field(default_factory=lambda: _EMPTY)  # values path -> fixed user name
    settings: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)  # values the product fixes, every spec

    @property
    def openstack(self) -> bool:
        """True for OpenStack API service charts (they read the shared endpoint groups)."""
        return self.conf_section is not None


_CP = NodeRole.CONTROL_PLANE
DB_ADMIN_USER = "root"
MQ_ADMIN_USER = "rabbitmq"
KEYSTONE_ADMIN_USER = "admin"
AUTHTOKEN_REGION = ("keystone_authtoken", "region_name")
ADMIN = Account("admin", KEYSTONE_ADMIN_USER, Scope.ADMIN)
METADATA_SECRET = "neutron.metadata_proxy_shared_secret"  # nova-metadata and neutron's metadata agents


def _paths(mapping: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping))


def _labels(**roles: NodeRole) -> Mapping[str, NodeRole]:
    return MappingProxyType({k.replace("__", "."): v for k, v in roles.items()})


def _test(chart: str) -> Account:
    """The account OSH's Helm test (rally) uses; the chart renders its Secret even though we never run it."""
    return Account("test", f"{chart}-test", Scope.CHART)


def _chart(
    name: str,
    service: str,
    *,
    dbs: tuple[Database, ...] = (),
    messaging: bool = True,
    accounts: tuple[Account, ...] | None = None,
    memcache_secret: bool = True,
    region_keys: tuple[tuple[str, ...], ...] = (AUTHTOKEN_REGION,),
    labels: Mapping[str, NodeRole],
    daemonsets: tuple[str, ...] = (),
    secrets: Mapping[str, str] = _EMPTY,
    settings: Mapping[str, Any] = _EMPTY,
) -> ChartInfo:
    """An OpenStack service chart: DB user, vhost and service account are all named after the chart."""
    return ChartInfo(
        name=name,
        service=service,
        databases=dbs or (Database("oslo_db", name, DbRole.MAIN),),
        db_user=name,
        vhost=name if messaging else None,
        accounts=accounts if accounts is not None else (ADMIN, Account(name, name), _test(name)),
        memcache_secret=memcache_secret,
        conf_section=name,
        region_keys=region_keys,
        labels=labels,
        daemonsets=daemonsets,
        secrets=secrets,
        settings=settings,
    )


NOVA_DATABASES: tuple[Database, ...] = (
    Database("oslo_db", "nova_api", DbRole.API),  # configmap-etc: [api_database]; db-init's first container
    Database("oslo_db_cell0", "nova_cell0", DbRole.CELL0),  # secret nova-db-cell0-user: db-init, db-sync's map_cell0
    Database("oslo_db_cell1", "nova", DbRole.CELL1),  # configmap-etc: [database]; db-init's third container
)
"""The real nova chart's three connections, all as the one `nova` MariaDB account. The schema names
are the ones every nova cloud had before (`nova` holds cell1), not the chart's defaults, in which
`oslo_db` (the API database) is `/nova`."""

CHARTS: Mapping[str, ChartInfo] = MappingProxyType(
    {
        c.name: c
        for c in (
            ChartInfo(
                "mariadb",
                "mariadb",
                labels=_labels(server=_CP, prometheus_mysql_exporter=_CP, job=_CP, controller=_CP, db_controller=_CP),
                secrets=_paths(
                    {
                        "endpoints.oslo_db.auth.admin.password": "oslo_db.admin",
                        "endpoints.oslo_db.auth.audit.password": "oslo_db.audit",
                        "endpoints.oslo_db.auth.exporter.password": "oslo_db.exporter",  # Prometheus exporter
                        # Galera's SST user (sst@127.0.0.1): also written into the mariadb-etc ConfigMap
                        # (wsrep_sst_auth), the one ConfigMap option policy.CONFIG_EXCEPTIONS allows
                        "endpoints.oslo_db.auth.sst.password": "oslo_db.sst",
                    }
                ),
                account_names=_paths({"endpoints.oslo_db.auth.admin.username": DB_ADMIN_USER}),
            ),
            ChartInfo(
                "rabbitmq",
                "rabbitmq",
                # rabbitmq-cluster-wait takes its node label's key from labels.jobs but its value from
                # labels.test, so both are set (the chart's test Pod reads labels.test too)
                labels=_labels(server=_CP, jobs=_CP, test=_CP),
                secrets=_paths(
                    {
                        "endpoints.oslo_messaging.auth.user.password": "oslo_messaging.admin",
                        "endpoints.oslo_messaging.auth.guest.password": "oslo_messaging.guest",
                        "endpoints.oslo_messaging.auth.erlang_cookie": "oslo_messaging.erlang_cookie",
                    }
                ),
                account_names=_paths({"endpoints.oslo_messaging.auth.user.username": MQ_ADMIN_USER}),
            ),
            ChartInfo("memcached", "memcached", labels=_labels(server=_CP)),
            _chart(
                "keystone",
                "identity",
                accounts=(ADMIN, _test("keystone")),
                memcache_secret=False,
                region_keys=(),
                labels=_labels(api=_CP, job=_CP),
            ),
            _chart(
                "glance",
                "image",
                labels=_labels(api=_CP, job=_CP),
                # Images on the PersistentVolumeClaim glance-images (the chart renders it and glance-tmp,
                # mounts both in glance-api and stores with glance's `file` backend): the chart's
                # default, swift, needs an object store this cloud does not run.
                settings=MappingProxyType({"storage": "pvc"}),
                # Only read with storage: swift (an operator's override): glance-storage-init sets it
                # as the service account's Temp-URL key (SWIFT_TMPURL_KEY, policy.ENV_EXCEPTIONS).
                secrets=_paths({"endpoints.object_store.auth.glance.tmpurlkey": "glance.swift_tmpurl_key"}),
            ),
            _chart(
                "placement",
                "placement",
                messaging=False,
                accounts=(ADMIN, Account("placement", "placement")),
                labels=_labels(api=_CP, job=_CP),
            ),
            _chart(
                "nova",
                "compute",
                dbs=NOVA_DATABASES,
                accounts=(
                    ADMIN,
                    Account("nova", "nova"),
                    Account("service", "nova_service_user"),  # [service_user]: service tokens to other APIs
                    Account("neutron", "neutron"),
                    Account("placement", "placement"),
                    Account("cinder", "cinder"),
                    Account("ironic", "ironic"),  # unused without ironic; its Secret is rendered anyway
                    _test("nova"),
                ),
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
                secrets=_paths({"conf.nova.neutron.metadata_proxy_shared_secret": METADATA_SECRET}),
            ),
            ChartInfo(
                "libvirt",
                "compute",
                labels=_labels(agent__libvirt=NodeRole.COMPUTE),
                daemonsets=("libvirt",),
            ),
            _chart(
                "neutron",
                "networking",
                accounts=(
                    ADMIN,
                    Account("neutron", "neutron"),
                    Account("nova", "nova"),
                    Account("placement", "placement"),
                    Account("designate", "designate"),  # unused without designate; its Secret is rendered anyway
                    Account("ironic", "ironic"),  # unused without ironic; its Secret is rendered anyway
                    _test("neutron"),
                ),
                region_keys=(AUTHTOKEN_REGION, ("nova", "region_name"), ("placement", "region_name")),
                labels=_labels(
                    agent__dhcp=NodeRole.NETWORK,
                    agent__l3=NodeRole.NETWORK,
                    agent__metadata=NodeRole.NETWORK,
                    netns_cleanup_cron=NodeRole.NETWORK,  # removes namespaces the agents above leave behind
                    ovs=NodeRole.NETWORK,  # also schedules the OVN metadata agent (OSH has no labels.ovn_metadata)
                    job=_CP,
                    server=_CP,
                    rpc_server=_CP,
                ),
                daemonsets=(
                    "dhcp_agent",
                    "l3_agent",
                    "metadata_agent",
                    "ovs_agent",
                    "ovn_metadata_agent",
                    "netns_cleanup_cron",
                ),
                secrets=_paths(
                    {
                        "conf.metadata_agent.DEFAULT.metadata_proxy_shared_secret": METADATA_SECRET,
                        "conf.ovn_metadata_agent.DEFAULT.metadata_proxy_shared_secret": METADATA_SECRET,
                        "conf.ovn_agent.DEFAULT.metadata_proxy_shared_secret": METADATA_SECRET,
                    }
                ),
            ),
            ChartInfo(
                "openvswitch",
                "networking",
                labels=_labels(ovs=NodeRole.NETWORK),
                daemonsets=("ovs",),
            ),
            ChartInfo(
                "ovn",
                "networking",
                labels=_labels(
                    ovn_controller=NodeRole.NETWORK,
                    ovn_ovsdb_nb=_CP,
                    ovn_ovsdb_sb=_CP,
                    ovn_northd=_CP,
                ),
                daemonsets=("ovn_controller",),
                deployment_upgrades=False,  # ovn-northd's Deployment reads no upgrade strategy
            ),
            _chart(
                "cinder",
                "block-storage",
                accounts=(
                    ADMIN,
                    Account("cinder", "cinder"),
                    Account("service", "cinder_service_user"),  # [service_user]: service tokens to other APIs
                    Account("nova", "nova"),
                    Account("glance", "glance"),
                    Account("swift", "swift"),  # cinder-backup's object store account (the chart's backup driver)
                    _test("cinder"),
                ),
                labels=_labels(api=_CP, backup=_CP, job=_CP, scheduler=_CP, volume=_CP),
            ),
            _chart(
                "heat",
                "orchestration",
                accounts=(
                    ADMIN,
                    Account("heat", "heat"),
                    Account("heat_trustee", "heat_trustee"),  # [trustee]: acts for users in deferred operations
                    # [DEFAULT] stack_domain_admin: a user of the chart's `heat` domain, created by the
                    # domain job with the chart's role (`admin`, one role: that job does not split a list)
                    Account("heat_stack_user", "heat_stack_user", Scope.CHART),
                    _test("heat"),
                ),
                labels=_labels(api=_CP, cfn=_CP, engine=_CP, job=_CP),
                # encrypts users' credentials and hidden parameters in heat's database; the chart sets
                # none, and heat's own default is a string every deployment shares
                secrets=_paths({"conf.heat.DEFAULT.auth_encryption_key": "heat.auth_encryption_key"}),
            ),
            _chart(
                "horizon",
                "dashboard",
                messaging=False,
                accounts=(ADMIN,),
                memcache_secret=False,
                region_keys=(),
                labels=_labels(dashboard=_CP, job=_CP),
                secrets=_paths({"conf.horizon.local_settings.config.horizon_secret_key": "horizon.secret_key"}),
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
    service_name: str = ""  # the chart's Service in front of it: the load balancer's backend by default


AUTOSCALABLE: Mapping[str, AutoscalableApi] = MappingProxyType(
    {
        a.deployment: a
        for a in (
            AutoscalableApi("keystone-api", "identity", "keystone", "api", "keystone-api"),
            AutoscalableApi("glance-api", "image", "glance", "api", "glance-api"),
            AutoscalableApi("placement-api", "placement", "placement", "api", "placement-api"),
            AutoscalableApi("nova-api-osapi", "compute", "nova", "osapi", "nova-api"),
            AutoscalableApi("neutron-server", "networking", "neutron", "server", "neutron-server"),
            AutoscalableApi("cinder-api", "block-storage", "cinder", "api", "cinder-api"),
            AutoscalableApi("heat-api", "orchestration", "heat", "api", "heat-api"),
            AutoscalableApi("horizon", "dashboard", "horizon", "server", "horizon-int"),
        )
    }
)

ALL_CHARTS: tuple[str, ...] = APPLY_ORDER

@dataclass(frozen=True)
class GuardedWorkload:
    """A workload the health watcher guards by default, by the name the chart renders.

    Here rather than in the health watcher so that validation (which may not import it) knows which
    names of ``spec.healthWatcher.workloads`` are defaults; the watcher adds its thresholds.
    """

    kind: str  # DaemonSet | StatefulSet
    name: str
    database: bool = False
    replicas: tuple[str, str] | None = None  # (chart, pod.replicas component) when the spec sets its size


GUARDED_COMMON: tuple[GuardedWorkload, ...] = (
    GuardedWorkload("DaemonSet", "nova-compute-default"),
    GuardedWorkload("DaemonSet", "libvirt-libvirt-default"),
    GuardedWorkload("StatefulSet", "mariadb-server", database=True, replicas=("mariadb", "server")),
    GuardedWorkload("StatefulSet", "rabbitmq-rabbitmq", database=True, replicas=("rabbitmq", "server")),
)
GUARDED_SWITCH_AGENTS: Mapping[NetworkBackend, tuple[GuardedWorkload, ...]] = MappingProxyType(
    {
        NetworkBackend.OPENVSWITCH: (GuardedWorkload("DaemonSet", "openvswitch"),
                                     GuardedWorkload("DaemonSet", "neutron-ovs-agent-default")),
        NetworkBackend.OVN: (GuardedWorkload("DaemonSet", "ovn-controller-default"),
                             GuardedWorkload("DaemonSet", "neutron-ovn-metadata-agent-default")),
    }
)


def guarded(backend: NetworkBackend) -> tuple[GuardedWorkload, ...]:
    """What the health watcher guards by default with ``backend``: the common ones, then the switch agents."""
    return GUARDED_COMMON + GUARDED_SWITCH_AGENTS[backend]



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


def credential_paths(chart: str) -> tuple[tuple[str, str], ...]:
    """(values path, stored credential name) of every credential the chart's values carry. Pure.

    One table for the expansion (which writes each stored value at its path), for
    `chart_credentials` and for the render policy: databases and vhost with their admin,
    the memcache key, every Keystone account, then the chart's own secrets.
    """
    info = CHARTS[chart]
    rows: list[tuple[str, str]] = []
    if info.db_user:
        for db in info.databases:
            rows.append((f"endpoints.{db.endpoint}.auth.admin.password", "oslo_db.admin"))
            rows.append((f"endpoints.{db.endpoint}.auth.{info.db_user}.password", f"oslo_db.{info.db_user}"))
    if info.vhost:
        rows.append(("endpoints.oslo_messaging.auth.admin.password", "oslo_messaging.admin"))
        rows.append((f"endpoints.oslo_messaging.auth.{info.vhost}.password", f"oslo_messaging.{info.vhost}"))
    if info.memcache_secret:
        rows.append(("endpoints.oslo_cache.auth.memcache_secret_key", "oslo_cache.memcache_secret_key"))
    rows += [(f"endpoints.identity.auth.{account.key}.password", account.credential) for account in info.accounts]
    rows += sorted(info.secrets.items())
    return tuple(rows)


def chart_credentials(chart: str) -> tuple[str, ...]:
    """Stable names of every credential the chart's values carry, sorted."""
    return tuple(sorted({name for _, name in credential_paths(chart)}))


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
