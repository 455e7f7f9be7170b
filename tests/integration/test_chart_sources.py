"""The real OpenStack-Helm charts render the same from every source an operator can use.

A directory of the config repo holds the charts as upstream's Git has them (helm-toolkit an unbuilt
``file://../helm-toolkit`` dependency); a Helm repository serves them packaged, as operators get them.
Both go through the Helm edge with the pinned Helm, the repository over real HTTP on loopback
(``helm_repo``). A chart that is not there, or a repository that does not answer, is one error that
names the chart.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from reconciler.edges.helm import ChartRef, Helm, HelmError
from testbed import build, process
from testbed.charts import CHART_VERSION, ENV_VAR, LIBRARY_CHART, app_charts, upstream_charts
from testbed.errors import TestbedError
from testbed.helmrepo import HelmRepo, package

from .reconcile_support import copy_charts

KUBE_VERSION = "v1.36.3"
CHARTS = app_charts(upstream_charts())
# Unset, the charts draw the memcache secret key with randAlphaNum, so no two renders would be equal;
# the reconciler always sets it (a generated credential). A few more values check that values arrive.
FIXED = {"endpoints": {"oslo_cache": {"auth": {"memcache_secret_key": "not-random"}}}}
VALUES: dict[str, dict[str, object]] = {"keystone": {**FIXED, "pod": {"replicas": {"api": 3}}},
                                        "nova": {**FIXED, "pod": {"replicas": {"conductor": 2}}}}


@pytest.fixture(scope="module")
def git_layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The charts as a config repo's directory holds them: copied from upstream's Git layout, unbuilt."""
    charts = tmp_path_factory.mktemp("git-layout") / "charts"
    copy_charts(upstream_charts(), charts)
    return charts


@pytest.fixture(scope="module")
def helm() -> Iterator[Helm]:
    with Helm(str(build.binary("helm"))) as edge:
        yield edge


def objects(text: str) -> list[tuple[str, str]]:
    """(kind, name) of every object of a render, in order."""
    docs = [d for d in yaml.safe_load_all(text) if d]
    return [(d["kind"], d["metadata"]["name"]) for d in docs]


def test_the_upstream_charts_are_unbuilt_in_git(git_layout: Path) -> None:
    """What the directory source must cope with: no vendored helm-toolkit, a file:// dependency."""
    nova = yaml.safe_load((git_layout / "nova" / "Chart.yaml").read_text())
    assert nova["version"] == CHART_VERSION
    assert {"name": LIBRARY_CHART, "repository": f"file://../{LIBRARY_CHART}", "version": ">= 0.1.0"} in nova[
        "dependencies"]
    assert not (git_layout / "nova" / "charts").exists() and not (git_layout / "nova" / "Chart.lock").exists()


@pytest.mark.parametrize("chart", CHARTS)
def test_a_directory_source_renders_the_git_layout_as_is(helm: Helm, git_layout: Path, chart: str) -> None:
    before = sorted(str(p.relative_to(git_layout)) for p in git_layout.rglob("*"))
    text = helm.render(chart, ChartRef(chart, "directory", str(git_layout / chart)), "openstack",
                       VALUES.get(chart, {}), KUBE_VERSION)
    assert objects(text), f"{chart} rendered no object"
    after = sorted(str(p.relative_to(git_layout)) for p in git_layout.rglob("*"))
    assert after == before  # the edge vendored helm-toolkit in its own copy, not in the config repo


@pytest.mark.parametrize("chart", CHARTS)
def test_a_helm_repository_renders_the_same_objects_as_the_directory(helm: Helm, git_layout: Path, helm_repo: str,
                                                                     chart: str) -> None:
    values = VALUES.get(chart, FIXED)
    remote = helm.render(chart, ChartRef(chart, "helm", helm_repo, CHART_VERSION), "openstack", values,
                         KUBE_VERSION)
    local = helm.render(chart, ChartRef(chart, "directory", str(git_layout / chart)), "openstack", values,
                        KUBE_VERSION)
    assert objects(remote) == objects(local) and objects(remote)
    assert remote == local


