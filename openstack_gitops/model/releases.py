"""What each supported OpenStack release pins, as data: every image of every chart, and chart versions.

One table (`IMAGE_TAGS`) says which image every `images.tags.<name>` of every chart uses, for every
key the upstream chart's values.yaml declares; a release only supplies the tag of the OpenStack
images and its pinned infra images, so a new release is one new `Release` row. A key left to the
chart's own default is named, with its reason, in `CHART_DEFAULT_IMAGES` (a golden test walks the
real charts and holds the two tables to them). The upgrade rule (next release only) is a pure
function here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from .catalog import ALL_CHARTS


@dataclass(frozen=True)
class Release:
    """Pins of one OpenStack release."""

    name: str
    openstack_tag: str  # tag of the quay.io/airshipit/<project> images: <release>-ubuntu_<series>
    infra_images: Mapping[str, str]  # infra key -> full image reference
    chart_versions: Mapping[str, str]  # chart -> pinned version

    def image(self, source: str) -> str:
        """Resolve an `IMAGE_TAGS` entry: `os:<project>` or `infra:<key>`."""
        kind, _, name = source.partition(":")
        if kind == "os":
            return f"{OPENSTACK_REGISTRY}/{name}:{self.openstack_tag}"
        return self.infra_images[name]


OPENSTACK_REGISTRY = "quay.io/airshipit"
SERIES = "ubuntu_noble"
"""Every supported release runs the Ubuntu 24.04 images, so an upgrade changes OpenStack, not the OS."""

CHART_VERSION = "2026.1.0"
"""OpenStack-Helm versions its charts by its own cycle, not by OpenStack release: the 2026.1.0 charts
(upstream commit 0ee5ade) deploy 2025.1 through 2026.1, the release choosing the images. Pinning one
chart version across these releases lets an upgrade change images without changing charts."""

# The images the 2026.1.0 charts ship outside the OpenStack projects, pinned as upstream tested them.
# Same for every supported release: these services do not follow the OpenStack cycle.
_INFRA_2026_1_0_CHARTS = {
    "dep_check": "quay.io/airshipit/kubernetes-entrypoint:latest-ubuntu_noble",
    "image_repo_sync": "quay.io/airshipit/docker:27.5.0",
    "mariadb": "quay.io/airshipit/mariadb:latest-ubuntu_noble",
    "mariadb_exporter_user": "quay.io/airshipit/mariadb:11.4.8-noble",
    "mysqld_exporter": "docker.io/prom/mysqld-exporter:v0.12.1",
    "mariadb_backup": "quay.io/airshipit/porthole-mysqlclient-utility:latest-ubuntu_jammy",
    "rabbitmq": "docker.io/rabbitmq:4.3.5",
    "rabbitmq_management": "docker.io/rabbitmq:4.3.5-management",
    "memcached": "quay.io/airshipit/memcached:1.6.32",
    "ceph_config_helper": "quay.io/airshipit/ceph-config-helper:latest-ubuntu_jammy",
    "ceph_config_helper_libvirt": "quay.io/airshipit/ceph-config-helper:ubuntu_jammy_20.2.1-1-20260407",
    "openvswitch": "quay.io/airshipit/openvswitch:latest-ubuntu_noble",
    "ovn": "quay.io/airshipit/ovn:ubuntu_noble",
    "vector": "docker.io/timberio/vector:0.51.1-debian",
    "netoffload": "ghcr.io/vexxhost/netoffload:v1.0.1",
    "rally": "docker.io/xrally/xrally-openstack:2.0.0",
    "selenium": "quay.io/airshipit/osh-selenium:latest-ubuntu_noble",
}


def _pin_all(version: str) -> Mapping[str, str]:
    """Every chart at one version."""
    return MappingProxyType({chart: version for chart in ALL_CHARTS})


def _release(name: str) -> Release:
    return Release(name, f"{name}-{SERIES}", MappingProxyType(_INFRA_2026_1_0_CHARTS), _pin_all(CHART_VERSION))


RELEASES: Mapping[str, Release] = MappingProxyType({r.name: r for r in map(_release, ("2025.1", "2025.2", "2026.1"))})
"""Supported releases, oldest first; the order is the upgrade path."""

RELEASE_ORDER: tuple[str, ...] = tuple(RELEASES)

CLIENT = "os:openstack-client"
# Jobs every OpenStack chart runs with the OpenStack client image.
_CLIENT_JOBS = ("bootstrap", "db_init", "db_drop", "ks_user", "ks_service", "ks_endpoints")
# Images every OpenStack chart declares besides its own and the client jobs.
_COMMON = {"dep_check": "infra:dep_check", "image_repo_sync": "infra:image_repo_sync"}


def _tags(project: str, *own: str, client_jobs: tuple[str, ...] = _CLIENT_JOBS, rabbit: bool = True,
          rally: bool = True, **other: str) -> dict[str, str]:
    """An OpenStack chart: its own images from `project`, client jobs, the common images, then `other`."""
    tags = {**_COMMON, **{job: CLIENT for job in client_jobs}}
    if rabbit:
        tags["rabbit_init"] = "infra:rabbitmq_management"
    if rally:
        tags["test"] = "infra:rally"
    tags.update({tag: f"os:{project}" for tag in own})
    tags.update(other)
    return tags


IMAGE_TAGS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "mariadb": {
            "dep_check": "infra:dep_check",
            "image_repo_sync": "infra:image_repo_sync",
            "mariadb": "infra:mariadb",
            "mariadb_controller": "infra:mariadb",
            "mariadb_db_controller": "infra:mariadb",
            "scripted_test": "infra:mariadb",
            "mariadb_backup": "infra:mariadb_backup",
            "prometheus_create_mysql_user": "infra:mariadb_exporter_user",
            "prometheus_mysql_exporter": "infra:mysqld_exporter",
            "prometheus_mysql_exporter_helm_tests": CLIENT,
            "ks_user": CLIENT,
        },
        "rabbitmq": {
            "dep_check": "infra:dep_check",
            "image_repo_sync": "infra:image_repo_sync",
            "rabbitmq": "infra:rabbitmq",
            "scripted_test": "infra:rabbitmq_management",
            "rabbitmq_init": CLIENT,
            "rabbitmq_test": CLIENT,
        },
        "memcached": {
            "dep_check": "infra:dep_check",
            "image_repo_sync": "infra:image_repo_sync",
            "memcached": "infra:memcached",
        },
        "keystone": _tags(
            "keystone",
            "keystone_api",
            "keystone_db_sync",
            "keystone_domain_manage",
            "keystone_fernet_setup",
            "keystone_fernet_rotate",
            "keystone_credential_setup",
            "keystone_credential_rotate",
            client_jobs=("bootstrap", "db_init", "db_drop", "ks_user", "keystone_credential_cleanup"),
        ),
        "glance": _tags(
            "glance",
            "glance_api",
            "glance_db_sync",
            "glance_metadefs_load",
            glance_storage_init="infra:ceph_config_helper",
        ),
        "placement": _tags(
            "placement",
            "placement",
            "placement_db_sync",
            client_jobs=("db_init", "db_drop", "ks_user", "ks_service", "ks_endpoints"),
            rabbit=False,
            rally=False,
        ),
        "nova": _tags(
            "nova",
            "nova_api",
            "nova_archive_deleted_rows",
            "nova_cell_setup",
            "nova_compute",
            "nova_compute_ironic",
            "nova_compute_ssh",
            "nova_conductor",
            "nova_db_sync",
            "nova_novncproxy",
            "nova_novncproxy_assets",
            "nova_scheduler",
            "nova_serialproxy",
            "nova_spiceproxy",
            "nova_spiceproxy_assets",
            nova_cell_setup_init=CLIENT,
            nova_service_cleaner="infra:ceph_config_helper",
            nova_storage_init="infra:ceph_config_helper",
            nova_wait_for_computes_init="infra:ceph_config_helper",
        ),
        "libvirt": {
            "dep_check": "infra:dep_check",
            "image_repo_sync": "infra:image_repo_sync",
            "libvirt": "os:libvirt",
            "ceph_config_helper": "infra:ceph_config_helper_libvirt",
        },
        "neutron": _tags(
            "neutron",
            "neutron_db_sync",
            "neutron_server",
            "neutron_rpc_server",
            "neutron_dhcp",
            "neutron_l3",
            "neutron_l2gw",
            "neutron_metadata",
            "neutron_openvswitch_agent",
            "neutron_sriov_agent",
            "neutron_sriov_agent_init",
            "neutron_ovn_agent",
            "neutron_ovn_metadata",
            "neutron_ovn_db_sync",
            "neutron_ovn_vpn",
            "neutron_bagpipe_bgp",
            "neutron_bgp_dragent",
            "neutron_ironic_agent",
            "neutron_ironic_agent_init",
            "neutron_netns_cleanup_cron",
            netoffload="infra:netoffload",
        ),
        "openvswitch": {
            "dep_check": "infra:dep_check",
            "image_repo_sync": "infra:image_repo_sync",
            "openvswitch_db_server": "infra:openvswitch",
            "openvswitch_vswitchd": "infra:openvswitch",
        },
        "ovn": {
            "dep_check": "infra:dep_check",
            "image_repo_sync": "infra:image_repo_sync",
            "ovn_ovsdb_nb": "infra:ovn",
            "ovn_ovsdb_sb": "infra:ovn",
            "ovn_northd": "infra:ovn",
            "ovn_controller": "infra:ovn",
            "ovn_controller_kubectl": "infra:ceph_config_helper",
            "ovn_logging_parser": "os:neutron",
            "ovn_bgp_agent": "os:ovn-bgp-agent",
            "frr": "os:ovn-bgp-agent",
            "vector": "infra:vector",
        },
        "cinder": _tags(
            "cinder",
            "cinder_api",
            "cinder_db_sync",
            "cinder_db_purge",
            "cinder_scheduler",
            "cinder_volume",
            "cinder_volume_usage_audit",
            "cinder_backup",
            cinder_storage_init="infra:ceph_config_helper",
            cinder_backup_storage_init="infra:ceph_config_helper",
        ),
        "heat": _tags(
            "heat",
            "heat_api",
            "heat_cfn",
            "heat_db_sync",
            "heat_engine",
            "heat_engine_cleaner",
            "heat_purge_deleted",
        ),
        "horizon": _tags(
            "horizon",
            "horizon",
            "horizon_db_sync",
            client_jobs=("db_init", "db_drop"),
            rabbit=False,
            rally=False,
            test="infra:selenium",
        ),
    }
)
"""chart -> images.tags key -> image source (`os:<project>` or `infra:<key>`)."""

CHART_DEFAULT_IMAGES: Mapping[tuple[str, str], str] = MappingProxyType(
    {
        ("libvirt", "kubectl"): "only the cert-init-vnc init container uses it, rendered when "
        "conf.qemu.vnc_tls is '1', which the expansion never sets; the chart ships a floating "
        "bitnami/kubectl:latest with no release to pin to",
    }
)
"""(chart, images.tags key) left to the chart's own default -> why."""


