"""The Helm edge: ``helm template`` of one chart with our values, cached by (chart digest, values hash).

Values go to Helm on stdin, never to a file, because they hold generated credentials.

Helm needs a directory of its own: its cache/config/data homes (only `--repo` charts put anything there:
the downloaded chart archive) and, for the length of one `helm template`, a copy of a directory chart
with its file:// dependencies vendored into charts/ (Helm reads no file:// dependency by itself). Copies
are removed after each render, so the directory does not grow with every chart change a long-running
process sees. Unless the caller passes a directory, `Helm` makes a temporary one and removes it on
`close()`, when the object is garbage-collected, or at interpreter exit, whichever comes first; so a
process that never calls close() (a CLI command, a SIGTERM handled as a normal exit) leaves nothing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
import weakref
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import yaml

from openstack_gitops.canonical import canonical_json


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


def check_directory_chart(chart: ChartRef) -> None:
    """A directory chart and each of its file:// dependencies exist (as upstream's Git lays them out:
    ``helm-toolkit`` beside the chart); anything else is one HelmError naming the chart."""
    source = Path(chart.location)
    if not (source / "Chart.yaml").is_file():
        raise HelmError(chart.name, f"{source}/Chart.yaml not found: the chart is missing from the chart source")
    try:
        deps = _file_dependencies(source)
    except (OSError, yaml.YAMLError, AttributeError) as exc:
        raise HelmError(chart.name, f"{source}/Chart.yaml is unreadable: {exc}") from exc
    for dep in deps:
        if not (dep / "Chart.yaml").is_file():
            raise HelmError(chart.name, f"its file:// dependency {dep.name} is missing ({dep}/Chart.yaml not found; "
                            "the chart source must hold it beside the chart, as upstream's Git does)")


class Helm:
    """Renders charts with a real Helm binary; thread-safe; keeps the last renders in memory.

    `workdir` given: it stays the caller's, untouched by close(). Not given: a private temporary
    directory that close() (or `with Helm(...) as helm:`) removes; see the module docstring.
    """

    def __init__(self, binary: str, workdir: Path | None = None, timeout: float = 90.0, cache_size: int = 256) -> None:
        self.binary = binary
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="openstack-gitops-helm-"))
        # The finalizer holds only the path (not self), so it also fires on garbage collection and at exit.
        self._remove_workdir = (weakref.finalize(self, shutil.rmtree, str(self.workdir), ignore_errors=True)
                                if workdir is None else None)
        self._closed = False
        self.timeout = timeout
        self._cache: OrderedDict[str, str] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self.renders = 0  # how many times Helm actually ran (cache misses)
        self._env = {**os.environ, "HELM_CACHE_HOME": str(self.workdir / "cache"),
                     "HELM_CONFIG_HOME": str(self.workdir / "config"),
                     "HELM_DATA_HOME": str(self.workdir / "data")}

    def close(self) -> None:
        """Remove the temporary workdir this object created (idempotent); call it after the last render.

        Later renders raise HelmError rather than silently re-creating files nobody would remove."""
        self._closed = True
        if self._remove_workdir is not None:
            self._remove_workdir()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def version(self) -> str:
        return self._run(["version", "--short"], chart="*").strip()

    def render(self, release: str, chart: ChartRef, namespace: str, values: Mapping[str, Any],
               kube_version: str, api_versions: Sequence[str] = ()) -> str:
        if self._closed:
            raise HelmError(chart.name, "this Helm was closed")
        values_json = canonical_json(values)
        if chart.source == "directory":
            check_directory_chart(chart)
            digest = directory_digest(Path(chart.location))
        else:
            digest = f"{chart.source}:{chart.location}:{chart.name}:{chart.version}"
        key = hashlib.sha256("\0".join(
            [release, digest, namespace, kube_version, *api_versions, values_json]).encode()).hexdigest()
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        staged = self._stage(chart) if chart.source == "directory" else None
        try:
            args = ["template", release, *self._chart_args(chart, staged), "--namespace", namespace,
                    "--kube-version", kube_version, "--include-crds", "--values", "-"]
            for api_version in api_versions:
                args += ["--api-versions", api_version]
            out = self._run(args, chart=chart.name, stdin=values_json)
        finally:
            if staged is not None:
                shutil.rmtree(staged.parent, ignore_errors=True)
        with self._lock:
            self.renders += 1
            self._cache[key] = out
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return out

    def _chart_args(self, chart: ChartRef, staged: Path | None) -> list[str]:
        if staged is not None:
            return [str(staged)]
        if chart.source == "helm":
            return [chart.name, "--repo", chart.location, *(["--version", chart.version] if chart.version else [])]
        if chart.source == "oci":
            ref = f"{chart.location.rstrip('/')}/{chart.name}"
            return [ref, *(["--version", chart.version] if chart.version else [])]
        raise HelmError(chart.name, f"unknown chart source {chart.source!r}")

    def _stage(self, chart: ChartRef) -> Path:
        """Copy a directory chart, with its file:// dependencies vendored, into a directory of this render's
        own (so parallel renders never share one); the caller removes its parent after Helm ran."""
        source = Path(chart.location)
        staging = self.workdir / "staged"
        staging.mkdir(parents=True, exist_ok=True)
        target = Path(tempfile.mkdtemp(dir=staging)) / source.name
        try:
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("charts", "Chart.lock"))
            charts_dir = target / "charts"
            charts_dir.mkdir(exist_ok=True)
            for dep in _file_dependencies(source):
                shutil.copytree(dep, charts_dir / dep.name)
        except BaseException as exc:
            shutil.rmtree(target.parent, ignore_errors=True)
            if isinstance(exc, OSError):
                raise HelmError(chart.name, f"cannot copy the chart from {source}: {exc}") from exc
            raise
        return target

    def _run(self, args: list[str], chart: str, stdin: str | None = None) -> str:
        if self._closed:
            raise HelmError(chart, "this Helm was closed")
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
