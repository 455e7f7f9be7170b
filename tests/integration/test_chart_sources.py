"""Charts from a Helm repository over HTTP render exactly like the same charts from a directory."""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from reconciler.edges.helm import ChartRef, Helm, HelmError
from testbed import build

CHARTS = Path(__file__).resolve().parents[2] / "config-repo-template" / "charts"


@pytest.fixture(scope="module")
def chart_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Helm chart repository (index.yaml + packaged charts) served over HTTP on loopback."""
    helm = str(build.binary("helm"))
    work = tmp_path_factory.mktemp("chart-repo")
    served = work / "served"
    served.mkdir()
    for name in ("helm-toolkit", "keystone"):
        shutil.copytree(CHARTS / name, work / name)
    subprocess.run([helm, "dependency", "update", "--skip-refresh", str(work / "keystone")], check=True,
                   capture_output=True)
    subprocess.run([helm, "package", str(work / "keystone"), "-d", str(served)], check=True, capture_output=True)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    subprocess.run([helm, "repo", "index", str(served), "--url", url], check=True, capture_output=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()


def test_helm_repository_source_renders_like_the_directory(chart_repo: str, tmp_path: Path) -> None:
    helm = Helm(str(build.binary("helm")), tmp_path)
    values = {"pod": {"replicas": {"api": 3}}}
    version = yaml.safe_load((CHARTS / "keystone" / "Chart.yaml").read_text())["version"]
    remote = helm.render("keystone", ChartRef("keystone", "helm", chart_repo, version), "openstack", values, "v1.36.3")
    local = helm.render("keystone", ChartRef("keystone", "directory", str(CHARTS / "keystone")), "openstack", values,
                        "v1.36.3")
    assert remote == local
    assert "replicas: 3" in remote


def test_missing_version_in_repository_is_a_clear_error(chart_repo: str, tmp_path: Path) -> None:
    helm = Helm(str(build.binary("helm")), tmp_path)
    with pytest.raises(HelmError) as err:
        helm.render("keystone", ChartRef("keystone", "helm", chart_repo, "9.9.9"), "openstack", {}, "v1.36.3")
    assert "chart keystone" in str(err.value) and "9.9.9" in str(err.value)
