"""Helpers for reconciler tests on the real test bed: a real Git config repo and a reconciler."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from openstack_gitops.api import Process
from openstack_gitops.kube.client import Cluster
from reconciler.edges.git import GitSource
from reconciler.edges.helm import Helm
from reconciler.engine import status
from reconciler.engine.metrics import Metrics
from reconciler.engine.outcome import Outcome
from reconciler.engine.reconcile import Reconciler
from testbed import bed, build

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "config-repo-template"
CHARTS_DIR = "charts"  # where ConfigRepo copies a directory of charts (spec.charts.source.path)
GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.invalid",
           "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.invalid"}
AUDIT_LAG = 0.5  # the audit log's ResponseComplete line lands just after the response
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
RECONCILER_AGENT = Process.RECONCILER.user_agent  # the audit log counts the reconciler by this


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True, text=True).stdout


def chart_source(charts: str | Path) -> dict[str, str]:
    """The spec's ``charts.source`` for a Helm repository URL (``helm_repo``) or a chart directory."""
    if isinstance(charts, Path):
        return {"type": "directory", "path": CHARTS_DIR}
    return {"type": "helm", "url": charts}


class ConfigRepo:
    """A bare repo (what the reconciler follows) and a work clone (what the operator edits).

    ``charts`` is where the charts come from: the URL of a Helm repository (the ``helm_repo`` fixture,
    as operators get the charts), or a directory of charts (e.g. ``upstream_charts()``), copied into the
    repo's ``charts/`` so a test can edit a chart in Git.
    """

    def __init__(self, root: Path, charts: str | Path, name: str | None = None,
                 namespace: str | None = None) -> None:
        suffix = uuid.uuid4().hex[:6]
        self.name = name or f"cloud-{suffix}"
        self.namespace = namespace or f"os-{suffix}"
        root.mkdir(parents=True, exist_ok=True)
        self.bare = root / "config.git"
        self.work = root / "work"
        self.chart_source = chart_source(charts)
        git(root, "init", "-q", "--bare", "-b", "main", str(self.bare))
        shutil.copytree(TEMPLATE, self.work)
        if isinstance(charts, Path):
            copy_charts(charts, self.work / CHARTS_DIR)
        git(self.work, "init", "-q", "-b", "main")
        git(self.work, "remote", "add", "origin", str(self.bare))
        self.edit(lambda doc: doc["spec"].setdefault("charts", {}).update(source=dict(self.chart_source)),
                  "initial config")

    @property
    def spec_path(self) -> Path:
        return self.work / "openstack.yaml"

    def edit(self, change: Callable[[dict[str, Any]], None], message: str) -> str:
        """Apply ``change`` to the spec document, commit and push; returns the new commit SHA."""
        doc = yaml.safe_load(self.spec_path.read_text())
        doc["metadata"]["name"] = self.name
        doc["spec"]["namespace"] = self.namespace
        change(doc)
        self.spec_path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return self.commit(message)

    def write(self, relative: str, text: str, message: str) -> str:
        path = self.work / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return self.commit(message)

    def commit(self, message: str) -> str:
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "--allow-empty", "-m", message)
        git(self.work, "push", "-q", "--force", "origin", "HEAD:main")
        return git(self.work, "rev-parse", "HEAD").strip()


def copy_charts(source: Path, target: Path) -> None:
    """Every chart directory of ``source`` as upstream's Git has it (helm-toolkit an unbuilt file://
    dependency), without anything else of the checkout (LICENSE, README)."""
    target.mkdir(parents=True, exist_ok=True)
    for chart_yaml in sorted(source.glob("*/Chart.yaml")):
        shutil.copytree(chart_yaml.parent, target / chart_yaml.parent.name)


def make_reconciler(testbed: bed.TestBed, repo_url: str, workdir: Path, branch: str = "main",
                    metrics: Metrics | None = None) -> Reconciler:
    cluster = Cluster(testbed.api_client("openstack-gitops"))
    status.ensure_crd(cluster)
    helm = Helm(str(build.binary("helm")), workdir / "helm")
    return Reconciler(cluster, helm, GitSource(repo_url, branch, workdir / "checkout", timeout=20), metrics)


def writes_during(testbed: bed.TestBed, action: Callable[[], Outcome]) -> tuple[Outcome, Counter[str]]:
    """Run ``action`` and count the reconciler's write requests in the audit log meanwhile."""
    before = testbed.requests_by(user_agent_prefix=RECONCILER_AGENT)
    outcome = action()
    time.sleep(AUDIT_LAG)
    after = testbed.requests_by(user_agent_prefix=RECONCILER_AGENT)
    delta = Counter({verb: after[verb] - before[verb] for verb in after if verb in WRITE_VERBS})
    return outcome, +delta


def reconcile_until_converged(reconciler: Reconciler, attempts: int = 30) -> Outcome:
    outcome = reconciler.reconcile()
    for _ in range(attempts):
        if not outcome.ok or outcome.converged:
            return outcome
        time.sleep(1)
        outcome = reconciler.reconcile()
    return outcome


def object_writes_during(testbed: bed.TestBed, action: Callable[[], Outcome]) -> tuple[Outcome, list[str]]:
    """Run ``action``; list the reconciler's writes to managed objects, as ``verb resource/name``.

    Its own bookkeeping is left out (the custom resource's status, Events, the inventory ConfigMap);
    server-side dry-runs are listed with a ``dry-run`` prefix.
    """
    before = len(testbed.audit_events(user_agent_prefix=RECONCILER_AGENT))
    outcome = action()
    time.sleep(AUDIT_LAG)
    events = testbed.audit_events(user_agent_prefix=RECONCILER_AGENT)[before:]
    out = []
    for event in events:
        ref = event.get("objectRef") or {}
        if event.get("verb") not in WRITE_VERBS or ref.get("resource") in ("events", "openstackdeployments"):
            continue
        if str(ref.get("name", "")).endswith("-inventory"):
            continue
        dry = "dry-run " if "dryRun=All" in str(event.get("requestURI", "")) else ""
        out.append(f"{dry}{event['verb']} {ref.get('resource')}/{ref.get('name')}")
    return outcome, out


def converged_cloud(testbed: bed.TestBed, root: Path, charts: str | Path) -> dict[str, Any]:
    """A config repo from the template (charts from ``charts``, see ConfigRepo) and a reconciler that has
    converged it on the test bed."""
    repo = ConfigRepo(root, charts)
    reconciler = make_reconciler(testbed, str(repo.bare), root)
    first = reconcile_until_converged(reconciler, attempts=90)
    assert first.ok, first.message
    # one more pass records the converged state, as the loop's next pass would: the install's own pass
    # may converge already (its hooks take long enough), and then its status still says what it applied
    settled = reconciler.reconcile()
    assert settled.ok, settled.message
    return {"repo": repo, "reconciler": reconciler, "first": first, "root": root, "good": first.commit}


FIRST_SUCCESS = "openstack_gitops_last_applied_commit_info{"  # exported once a reconcile succeeded


def metrics_once(port: int, needle: str = FIRST_SUCCESS, timeout: float = 120) -> str:
    """The /metrics text of a reconcile process once it holds ``needle`` (what it was last, on timeout)."""
    deadline = time.monotonic() + timeout
    text = ""
    while needle not in text and time.monotonic() < deadline:
        time.sleep(1)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
                text = resp.read().decode()
        except OSError:
            continue
    return text


def stop(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    """SIGTERM a reconcile process and return its stderr; kill it if it hangs (the caller's
    assertions on its exit code report the hang), so a test never leaves it running."""
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err or ""
