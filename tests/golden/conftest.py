"""Fixtures rendering the test Helm charts of config-repo-template/charts with the real helm binary.

The charts are copied once per session into a temporary directory (``helm dependency build``
writes ``charts/*.tgz`` and ``Chart.lock``, which must never land in the repository), their
``file://../helm-toolkit`` dependency is built there, and every render goes through
``helm template <release> <dir> --namespace openstack --kube-version v1.36.3 -f values.yaml``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from testbed.build import binary
from testbed.errors import TestbedError

from .chart_support import (
    APP_CHARTS,
    CHARTS_DIR,
    KUBE_VERSION,
    LIBRARY_CHART,
    NAMESPACE,
    WORKERS,
    Rendered,
    RenderFn,
    parse_docs,
)


@pytest.fixture(scope="session")
def helm_binary() -> Path:
    try:
        path = Path(binary("helm"))
    except TestbedError as exc:  # the pinned helm is built by `python -m testbed.build`
        pytest.skip(f"pinned helm binary not built: {exc}")
    if not path.exists():
        pytest.skip(f"pinned helm binary missing at {path}")
    return path


@pytest.fixture(scope="session")
def chart_workspace(tmp_path_factory: pytest.TempPathFactory, helm_binary: Path) -> Iterator[Path]:
    """A private copy of the charts with their helm-toolkit dependency built."""
    root = tmp_path_factory.mktemp("charts")
    helm_home = tmp_path_factory.mktemp("helm-home")
    for name in (LIBRARY_CHART, *APP_CHARTS):
        shutil.copytree(CHARTS_DIR / name, root / name)
    env = _helm_env(helm_home)

    def build(chart: str) -> None:
        proc = subprocess.run(
            [str(helm_binary), "dependency", "build", str(root / chart)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        if proc.returncode != 0:
            raise AssertionError(f"helm dependency build {chart} failed:\n{proc.stderr}")

    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(build, APP_CHARTS))
    yield root


def _helm_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        HELM_CACHE_HOME=str(home / "cache"),
        HELM_CONFIG_HOME=str(home / "config"),
        HELM_DATA_HOME=str(home / "data"),
    )
    return env


@pytest.fixture(scope="session")
def render_chart(chart_workspace: Path, helm_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> RenderFn:
    """render_chart(chart, values=None, release=None) -> Rendered, via the real helm binary."""
    values_dir = tmp_path_factory.mktemp("values")
    env = _helm_env(tmp_path_factory.mktemp("helm-render-home"))
    counter = iter(range(1_000_000))

    def render(chart: str, values: Mapping[str, Any] | None = None, release: str | None = None) -> Rendered:
        cmd = [
            str(helm_binary),
            "template",
            release or chart,
            str(chart_workspace / chart),
            "--namespace",
            NAMESPACE,
            "--kube-version",
            KUBE_VERSION,
        ]
        if values:
            values_file = values_dir / f"{chart}-{next(counter)}.yaml"
            values_file.write_text(yaml.safe_dump(dict(values), sort_keys=True))
            cmd += ["-f", str(values_file)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=False)
        if proc.returncode != 0:
            raise AssertionError(f"helm template {chart} failed:\n{proc.stderr}")
        return Rendered(proc.stdout, parse_docs(proc.stdout))

    return render


@pytest.fixture(scope="session")
def default_renders(render_chart: RenderFn) -> dict[str, Rendered]:
    """Every application chart rendered with its default values, in parallel."""
    with ThreadPoolExecutor(WORKERS) as pool:
        return dict(zip(APP_CHARTS, pool.map(render_chart, APP_CHARTS), strict=True))
