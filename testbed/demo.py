"""The README's main command: a local cloud from the template config repo, reconciled until it converges.

Builds and starts the test bed, serves a Git repo made from ``config-repo-template/`` over
git://, runs the product's own CLI (``openstack-gitops reconcile --once --wait``) against it and
ends with ``openstack-gitops status``. The test bed stays up for exploring; the last lines say
how to use it and how to stop it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from testbed import bed, build
from testbed.gitserver import GitServer

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = REPO_ROOT / "config-repo-template"


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(directory: Path | None = None, control_plane: int = 3, compute: int = 5, timeout: float = 600) -> int:
    directory = directory or bed.DEFAULT_ROOT / "demo"
    _log(f"demo: starting the test bed in {directory} ({control_plane} control-plane + {compute} compute nodes)")
    tb = bed.up(directory, control_plane=control_plane, compute=compute, log=_log)
    server = GitServer(directory)  # recorded in the test bed's state: `down` stops git daemon too
    server.start()
    url = server.create_repo("config", TEMPLATE)
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
