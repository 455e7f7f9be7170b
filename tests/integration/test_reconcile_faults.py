"""The CLI, the webhook and the long-running process on the real test bed.

The faults themselves (bad specs, Git, renders, dry-run refusals, credentials, moves, kills) are
rows of the fault matrix in test_fault_matrix.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from reconciler.engine.loop import Loop
from reconciler.engine.webhook import WebhookServer
from testbed import bed, build, process

from .reconcile_support import (
    FIRST_SUCCESS,
    ConfigRepo,
    converged_cloud,
    metrics_once,
    stop,
)

pytestmark = pytest.mark.testbed


@pytest.fixture(scope="module")
def cloud(testbed: bed.TestBed, tmp_path_factory: pytest.TempPathFactory, helm_repo: str) -> dict[str, Any]:
    return converged_cloud(testbed, tmp_path_factory.mktemp("faults"), helm_repo)


def test_cli_exit_codes_and_status_table(testbed: bed.TestBed, cloud: dict[str, Any], tmp_path: Path) -> None:
    repo: ConfigRepo = cloud["repo"]
    env = {**os.environ, "KUBECONFIG": str(testbed.kubeconfig), "OPENSTACK_GITOPS_HELM": str(build.binary("helm"))}
    cli = [sys.executable, "-m", "reconciler.cli"]
    ok = subprocess.run([*cli, "reconcile", "--once", "--repo", str(repo.bare), "--workdir", str(tmp_path / "w")],
                        env=env, capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    table = subprocess.run([*cli, "status", "--namespace", repo.namespace], env=env, capture_output=True, text=True,
                           check=False)
    assert f"OpenStackDeployment {repo.namespace}/{repo.name}" in table.stdout
    assert "nova" in table.stdout and "keystone" in table.stdout
    as_json = subprocess.run([*cli, "status", "--namespace", repo.namespace, "-o", "json"], env=env,
                             capture_output=True, text=True, check=False)  # kubectl users type -o
    assert json.loads(as_json.stdout)["observedCommit"], as_json.stderr
    invalid = subprocess.run([*cli, "validate", str(repo.work)], env=env, capture_output=True, text=True, check=False)
    assert invalid.returncode == 0, invalid.stderr
    shutil.copytree(repo.work, tmp_path / "bad", ignore=shutil.ignore_patterns(".git"))
    (tmp_path / "bad" / "openstack.yaml").write_text((tmp_path / "bad" / "openstack.yaml").read_text()
                                                      .replace("size: small", "size: huge"))
    invalid = subprocess.run([*cli, "validate", str(tmp_path / "bad")], capture_output=True, text=True, check=False)
    assert invalid.returncode == 1 and "spec.size" in invalid.stderr and "expected" in invalid.stderr


def test_push_webhook_triggers_a_reconcile(testbed: bed.TestBed, cloud: dict[str, Any]) -> None:
    repo: ConfigRepo = cloud["repo"]
    loop = Loop(cloud["reconciler"], interval=3600)
    server = WebhookServer("127.0.0.1", 0, b"s3cret-s3cret", "main", lambda e: loop.trigger("push"))
    loop.start()
    server.start()
    try:
        assert loop.done.wait(120)
        loop.done.clear()
        commit = repo.edit(lambda d: d["spec"]["overrides"]["nova"]["conf"]["nova"]["DEFAULT"].update(
            cpu_allocation_ratio=2.0), "nova: ratio 2")
        body = json.dumps({"ref": "refs/heads/main", "after": commit}).encode()
        sig = "sha256=" + hmac.new(b"s3cret-s3cret", body, hashlib.sha256).hexdigest()
        req = urllib.request.Request(f"http://127.0.0.1:{server.port}/hooks/github", data=body, method="POST",
                                     headers={"X-Hub-Signature-256": sig, "X-GitHub-Event": "push",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 202
        assert loop.done.wait(60), "the push did not trigger a reconcile"
        assert loop.last is not None and loop.last.commit == commit and loop.last.ok
        cloud["good"] = commit
    finally:
        server.stop()
        loop.stop()


def test_render_command_writes_every_chart_without_credentials(tmp_path: Path, helm_repo: str) -> None:
    env = {**os.environ, "OPENSTACK_GITOPS_HELM": str(build.binary("helm"))}
    template = ConfigRepo(tmp_path / "repo", helm_repo).work  # the template, its charts from the loopback repo
    done = subprocess.run([sys.executable, "-m", "reconciler.cli", "render", str(template), "--out", str(tmp_path)],
                          env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    files = {p.stem for p in tmp_path.glob("*.yaml")}
    assert {"keystone", "nova", "neutron", "mariadb", "rabbitmq", "horizon"} <= files
    nova = (tmp_path / "nova.yaml").read_text()
    assert "kind: DaemonSet" in nova and "nova-compute-default" in nova


def test_long_running_process_serves_metrics_and_stops_on_sigterm(testbed: bed.TestBed, cloud: dict[str, Any],
                                                                  tmp_path: Path) -> None:
    """The real `openstack-gitops reconcile` loop: /metrics over HTTP, then a clean SIGTERM exit."""
    repo: ConfigRepo = cloud["repo"]
    port = process.free_port()
    secret = tmp_path / "webhook-secret"
    secret.write_text("0123456789abcdef")
    env = {**os.environ, "KUBECONFIG": str(testbed.kubeconfig), "OPENSTACK_GITOPS_HELM": str(build.binary("helm"))}
    proc = subprocess.Popen([sys.executable, "-m", "reconciler.cli", "--log-json", "reconcile", "--repo",
                             str(repo.bare), "--workdir", str(tmp_path / "w"), "--metrics-port", str(port),
                             "--webhook-port", str(process.free_port()), "--webhook-secret-file", str(secret),
                             "--interval", "3600", "--lease-namespace", "default"],  # leader election: on by default
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        text = metrics_once(port, timeout=90)
        if FIRST_SUCCESS not in text:
            proc.kill()
            pytest.fail(f"no successful reconcile: {proc.communicate()[1][-3000:]}")
        assert 'openstack_gitops_reconcile_total{reason="Applied",result="success"} 1.0' in text
        assert 'openstack_gitops_reconcile_progress_ratio{phase="read"} 1.0' in text
    finally:
        err = stop(proc, timeout=30)
    assert proc.returncode == 0, f"did not exit cleanly on SIGTERM: {err[-2000:]}"
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(line["msg"] == "reconciled" and line["ok"] for line in lines)
    credentials = client.CoreV1Api(testbed.api_client()).read_namespaced_secret(
        f"{repo.name}-credentials", repo.namespace).data
    for value in credentials.values():
        assert base64.b64decode(value).decode() not in err  # never a credential in the logs
