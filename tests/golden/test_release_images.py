"""The release table sets every image of every real chart, and nothing the charts do not declare.

Walks `images.tags` of each upstream OpenStack-Helm chart's values.yaml (the charts the releases
pin) and holds `releases.IMAGE_TAGS` to it: a key the table leaves to the chart default fails
unless `releases.CHART_DEFAULT_IMAGES` names it with a reason; a key the table sets that the chart
does not have fails too. Each image we set keeps the repository the chart ships for that key (only
the tag is the release's), apart from the deliberate changes listed here.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from openstack_gitops.model.catalog import ALL_CHARTS
from openstack_gitops.model.releases import (
    CHART_DEFAULT_IMAGES,
    CHART_VERSION,
    IMAGE_TAGS,
    RELEASE_ORDER,
    RELEASES,
    images,
)
from testbed.charts import upstream_charts

OPENSTACK_CHARTS = ("keystone", "glance", "cinder", "placement", "nova", "neutron", "horizon", "heat")

# (chart, key) -> (what the chart ships, why we pin something else). Keep it short; an entry whose
# chart default changed fails, so it is looked at again.
DEVIATIONS: dict[tuple[str, str], tuple[str, str]] = {
    **{
        (chart, "image_repo_sync"): (
            "docker.io/docker:17.07.0",
            "the docker 27.5.0 of the infra charts rather than a docker from 2017",
        )
        for chart in OPENSTACK_CHARTS
    },
    **{
        ("neutron", key): (
            "quay.io/airshipit/neutron:stein-18.04-sriov",
            "the chart still ships a Stein-era SR-IOV image; the release's neutron image has the agent",
        )
        for key in ("neutron_sriov_agent", "neutron_sriov_agent_init")
    },
}


@cache
def charts_root() -> Path:
    return upstream_charts()


@cache
def chart_values(chart: str) -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((charts_root() / chart / "values.yaml").read_text())
    return values


def chart_images(chart: str) -> dict[str, str]:
    return dict(chart_values(chart)["images"]["tags"])


def repository(image: str) -> str:
    return image.rsplit(":", 1)[0]


@pytest.mark.parametrize("chart", ALL_CHARTS)
def test_release_table_sets_every_image_key_of_the_chart(chart: str) -> None:
    excused = {key for c, key in CHART_DEFAULT_IMAGES if c == chart}
    unset = set(chart_images(chart)) - set(IMAGE_TAGS[chart]) - excused
    assert not unset, f"{chart}: images.tags keys left to the chart default without a reason: {sorted(unset)}"


@pytest.mark.parametrize("chart", ALL_CHARTS)
def test_release_table_sets_no_key_the_chart_does_not_have(chart: str) -> None:
    unknown = set(IMAGE_TAGS[chart]) - set(chart_images(chart))
    assert not unknown, f"{chart}: the release table sets images.tags keys the chart lacks: {sorted(unknown)}"


def test_every_key_left_to_the_chart_default_exists_is_unset_and_has_a_reason() -> None:
    for (chart, key), reason in CHART_DEFAULT_IMAGES.items():
        assert key in chart_images(chart), f"{chart}.{key}: left to the default, but the chart has no such key"
        assert key not in IMAGE_TAGS[chart], f"{chart}.{key}: left to the default, but the table sets it"
        assert reason.strip(), f"{chart}.{key}: no reason given"


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize("chart", ALL_CHARTS)
def test_every_image_keeps_the_repository_the_chart_ships(chart: str, release: str) -> None:
    shipped = chart_images(chart)
    for key, image in images(release, chart).items():
        if (chart, key) not in DEVIATIONS:
            assert repository(image) == repository(shipped[key]), f"{chart}.{key} under {release}: {image}, " \
                f"the chart ships {shipped[key]}"


def test_newest_release_pins_the_images_the_charts_ship_apart_from_listed_deviations() -> None:
    """The charts were cut for the newest release: its table equals their defaults, key by key."""
    newest = RELEASE_ORDER[-1]
    for chart in ALL_CHARTS:
        shipped = chart_images(chart)
        differs = {key: (image, shipped[key]) for key, image in images(newest, chart).items()
                   if image != shipped[key] and (chart, key) not in DEVIATIONS}
        assert not differs, f"{chart} under {newest}: (ours, chart default) {differs}"
    for (chart, key), (default, _) in DEVIATIONS.items():
        assert chart_images(chart)[key] == default, f"{chart}.{key}: the chart now ships {chart_images(chart)[key]}"


@pytest.mark.parametrize("chart", ALL_CHARTS)
def test_every_release_pins_the_version_the_chart_ships(chart: str) -> None:
    shipped = yaml.safe_load((charts_root() / chart / "Chart.yaml").read_text())["version"]
    assert shipped == CHART_VERSION
    assert {release.chart_versions[chart] for release in RELEASES.values()} == {shipped}


def test_charts_directory_is_the_upstream_tree() -> None:
    assert (charts_root() / "helm-toolkit" / "Chart.yaml").is_file()
