"""The Helm edge: ``helm template`` of one chart with our values, cached by (chart digest, values hash).

Values go to Helm on stdin, never to a file, because they hold generated credentials.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class HelmError(Exception):
    """Helm failed for one chart; the message names the chart and carries Helm's own words."""

    def __init__(self, chart: str, message: str) -> None:
        self.chart = chart
        super().__init__(f"chart {chart}: {message}")


@dataclass(frozen=True)
class ChartRef:
    """Where a chart comes from: a directory in the config repo, a Helm repository, or OCI."""

    name: str
    source: str  # "directory" | "helm" | "oci"
    location: str  # directory path, repository URL, or oci:// prefix
    version: str = ""


def find_helm(explicit: str | None = None) -> str:
    candidate = explicit or os.environ.get("OPENSTACK_GITOPS_HELM") or shutil.which("helm")
    if not candidate or not Path(candidate).exists():
        raise HelmError("*", "no helm binary: pass --helm, set OPENSTACK_GITOPS_HELM, or put helm on PATH")
    return candidate


def directory_digest(chart_dir: Path) -> str:
    """sha256 over every file of a chart and of its file:// dependencies."""
    digest = hashlib.sha256()
    for directory in [chart_dir, *_file_dependencies(chart_dir)]:
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            digest.update(str(path.relative_to(directory.parent)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _file_dependencies(chart_dir: Path) -> list[Path]:
    chart = yaml.safe_load((chart_dir / "Chart.yaml").read_text()) or {}
    deps = []
    for dep in chart.get("dependencies") or []:
        repo = str(dep.get("repository", ""))
        if repo.startswith("file://"):
            deps.append((chart_dir / repo.removeprefix("file://")).resolve())
    return deps


class Helm:
    """Renders charts with a real Helm binary; thread-safe; keeps the last renders in memory."""

    def __init__(self, binary: str, workdir: Path | None = None, timeout: float = 90.0, cache_size: int = 256) -> None:
        self.binary = binary
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="openstack-gitops-helm-"))
        self.timeout = timeout
        self._cache: OrderedDict[str, str] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._staged: dict[str, Path] = {}
        self.renders = 0  # how many times Helm actually ran (cache misses)
        self._env = {**os.environ, "HELM_CACHE_HOME": str(self.workdir / "cache"),
                     "HELM_CONFIG_HOME": str(self.workdir / "config"),
                     "HELM_DATA_HOME": str(self.workdir / "data")}

    def version(self) -> str:
        return self._run(["version", "--short"], chart="*").strip()

    def render(self, release: str, chart: ChartRef, namespace: str, values: Mapping[str, Any],
               kube_version: str, api_versions: Sequence[str] = ()) -> str:
        values_json = json.dumps(values, sort_keys=True, separators=(",", ":"))
        if chart.source == "directory":
            digest = directory_digest(Path(chart.location))
        else:
            digest = f"{chart.source}:{chart.location}:{chart.name}:{chart.version}"
        key = hashlib.sha256("\0".join(
            [release, digest, namespace, kube_version, *api_versions, values_json]).encode()).hexdigest()
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        args = ["template", release, *self._chart_args(chart, digest), "--namespace", namespace,
                "--kube-version", kube_version, "--include-crds", "--values", "-"]
        for api_version in api_versions:
            args += ["--api-versions", api_version]
        out = self._run(args, chart=chart.name, stdin=values_json)
        with self._lock:
            self.renders += 1
            self._cache[key] = out
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return out

    def _chart_args(self, chart: ChartRef, digest: str) -> list[str]:
        if chart.source == "directory":
            return [str(self._stage(chart, digest))]
        if chart.source == "helm":
            return [chart.name, "--repo", chart.location, *(["--version", chart.version] if chart.version else [])]
        if chart.source == "oci":
            ref = f"{chart.location.rstrip('/')}/{chart.name}"
            return [ref, *(["--version", chart.version] if chart.version else [])]
        raise HelmError(chart.name, f"unknown chart source {chart.source!r}")

    def _stage(self, chart: ChartRef, digest: str) -> Path:
        """Copy a directory chart once per digest and vendor its file:// dependencies."""
        with self._lock:
            if digest in self._staged:
                return self._staged[digest]
        source = Path(chart.location)
        if not (source / "Chart.yaml").exists():
            raise HelmError(chart.name, f"{source}/Chart.yaml not found")
        target = self.workdir / "staged" / digest[:16] / source.name
        if not target.exists():
            tmp = target.with_name(source.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(source, tmp, ignore=shutil.ignore_patterns("charts", "Chart.lock"))
            charts_dir = tmp / "charts"
            charts_dir.mkdir(exist_ok=True)
            for dep in _file_dependencies(source):
                shutil.copytree(dep, charts_dir / dep.name)
            tmp.rename(target)
        with self._lock:
            self._staged[digest] = target
        return target

    def _run(self, args: list[str], chart: str, stdin: str | None = None) -> str:
        try:
            proc = subprocess.run([self.binary, *args], input=stdin, capture_output=True, text=True,
                                  timeout=self.timeout, env=self._env, check=False)
        except subprocess.TimeoutExpired as exc:
            raise HelmError(chart, f"helm did not finish within {self.timeout:.0f}s") from exc
        except OSError as exc:
            raise HelmError(chart, f"cannot run helm ({self.binary}): {exc}") from exc
        if proc.returncode != 0:
            raise HelmError(chart, proc.stderr.strip() or f"helm exited with {proc.returncode}")
        return proc.stdout
