"""What each supported OpenStack release pins, as data: images per chart and chart versions.

One table (`IMAGE_TAGS`) says which image every `images.tags.<name>` of every chart uses; a
release only supplies the tag suffix of the OpenStack images and the pinned infra images, so a new
release is one new `Release` row. The upgrade rule (next release only) is a pure function here too.
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
    openstack_tag: str  # tag of the quay.io/airshipit/<project> images
    infra_images: Mapping[str, str]  # image key -> full image reference
    chart_versions: Mapping[str, str]  # chart -> pinned version

    def image(self, source: str) -> str:
        """Resolve an `IMAGE_TAGS` entry: `os:<project>` or `infra:<key>`."""
        kind, _, name = source.partition(":")
        if kind == "os":
            return f"{OPENSTACK_REGISTRY}/{name}:{self.openstack_tag}"
        return self.infra_images[name]


OPENSTACK_REGISTRY = "quay.io/airshipit"

_INFRA_JAMMY = {
    "dep_check": "quay.io/airshipit/kubernetes-entrypoint:latest-ubuntu_jammy",
    "rabbit_init": "docker.io/library/rabbitmq:3.13-management",
    "mariadb": "quay.io/airshipit/mariadb:latest-ubuntu_jammy",
    "rabbitmq": "docker.io/library/rabbitmq:3.13.7",
    "memcached": "docker.io/library/memcached:1.6.32",
    "ceph_config_helper": "quay.io/airshipit/ceph-config-helper:latest-ubuntu_jammy",
    "openvswitch": "quay.io/airshipit/openvswitch:latest-ubuntu_jammy",
    "ovn": "quay.io/airshipit/ovn:ubuntu_jammy",
}
_INFRA_NOBLE = {
    **_INFRA_JAMMY,
    "dep_check": "quay.io/airshipit/kubernetes-entrypoint:latest-ubuntu_noble",
    "openvswitch": "quay.io/airshipit/openvswitch:latest-ubuntu_noble",
    "ovn": "quay.io/airshipit/ovn:ubuntu_noble",
}


CHART_SERIES = "2025.2.0"
"""OpenStack-Helm versions its charts by its own release cycle, not by OpenStack release: the
2025.2 chart series deploys OpenStack 2024.2 through 2025.2, the release choosing the images.
Pinning one series across these releases lets an upgrade change images without changing charts."""


def _pin_all(version: str) -> Mapping[str, str]:
    """Every chart of a series carries the series version."""
    return MappingProxyType({chart: version for chart in ALL_CHARTS})


RELEASES: Mapping[str, Release] = MappingProxyType(
    {
        r.name: r
        for r in (
            Release("2024.2", "2024.2-ubuntu_jammy", MappingProxyType(_INFRA_JAMMY), _pin_all(CHART_SERIES)),
            Release("2025.1", "2025.1-ubuntu_jammy", MappingProxyType(_INFRA_JAMMY), _pin_all(CHART_SERIES)),
            Release("2025.2", "2025.2-ubuntu_noble", MappingProxyType(_INFRA_NOBLE), _pin_all(CHART_SERIES)),
        )
    }
)
"""Supported releases, oldest first; the order is the upgrade path."""

RELEASE_ORDER: tuple[str, ...] = tuple(RELEASES)

# Jobs every OpenStack chart runs with the client tools of the heat image.
_CLIENT_JOBS = ("bootstrap", "db_init", "db_drop", "ks_user", "ks_service", "ks_endpoints")


def _tags(project: str, *own: str, client_jobs: tuple[str, ...] = _CLIENT_JOBS, rabbit: bool = True) -> dict[str, str]:
    tags = {"dep_check": "infra:dep_check", **{job: "os:heat" for job in client_jobs}}
    if rabbit:
        tags["rabbit_init"] = "infra:rabbit_init"
    tags.update({tag: f"os:{project}" for tag in own})
    return tags


IMAGE_TAGS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "mariadb": {"dep_check": "infra:dep_check", "mariadb": "infra:mariadb"},
        "rabbitmq": {
            "dep_check": "infra:dep_check",
            "rabbitmq": "infra:rabbitmq",
            "rabbitmq_init": "os:heat",
        },
        "memcached": {"dep_check": "infra:dep_check", "memcached": "infra:memcached"},
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
        "glance": {
            **_tags("glance", "glance_api", "glance_db_sync", "glance_metadefs_load"),
            "glance_storage_init": "infra:ceph_config_helper",
        },
        "placement": _tags("placement", "placement", "placement_db_sync", rabbit=False),
        "nova": {
            **_tags(
                "nova",
                "nova_api",
                "nova_cell_setup",
                "nova_compute",
                "nova_compute_ssh",
                "nova_conductor",
                "nova_db_sync",
                "nova_novncproxy",
                "nova_novncproxy_assets",
                "nova_scheduler",
            ),
            "nova_cell_setup_init": "os:heat",
            "nova_service_cleaner": "infra:ceph_config_helper",
        },
        "libvirt": {"dep_check": "infra:dep_check", "libvirt": "os:libvirt"},
        "neutron": _tags(
            "neutron",
            "neutron_db_sync",
            "neutron_server",
            "neutron_rpc_server",
            "neutron_dhcp",
            "neutron_l3",
            "neutron_metadata",
            "neutron_openvswitch_agent",
            "neutron_ovn_metadata",
            "neutron_netns_cleanup_cron",
        ),
        "openvswitch": {
            "dep_check": "infra:dep_check",
            "openvswitch_db_server": "infra:openvswitch",
            "openvswitch_vswitchd": "infra:openvswitch",
        },
        "ovn": {
            "dep_check": "infra:dep_check",
            "ovn_ovsdb_nb": "infra:ovn",
            "ovn_ovsdb_sb": "infra:ovn",
            "ovn_northd": "infra:ovn",
            "ovn_controller": "infra:ovn",
        },
        "cinder": {
            **_tags(
                "cinder",
                "cinder_api",
                "cinder_db_sync",
                "cinder_scheduler",
                "cinder_volume",
                "cinder_volume_usage_audit",
                "cinder_backup",
            ),
            "cinder_storage_init": "infra:ceph_config_helper",
            "cinder_backup_storage_init": "infra:ceph_config_helper",
        },
        "heat": _tags(
            "heat",
            "heat_api",
            "heat_cfn",
            "heat_db_sync",
            "heat_engine",
            "heat_engine_cleaner",
            "heat_purge_deleted",
        ),
        "horizon": _tags("horizon", "horizon", "horizon_db_sync", client_jobs=("db_init", "db_drop"), rabbit=False),
    }
)
"""chart -> images.tags key -> image source (`os:<project>` or `infra:<key>`)."""


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