def images(release: str, chart: str) -> dict[str, str]:
    """`images.tags` of `chart` under `release`, sorted by tag name."""
    pins = RELEASES[release]
    return {tag: pins.image(source) for tag, source in sorted(IMAGE_TAGS[chart].items())}


class UpgradeKind(StrEnum):
    """How a release change relates to the running release."""

    INSTALL = "install"  # nothing running yet
    UNCHANGED = "unchanged"
    UPGRADE = "upgrade"  # to the next release: allowed
    DOWNGRADE = "downgrade"
    SKIP_LEVEL = "skip-level"
    UNKNOWN = "unknown"  # one side is not a supported release


ALLOWED_UPGRADES = frozenset({UpgradeKind.INSTALL, UpgradeKind.UNCHANGED, UpgradeKind.UPGRADE})


def classify_upgrade(current: str | None, target: str) -> UpgradeKind:
    """Classify moving from `current` (None: fresh install) to `target`; only the next release is an upgrade."""
    if target not in RELEASES or (current is not None and current not in RELEASES):
        return UpgradeKind.UNKNOWN
    if current is None:
        return UpgradeKind.INSTALL
    step = RELEASE_ORDER.index(target) - RELEASE_ORDER.index(current)
    if step == 0:
        return UpgradeKind.UNCHANGED
    if step == 1:
        return UpgradeKind.UPGRADE
    return UpgradeKind.DOWNGRADE if step < 0 else UpgradeKind.SKIP_LEVEL