def test_values_reach_the_packaged_chart(helm: Helm, helm_repo: str) -> None:
    text = helm.render("keystone", ChartRef("keystone", "helm", helm_repo, CHART_VERSION), "openstack",
                       VALUES["keystone"], KUBE_VERSION)
    api = next(d for d in yaml.safe_load_all(text) if d and d["kind"] == "Deployment"
               and d["metadata"]["name"] == "keystone-api")
    assert api["spec"]["replicas"] == 3


def test_a_version_the_repository_lacks_is_one_error_naming_the_chart(helm: Helm, helm_repo: str) -> None:
    with pytest.raises(HelmError) as err:
        helm.render("nova", ChartRef("nova", "helm", helm_repo, "9.9.9"), "openstack", {}, KUBE_VERSION)
    assert err.value.chart == "nova"
    assert str(err.value).startswith("chart nova: ") and "9.9.9" in str(err.value)


def test_a_chart_the_repository_lacks_is_one_error_naming_the_chart(helm: Helm, helm_repo: str) -> None:
    with pytest.raises(HelmError) as err:
        helm.render("octavia", ChartRef("octavia", "helm", helm_repo, CHART_VERSION), "openstack", {}, KUBE_VERSION)
    assert err.value.chart == "octavia" and str(err.value).startswith("chart octavia: ")
    assert "octavia" in str(err.value).removeprefix("chart octavia: ")  # Helm's own words name it too


def test_an_unreachable_repository_is_one_error_naming_the_chart(helm: Helm) -> None:
    closed = f"http://127.0.0.1:{process.free_port()}"  # nothing listens there
    with pytest.raises(HelmError) as err:
        helm.render("glance", ChartRef("glance", "helm", closed, CHART_VERSION), "openstack", {}, KUBE_VERSION)
    assert err.value.chart == "glance" and str(err.value).startswith("chart glance: ")
    assert closed in str(err.value)


def test_a_chart_missing_from_a_directory_is_one_error_naming_the_chart(helm: Helm, git_layout: Path) -> None:
    with pytest.raises(HelmError, match=r"^chart octavia: .*octavia/Chart.yaml not found"):
        helm.render("octavia", ChartRef("octavia", "directory", str(git_layout / "octavia")), "openstack", {},
                    KUBE_VERSION)


def test_the_packaged_repository_is_cached_and_serves_every_chart(helm_repo: str) -> None:
    served = package()
    assert package() == served  # keyed by content and Helm version: packaged once per machine
    index = yaml.safe_load((served / "index.yaml").read_text())
    assert set(index["entries"]) == {LIBRARY_CHART, *CHARTS}
    assert {e["version"] for entries in index["entries"].values() for e in entries} == {CHART_VERSION}
    assert all(not url.startswith("http") for entries in index["entries"].values() for e in entries
               for url in e["urls"])  # relative: one cached directory serves on any port
    assert not list(upstream_charts().glob("*/charts")) and not list(upstream_charts().glob("*/Chart.lock"))


def test_a_broken_chart_source_is_one_testbed_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = upstream_charts()
    broken = tmp_path / "broken"
    for chart in (LIBRARY_CHART, "nova"):
        shutil.copytree(real / chart, broken / chart)
    (broken / "nova" / "Chart.yaml").write_text("apiVersion: v2\nname: nova\n")  # no version
    with pytest.raises(TestbedError, match=r"^helm-repo: chart nova: helm package"):
        package(broken)

    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(TestbedError, match=rf"^charts: \${ENV_VAR}=.*nowhere holds no OpenStack-Helm charts"):
        HelmRepo(tmp_path / "bed").start()


def test_a_directory_without_helm_toolkit_beside_the_chart_is_one_error_naming_both(helm: Helm,
                                                                                    tmp_path: Path) -> None:
    shutil.copytree(upstream_charts() / "glance", tmp_path / "glance")
    with pytest.raises(HelmError, match=rf"^chart glance: its file:// dependency {LIBRARY_CHART} is missing"):
        helm.render("glance", ChartRef("glance", "directory", str(tmp_path / "glance")), "openstack", {},
                    KUBE_VERSION)
