"""The data tables: orders, dependencies, releases and presets agree with each other."""

from __future__ import annotations

import pytest

from openstack_gitops.model import APPLY_ORDER, UPGRADE_ORDER, UpgradeKind, classify_upgrade, upgrade_order
from openstack_gitops.model.catalog import AUTOSCALABLE, CHARTS, SERVICES, NetworkBackend, charts_for, service_charts
from openstack_gitops.model.presets import REPLICA_COMPONENTS, Size, replicas
from openstack_gitops.model.releases import IMAGE_TAGS, RELEASES, images


def test_apply_order_is_the_documented_osh_install_order() -> None:
    assert APPLY_ORDER == (
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


def test_upgrade_order_puts_infra_first_then_identity_placement_image_networking_compute() -> None:
    assert UPGRADE_ORDER[:8] == (
        "mariadb",
        "rabbitmq",
        "memcached",
        "identity",
        "placement",
        "image",
        "networking",
        "compute",
    )
    assert set(UPGRADE_ORDER) == set(SERVICES)
    assert upgrade_order({"dashboard", "identity", "compute"}) == ("identity", "compute", "dashboard")


def test_every_chart_belongs_to_a_service_and_has_images_in_every_release() -> None:
    assert set(CHARTS) == set(APPLY_ORDER) == set(IMAGE_TAGS)
    for chart, info in CHARTS.items():
        assert info.service in SERVICES
        for release in RELEASES:
            tags = images(release, chart)
            assert tags and all(":" in image for image in tags.values()), (release, chart)


def test_dependencies_name_known_services_and_have_no_cycles() -> None:
    def reach(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"cycle: {(*path, name)}"
        for dep in SERVICES[name].depends_on:
            assert dep in SERVICES
            reach(dep, (*path, name))

    for name in SERVICES:
        reach(name, ())


def test_every_service_is_applied_after_its_dependencies() -> None:
    for name, info in SERVICES.items():
        for dep in info.depends_on:
            first_own = min(APPLY_ORDER.index(c) for c in service_charts(name, NetworkBackend.OVN))
            dep_charts = service_charts(dep, NetworkBackend.OVN)
            if name != "compute":  # nova waits for neutron through its init container, as in OSH
                assert max(APPLY_ORDER.index(c) for c in dep_charts) < first_own, (name, dep)


@pytest.mark.parametrize(
    ("backend", "charts"),
    [
        pytest.param(NetworkBackend.OPENVSWITCH, ("openvswitch", "neutron"), id="openvswitch"),
        pytest.param(NetworkBackend.OVN, ("ovn", "neutron"), id="ovn"),
    ],
)
def test_networking_charts_follow_the_backend(backend: NetworkBackend, charts: tuple[str, ...]) -> None:
    assert charts_for({"networking"}, backend) == charts


def test_autoscalable_apis_point_at_real_replica_components() -> None:
    for deployment, api in AUTOSCALABLE.items():
        assert api.replicas_component in REPLICA_COMPONENTS[api.chart], deployment
        assert CHARTS[api.chart].service == api.service


@pytest.mark.parametrize(
    ("size", "api", "cluster"),
    [
        pytest.param(Size.SMALL, 1, 1, id="small"),
        pytest.param(Size.MEDIUM, 2, 3, id="medium"),
        pytest.param(Size.LARGE, 3, 3, id="large"),
    ],
)
def test_presets_scale_apis_and_keep_clusters_at_a_quorum(size: Size, api: int, cluster: int) -> None:
    assert replicas(size, "keystone") == {"api": api}
    assert replicas(size, "mariadb") == {"server": cluster}
    assert replicas(size, "rabbitmq") == {"server": cluster}


@pytest.mark.parametrize(
    ("current", "target", "kind"),
    [
        pytest.param(None, "2025.1", UpgradeKind.INSTALL, id="install"),
        pytest.param("2025.1", "2025.1", UpgradeKind.UNCHANGED, id="unchanged"),
        pytest.param("2024.2", "2025.1", UpgradeKind.UPGRADE, id="next"),
        pytest.param("2025.1", "2025.2", UpgradeKind.UPGRADE, id="next-2"),
        pytest.param("2025.1", "2024.2", UpgradeKind.DOWNGRADE, id="downgrade"),
        pytest.param("2024.2", "2025.2", UpgradeKind.SKIP_LEVEL, id="skip-level"),
        pytest.param("2025.1", "2026.1", UpgradeKind.UNKNOWN, id="unknown-target"),
        pytest.param("2023.1", "2024.2", UpgradeKind.UNKNOWN, id="unknown-current"),
    ],
)
def test_upgrade_path_is_next_release_only(current: str | None, target: str, kind: UpgradeKind) -> None:
    assert classify_upgrade(current, target) is kind


def test_release_images_are_tagged_with_the_release() -> None:
    assert images("2025.1", "keystone")["keystone_api"] == "quay.io/airshipit/keystone:2025.1-ubuntu_jammy"
    assert images("2025.2", "nova")["nova_compute"] == "quay.io/airshipit/nova:2025.2-ubuntu_noble"
