"""The data tables: orders, dependencies, releases and presets agree with each other."""

from __future__ import annotations

import pytest

from openstack_gitops.model import APPLY_ORDER, UPGRADE_ORDER, UpgradeKind, classify_upgrade, upgrade_order
from openstack_gitops.model.catalog import (
    AUTOSCALABLE,
    BACKEND_CHARTS,
    BACKEND_READERS,
    CHARTS,
    SERVICES,
    NetworkBackend,
    charts_for,
    service_charts,
)
from openstack_gitops.model.presets import REPLICA_COMPONENTS, Size, replicas
from openstack_gitops.model.releases import IMAGE_TAGS, RELEASES, images


def test_apply_order_names_every_chart_once() -> None:
    assert sorted(APPLY_ORDER) == sorted(CHARTS)


def test_infra_charts_are_applied_before_every_other_chart() -> None:
    infra = {chart for info in SERVICES.values() if info.infra for chart in info.charts}
    assert infra, "the catalog marks no service as infra"
    last_infra = max(APPLY_ORDER.index(chart) for chart in infra)
    first_other = min(APPLY_ORDER.index(chart) for chart in APPLY_ORDER if chart not in infra)
    assert last_infra < first_other, APPLY_ORDER


# (service, dependency) pairs whose install order OpenStack-Helm leaves to the pods: nova is installed
# before neutron and its pods wait for neutron-server through their init containers.
WAITS_AT_RUNTIME = {("compute", "networking")}


@pytest.mark.parametrize("backend", list(NetworkBackend))
def test_a_service_is_applied_after_the_services_it_depends_on(backend: NetworkBackend) -> None:
    """The service's own chart (its first: API, database jobs) comes after every chart of each dependency."""
    for name, info in SERVICES.items():
        own = APPLY_ORDER.index(info.charts[0])
        for dep in info.depends_on:
            if (name, dep) in WAITS_AT_RUNTIME:
                continue
            late = [c for c in service_charts(dep, backend) if APPLY_ORDER.index(c) > own]
            assert late == [], f"{info.charts[0]} ({name}) is applied before {late} ({dep}) it depends on"


@pytest.mark.parametrize("backend", list(NetworkBackend))
def test_the_backend_switch_is_applied_before_the_charts_that_wait_for_it(backend: NetworkBackend) -> None:
    """libvirt, nova-compute and the neutron agents wait for the vswitch pod on their node (BACKEND_READERS)."""
    switch = APPLY_ORDER.index(BACKEND_CHARTS[backend])
    early = [chart for chart in BACKEND_READERS if APPLY_ORDER.index(chart) < switch]
    assert early == [], f"{early} applied before {BACKEND_CHARTS[backend]}"


def test_upgrade_order_names_every_service_once() -> None:
    assert sorted(UPGRADE_ORDER) == sorted(SERVICES)


def test_infra_is_upgraded_before_every_other_service() -> None:
    infra = [name for name, info in SERVICES.items() if info.infra]
    others = [name for name in SERVICES if name not in infra]
    assert max(UPGRADE_ORDER.index(s) for s in infra) < min(UPGRADE_ORDER.index(s) for s in others), UPGRADE_ORDER


def test_a_service_is_upgraded_after_the_services_it_depends_on() -> None:
    for name, info in SERVICES.items():
        late = [dep for dep in info.depends_on if UPGRADE_ORDER.index(dep) > UPGRADE_ORDER.index(name)]
        assert late == [], f"{name} is upgraded before {late} it depends on"


def test_upgrade_order_of_some_services_keeps_their_relative_order() -> None:
    chosen = {"dashboard", "identity", "compute"}
    order = upgrade_order(chosen)
    assert sorted(order) == sorted(chosen)
    assert list(order) == sorted(order, key=UPGRADE_ORDER.index)


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
        pytest.param(None, "2025.2", UpgradeKind.INSTALL, id="install"),
        pytest.param("2025.2", "2025.2", UpgradeKind.UNCHANGED, id="unchanged"),
        pytest.param("2025.1", "2025.2", UpgradeKind.UPGRADE, id="next"),
        pytest.param("2025.2", "2026.1", UpgradeKind.UPGRADE, id="next-2"),
        pytest.param("2025.2", "2025.1", UpgradeKind.DOWNGRADE, id="downgrade"),
        pytest.param("2025.1", "2026.1", UpgradeKind.SKIP_LEVEL, id="skip-level"),
        pytest.param("2025.2", "2027.1", UpgradeKind.UNKNOWN, id="unknown-target"),
        pytest.param("2024.2", "2025.1", UpgradeKind.UNKNOWN, id="unknown-current-dropped-release"),
    ],
)
def test_upgrade_path_is_next_release_only(current: str | None, target: str, kind: UpgradeKind) -> None:
    assert classify_upgrade(current, target) is kind


def test_release_images_are_tagged_with_the_release() -> None:
    assert images("2025.1", "keystone")["keystone_api"] == "quay.io/airshipit/keystone:2025.1-ubuntu_noble"
    assert images("2026.1", "nova")["nova_compute"] == "quay.io/airshipit/nova:2026.1-ubuntu_noble"
    assert images("2025.2", "glance")["db_init"] == "quay.io/airshipit/openstack-client:2025.2-ubuntu_noble"


def test_an_upgrade_changes_only_release_tagged_images() -> None:
    for chart in IMAGE_TAGS:
        old, new = images("2025.2", chart), images("2026.1", chart)
        assert old.keys() == new.keys()
        for key in old:
            assert (old[key] == new[key]) != ("2025.2" in old[key]), (chart, key, old[key], new[key])
