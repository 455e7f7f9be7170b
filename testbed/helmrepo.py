"""A real Helm chart repository of the upstream OpenStack-Helm charts, served over HTTP on loopback.

Operators get OpenStack-Helm from a Helm repository (``index.yaml`` plus one ``<chart>-<version>.tgz``
per chart, helm-toolkit vendored inside each), not from a Git checkout; the test bed, the tests and
the demo get the charts the same way:

    repo = HelmRepo(directory)             # packages once per machine, then serves the cache
    repo.start()
    repo.url                               # http://127.0.0.1:<port>; `source: {type: helm, url: ...}`
    repo.stop()

:func:`package` builds the repository with the pinned Helm from :func:`testbed.charts.upstream_charts`,
in a temporary copy (never in the chart source or this checkout), and keeps it in the cache keyed by
the charts' content digest and the Helm version, so a second call costs one digest. The index holds
relative chart URLs, so one cached directory serves on any port. The server is ``python -m
http.server`` in its own process, recorded in the test bed's ``state.json`` like every other service,
so ``python -m testbed down`` stops it too.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

from testbed import build, process, state
from testbed.build import cache_root
from testbed.charts import LIBRARY_CHART, upstream_charts
from testbed.errors import TestbedError
from testbed.service import Service

NAME = "helm-repo"
INDEX = "index.yaml"


def charts_digest(root: Path) -> str:
    """sha256 over every file of every chart directory (path and bytes): the cache key of a packaging."""
    digest = hashlib.sha256()
    for chart_yaml in sorted(root.glob("*/Chart.yaml")):
        chart = chart_yaml.parent
        for path in sorted(p for p in chart.rglob("*") if p.is_file()):
            digest.update(str(path.relative_to(root)).encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()


def repo_dir(root: Path) -> Path:
    """Where the packaged repository of the charts under ``root`` lives in the cache."""
    key = hashlib.sha256(f"{charts_digest(root)}\0helm {build.HELM_VERSION}".encode()).hexdigest()[:16]
    return cache_root() / "helm-repo" / f"openstack-helm-{key}"


def package(root: Path | None = None, helm: Path | None = None) -> Path:
    """The packaged repository directory (``index.yaml`` + archives) of the charts under ``root``.

    ``root`` defaults to :func:`upstream_charts`. Packaging runs once per machine and content; a chart
    Helm cannot package is one TestbedError naming the chart and Helm's words.
    """
    root = upstream_charts() if root is None else root
    if not (root / LIBRARY_CHART / "Chart.yaml").is_file():
        raise TestbedError(NAME, f"{root} holds no OpenStack-Helm charts ({root}/{LIBRARY_CHART}/Chart.yaml missing)")
    target = repo_dir(root)
    if (target / INDEX).is_file():
        return target
    helm = helm or build.binary("helm")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"{target.name}.", dir=target.parent) as tmp:
        work = Path(tmp)
        out = work / "repo"
        out.mkdir()
        _package_all(root, helm, work, out)
        try:
            out.rename(target)  # atomic; a concurrent packager that won leaves its (equal) result
        except OSError:
            if not (target / INDEX).is_file():
                raise
    return target


def _package_all(root: Path, helm: Path, work: Path, out: Path) -> None:
    """Copy the charts beside each other (their ``file://../helm-toolkit`` must resolve), vendor the
    dependency, package every chart, then index the result."""
    source = work / "src"
    source.mkdir()
    names = sorted(p.parent.name for p in root.glob("*/Chart.yaml"))
    for name in names:
        shutil.copytree(root / name, source / name, ignore=shutil.ignore_patterns("charts", "Chart.lock", "*.tgz"))
    env = {"HELM_CACHE_HOME": str(work / "home" / "cache"), "HELM_CONFIG_HOME": str(work / "home" / "config"),
           "HELM_DATA_HOME": str(work / "home" / "data")}
    for name in names:
        _helm(helm, ["package", "--dependency-update", str(source / name), "--destination", str(out)], env, name)
    _helm(helm, ["repo", "index", str(out)], env, "*")
    index = yaml.safe_load((out / INDEX).read_text()) or {}
    missing = sorted(set(names) - set(index.get("entries") or {}))
    if missing:
        raise TestbedError(NAME, f"the packaged repository lacks {', '.join(missing)} (helm repo index in {out})")


def _helm(helm: Path, args: list[str], env: dict[str, str], chart: str) -> None:
    try:
        done = subprocess.run([str(helm), *args], env={**os.environ, **env}, capture_output=True,
                              text=True, timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TestbedError(NAME, f"chart {chart}: helm {args[0]} failed: {exc}") from exc
    if done.returncode != 0:
        raise TestbedError(NAME, f"chart {chart}: helm {' '.join(args[:2])} failed: "
                           f"{(done.stderr or done.stdout).strip()[-1000:]}")


class HelmRepo(Service):
    """``python -m http.server`` on 127.0.0.1:<free port> serving the packaged upstream charts."""

    name = NAME

    def __init__(self, directory: Path, charts: Path | None = None, python: str = sys.executable,
                 timeout: float = 30.0) -> None:
        super().__init__(directory)
        self.charts = charts
        self.python = python
        self.timeout = timeout
        self.port = 0
        self.served: Path | None = None
        self.startup_seconds = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.directory / "logs" / f"{NAME}.log"

    def start(self) -> None:
        started = time.monotonic()
        self.served = package(self.charts)
        self.port = process.free_port()
        argv = [self.python, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(self.served),
                str(self.port)]
        self._proc = process.start(NAME, argv, self.log_file, cwd=self.directory)
        try:
            state.record(self.directory, self._proc, helm_repo={"url": self.url, "served": str(self.served)})
            process.wait_ready(self._proc, self._serves_index, self.timeout, "serving index.yaml")
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started

    def _serves_index(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/{INDEX}", timeout=2) as response:
            return int(response.status) == 200
