"""Where the test bed, the tests, the demo and the benchmarks find the upstream OpenStack-Helm charts.

Always the real, unmodified charts. Looked up in this order:
1. the directory named by ``$OPENSTACK_GITOPS_CHARTS`` (a checkout of upstream's Git layout);
2. ``../shared/openstack-helm`` beside this checkout;
3. a clone of the upstream Git repository at the pinned commit, kept in the same cache as the
   built Go binaries (``$OPENSTACK_GITOPS_CACHE`` or ``~/.cache/openstack-gitops``).
A source that cannot be found or cloned is one TestbedError naming the three ways.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from testbed.build import cache_root
from testbed.errors import TestbedError

ENV_VAR = "OPENSTACK_GITOPS_CHARTS"
UPSTREAM_GIT = "https://opendev.org/openstack/openstack-helm"
UPSTREAM_COMMIT = "0ee5adeffcaefb6f7a78bb23bf845414672e6827"  # 2026-08-20, every chart at 2026.1.0
UPSTREAM_HELM_REPO = "https://tarballs.opendev.org/openstack/openstack-helm"
CHART_VERSION = "2026.1.0"
BESIDE_CHECKOUT = Path(__file__).resolve().parents[2] / "shared" / "openstack-helm"
LIBRARY_CHART = "helm-toolkit"


def _is_chart_tree(path: Path) -> bool:
    return (path / LIBRARY_CHART / "Chart.yaml").is_file() and (path / "nova" / "Chart.yaml").is_file()


def cache_dir() -> Path:
    return cache_root() / "charts" / f"openstack-helm-{UPSTREAM_COMMIT[:12]}"


def upstream_charts(clone: bool = True) -> Path:
    """The directory holding the upstream charts (one sub-directory per chart, helm-toolkit unbuilt)."""
    env = os.environ.get(ENV_VAR)
    if env:
        if not _is_chart_tree(Path(env)):
            raise TestbedError("charts", f"${ENV_VAR}={env} holds no OpenStack-Helm charts "
                               f"(expected {env}/{LIBRARY_CHART}/Chart.yaml and {env}/nova/Chart.yaml)")
        return Path(env).resolve()
    if _is_chart_tree(BESIDE_CHECKOUT):
        return BESIDE_CHECKOUT
    cached = cache_dir()
    if _is_chart_tree(cached):
        return cached
    if clone:
        try:
            return _clone(cached)
        except (OSError, subprocess.SubprocessError) as exc:
            detail = getattr(exc, "stderr", "") or str(exc)
            why = f"cloning {UPSTREAM_GIT} failed: {str(detail).strip()[-300:]}"
            raise TestbedError("charts", _missing(why)) from exc
    raise TestbedError("charts", _missing("no clone in the cache"))


def _missing(why: str) -> str:
    return (f"the upstream OpenStack-Helm charts were not found ({why}). Give them one of three ways: "
            f"set ${ENV_VAR} to a directory of the charts; put them at {BESIDE_CHECKOUT}; or let the test bed "
            f"clone {UPSTREAM_GIT} at {UPSTREAM_COMMIT[:12]} into {cache_dir()} (needs network access)")


def _clone(target: Path) -> Path:
    """Fetch exactly the pinned commit into a temporary directory, then move it into place."""
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)

    def run(*args: str) -> None:
        subprocess.run(["git", *args], cwd=partial, check=True, capture_output=True, text=True, timeout=600)

    run("init", "-q")
    run("fetch", "-q", "--depth", "1", UPSTREAM_GIT, UPSTREAM_COMMIT)
    run("checkout", "-q", "FETCH_HEAD")
    shutil.rmtree(partial / ".git", ignore_errors=True)
    partial.rename(target)
    return target


def app_charts(root: Path) -> tuple[str, ...]:
    """Every application chart of the tree (not the library), sorted."""
    return tuple(sorted(p.parent.name for p in root.glob("*/Chart.yaml") if p.parent.name != LIBRARY_CHART))
