"""The README's main command: a local cloud from the template config repo, reconciled until it converges.

Builds and starts the test bed, serves the upstream OpenStack-Helm charts as a Helm repository on
loopback (testbed/helmrepo.py) and a Git repo made from ``config-repo-template/`` over git://, its
``charts.source`` pointed at that local repository instead of upstream's (the one change to the
template). Then it runs the product's own CLI (``openstack-gitops reconcile --once --wait``) against
it and ends with ``openstack-gitops status``. The test bed stays up for exploring; the last lines
say how to use it and how to stop it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from testbed import bed, build
from testbed.charts import UPSTREAM_HELM_REPO
from testbed.errors import TestbedError
from testbed.gitserver import GitServer
from testbed.helmrepo import HelmRepo

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = REPO_ROOT / "config-repo-template"
SPEC_FILE = "openstack.yaml"


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def local_template(target: Path, helm_url: str) -> Path:
    """A copy of the template whose ``spec.charts.source`` is the local Helm repository.

    The URL is replaced in the text, so the operator's copy keeps the template's comments; the result
    is read back to prove the spec now names ``helm_url``."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(TEMPLATE, target)
    spec = target / SPEC_FILE
    spec.write_text(spec.read_text().replace(f"url: {UPSTREAM_HELM_REPO}", f"url: {helm_url}"))
    source = (yaml.safe_load(spec.read_text())["spec"].get("charts") or {}).get("source") or {}
    if source != {"type": "helm", "url": helm_url}:
        raise TestbedError("demo", f"{TEMPLATE / SPEC_FILE}: spec.charts.source is {source}, expected "
                           f"{{type: helm, url: {UPSTREAM_HELM_REPO}}} to point at the local Helm repository")
    return target


def run(directory: Path | None = None, control_plane: int = 3, compute: int = 5, timeout: float = 600) -> int:
    directory = directory or bed.DEFAULT_ROOT / "demo"
    _log(f"demo: starting the test bed in {directory} ({control_plane} control-plane + {compute} compute nodes)")
    tb = bed.up(directory, control_plane=control_plane, compute=compute, log=_log)
    charts = HelmRepo(directory)  # both recorded in the test bed's state: `down` stops them too
    charts.start()
    _log(f"demo: the upstream OpenStack-Helm charts as a Helm repository at {charts.url}")
    server = GitServer(directory)
    server.start()
    url = server.create_repo("config", local_template(directory / "config-template", charts.url))
    _log(f"demo: config repo {url} (clone it, edit openstack.yaml, push, and reconcile again)")
    cli = [sys.executable, "-m", "reconciler.cli"]
    env = {**os.environ, "KUBECONFIG": str(tb.kubeconfig), "OPENSTACK_GITOPS_HELM": str(build.binary("helm"))}
    code = subprocess.run([*cli, "reconcile", "--once", "--wait", str(timeout), "--repo", url, "--branch", "main",
                           "--workdir", str(directory / "checkout")], env=env, check=False).returncode
    subprocess.run([*cli, "status", "--namespace", "openstack"], env=env, check=False)
    _log("")
    _log(f"demo: the test bed is still up: export KUBECONFIG={tb.kubeconfig}")
    _log(f"demo: reconcile again: OPENSTACK_GITOPS_HELM={build.binary('helm')} KUBECONFIG={tb.kubeconfig} "
         f"{REPO_ROOT / '.venv/bin/openstack-gitops'} reconcile --once --repo {url}")
    _log(f"demo: stop everything: .venv/bin/python -m testbed --dir {directory} down")
    return code
