"""The Helm edge's own temporary directory goes away: on close(), with `with`, and when a process exits."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.edges.helm import ChartRef, Helm, HelmError
from testbed import bed, build, process
from testbed.charts import upstream_charts

from .reconcile_support import FIRST_SUCCESS, ConfigRepo, metrics_once, stop

KEYSTONE = ChartRef("keystone", "directory", str(upstream_charts() / "keystone"))  # upstream's Git layout
PREFIX = "openstack-gitops-helm-"


def render_keystone(helm: Helm) -> str:
    return helm.render("keystone", KEYSTONE, "openstack", {"pod": {"replicas": {"api": 2}}}, "v1.36.3")


def helm_dirs(tmpdir: Path) -> list[str]:
    return sorted(p.name for p in tmpdir.glob(f"{PREFIX}*"))


@pytest.fixture
def tmpdir_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh TMPDIR for this process (tempfile caches its choice, so reset that too)."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    monkeypatch.setattr("tempfile.tempdir", None)
    return tmpdir


def test_close_removes_the_temporary_workdir_and_refuses_more_renders(tmpdir_env: Path) -> None:
    helm = Helm(str(build.binary("helm")))
    assert helm.workdir.parent == tmpdir_env and helm.workdir.name.startswith(PREFIX)
    assert "replicas: 2" in render_keystone(helm)
    assert [p.name for p in helm.workdir.rglob("*")] == ["staged"]  # the chart's copy lived for one render

    helm.close()
    helm.close()  # idempotent

    assert (helm.closed, helm_dirs(tmpdir_env)) == (True, [])
    with pytest.raises(HelmError, match="closed"):
        render_keystone(helm)
    assert helm_dirs(tmpdir_env) == []  # a refused render re-creates nothing


def test_context_manager_removes_the_workdir_also_on_error(tmpdir_env: Path) -> None:
    with Helm(str(build.binary("helm"))) as helm:
        assert "replicas: 2" in render_keystone(helm)
        assert helm_dirs(tmpdir_env) == [helm.workdir.name]
    assert helm_dirs(tmpdir_env) == []

    broken = tmpdir_env / "broken"
    (broken / "templates").mkdir(parents=True)
    (broken / "Chart.yaml").write_text("apiVersion: v2\nname: broken\nversion: 0.1.0\n")
    (broken / "templates" / "fail.yaml").write_text('{{ fail "broken on purpose" }}\n')
    with pytest.raises(HelmError, match="broken on purpose"), Helm(str(build.binary("helm"))) as failing:
        failing.render("broken", ChartRef("broken", "directory", str(broken)), "openstack", {}, "v1.36.3")
    assert helm_dirs(tmpdir_env) == []


def test_dropped_helm_removes_its_workdir(tmpdir_env: Path) -> None:
    helm = Helm(str(build.binary("helm")))
    render_keystone(helm)
    del helm  # CPython frees it at once; the finalizer runs then (or at interpreter exit at the latest)
    assert helm_dirs(tmpdir_env) == []


def test_workdir_given_by_the_caller_stays(tmp_path: Path) -> None:
    workdir = tmp_path / "mine"
    workdir.mkdir()
    (workdir / "keep.txt").write_text("the caller's\n")
    with Helm(str(build.binary("helm")), workdir) as helm:
        assert "replicas: 2" in render_keystone(helm)
    assert (workdir / "keep.txt").read_text() == "the caller's\n"
    assert [p.name for p in (workdir / "staged").iterdir()] == []


def test_render_command_leaves_no_helm_directory_behind(tmp_path: Path, helm_repo: str) -> None:
    """`openstack-gitops render` never calls close(): the process exit must clean up."""
    template = ConfigRepo(tmp_path / "repo", helm_repo).work  # the template, its charts from the loopback repo
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = {**os.environ, "OPENSTACK_GITOPS_HELM": str(build.binary("helm")), "TMPDIR": str(tmpdir)}
    done = subprocess.run([sys.executable, "-m", "reconciler.cli", "render", str(template), "--out",
                           str(tmp_path / "out")], env=env, capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "out").glob("*.yaml"))) >= 10
    assert helm_dirs(tmpdir) == []


@pytest.mark.testbed
def test_reconcile_loop_stopped_by_sigterm_leaves_no_helm_directory(testbed: bed.TestBed, tmp_path: Path,
                                                                    helm_repo: str) -> None:
    """The long-running loop holds its Helm and its checkout until the end; SIGTERM ends it as a normal
    exit, which removes both (the repo comes from the environment, so no token would show in ps)."""
    repo = ConfigRepo(tmp_path / "repo", helm_repo)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    port = process.free_port()
    env = {**os.environ, "KUBECONFIG": str(testbed.kubeconfig), "OPENSTACK_GITOPS_HELM": str(build.binary("helm")),
           "TMPDIR": str(tmpdir), "OPENSTACK_GITOPS_REPO": str(repo.bare)}
    proc = subprocess.Popen([sys.executable, "-m", "reconciler.cli", "reconcile",
                             "--metrics-port", str(port), "--interval", "3600", "--lease-namespace", "default"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        text = metrics_once(port)
        rendered = helm_dirs(tmpdir)
        checkouts = list(tmpdir.glob("openstack-gitops-repo-*"))
    finally:
        err = stop(proc)
    assert FIRST_SUCCESS in text, err[-3000:]
    assert len(rendered) == 1 and len(checkouts) == 1  # it did render and check out through temporary dirs
    assert proc.returncode == 0, err[-3000:]
    assert helm_dirs(tmpdir) == []
    assert list(tmpdir.glob("openstack-gitops-repo-*")) == []
