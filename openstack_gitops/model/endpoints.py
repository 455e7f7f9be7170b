"""The facts every chart must agree on: where the database, broker, cache and APIs are, and
which account each chart uses there.

Built in one place so that, e.g., nova's and neutron's copies of the `neutron` service user are
the same value by construction, not by two code paths happening to agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .catalog import API_ENDPOINTS, CHARTS, DB_ADMIN_USER, MQ_ADMIN_USER, Account, Scope, credential_paths

CLUSTER_DOMAIN_SUFFIX = "cluster.local"
DB_HOST, DB_SCHEME, DB_PORT = "mariadb", "mysql+pymysql", 3306
MQ_HOST, MQ_SCHEME, MQ_PORT, MQ_HTTP_PORT = "rabbitmq", "rabbit", 5672, 15672
MQ_STATEFULSET = "rabbitmq-rabbitmq"
CACHE_HOST, CACHE_PORT = "memcached", 11211
INTERNAL_SCHEME = "http"
PUBLIC_SCHEME, PUBLIC_PORT = "https", 443  # the operator's load balancer terminates TLS

ADMIN_PROJECT, ADMIN_DOMAIN = "admin", "default"
SERVICE_PROJECT, SERVICE_DOMAIN, SERVICE_ROLES = "service", "service", "admin,service"


def static_endpoints(chart: str) -> dict[str, Any]:
    """Hosts, ports, paths and schemes: the same for every spec (the "release defaults" layer)."""
    info = CHARTS[chart]
    if not info.openstack:
        return {}
    endpoints: dict[str, Any] = {"cluster_domain_suffix": CLUSTER_DOMAIN_SUFFIX}
    for db in info.databases:
        endpoints[db.endpoint] = {
            "hosts": {"default": DB_HOST},
            "path": f"/{db.name}",
            "scheme": DB_SCHEME,
            "port": {"mysql": {"default": DB_PORT}},
        }
    if info.vhost:
        endpoints["oslo_messaging"] = {
            "hosts": {"default": MQ_HOST},
            "path": f"/{info.vhost}",
            "scheme": MQ_SCHEME,
            "port": {"amqp": {"default": MQ_PORT}, "http": {"default": MQ_HTTP_PORT}},
        }
    endpoints["oslo_cache"] = {"hosts": {"default": CACHE_HOST}, "port": {"memcache": {"default": CACHE_PORT}}}
    for api in API_ENDPOINTS:
        hosts = {"default": api.host, "public": api.public_host}
        port = {"default": api.port, "public": PUBLIC_PORT}
        if api.internal_host:
            hosts["internal"] = api.internal_host
        if api.internal_port:
            port["internal"] = api.internal_port
        endpoints[api.service_type] = {
            "name": api.name,
            "hosts": hosts,
            "path": {"default": api.path},
            "scheme": {"default": INTERNAL_SCHEME, "public": PUBLIC_SCHEME},
            "port": {api.port_name: port},
        }
    return endpoints


def messaging_replicas(chart: str, rabbitmq_replicas: int) -> dict[str, Any]:
    """How many broker pods the transport URL lists (the "size preset" layer)."""
    if not CHARTS[chart].vhost:
        return {}
    return {"oslo_messaging": {"statefulset": {"name": MQ_STATEFULSET, "replicas": rabbitmq_replicas}}}


def public_hosts(chart: str, public_domain: str) -> dict[str, Any]:
    """`<service>.<publicDomain>` for every API a chart may publish or call."""
    if not CHARTS[chart].openstack:
        return {}
    return {
        api.service_type: {"host_fqdn_override": {"public": {"host": f"{api.public_host}.{public_domain}"}}}
        for api in API_ENDPOINTS
    }


def accounts(chart: str, region: str) -> dict[str, Any]:
    """Who each account under `endpoints.*.auth` of an OpenStack chart is: names, project, roles, region.

    The passwords are not here: `passwords` writes every stored credential at its values path.
    """
    info = CHARTS[chart]
    if not info.openstack:
        return {}
    endpoints: dict[str, Any] = {}
    if info.db_user:
        db_auth = {"admin": {"username": DB_ADMIN_USER}, info.db_user: {"username": info.db_user}}
        endpoints.update({db.endpoint: {"auth": db_auth} for db in info.databases})
    if info.vhost:
        endpoints["oslo_messaging"] = {
            "auth": {"admin": {"username": MQ_ADMIN_USER}, info.vhost: {"username": info.vhost}}
        }
    endpoints["identity"] = {"auth": {account.key: _account(account, region) for account in info.accounts}}
    return endpoints


def passwords(chart: str, credentials: Mapping[str, str]) -> list[tuple[str, str]]:
    """(values path, stored value) of every credential the chart carries (catalog.credential_paths)."""
    return [(path, credentials[name]) for path, name in credential_paths(chart)]


_SCOPES: Mapping[Scope, Mapping[str, str]] = {
    Scope.ADMIN: {"project_name": ADMIN_PROJECT, "user_domain_name": ADMIN_DOMAIN, "project_domain_name": ADMIN_DOMAIN},
    Scope.SERVICE: {
        "role": SERVICE_ROLES,
        "project_name": SERVICE_PROJECT,
        "user_domain_name": SERVICE_DOMAIN,
        "project_domain_name": SERVICE_DOMAIN,
    },
    Scope.CHART: {},
}
"""What each scope of account says beyond name and region (CHART keeps the chart's own)."""


def _account(account: Account, region: str) -> dict[str, Any]:
    return {"region_name": region, "username": account.username, **_SCOPES[account.scope]}
