"""Bad input and faults: nothing is written, the previous state stays, the error is reported."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, dynamic

from reconciler.engine.loop import Loop
from reconciler.engine.webhook import WebhookServer
from testbed import bed, build, process

from .reconcile_support import (
    ConfigRepo,
    converged_cloud,
    git,
    object_writes_during,
)

pytestmark = pytest.mark.testbed


@pytest.fixture(scope="module")
def cloud(testbed: bed.TestBed, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return converged_cloud(testbed, tmp_path_factory.mktemp("faults"))


def cr_status(testbed: bed.TestBed, repo: ConfigRepo) -> dict[str, Any]:
    with testbed.api_client() as api:
        cr = client.CustomObjectsApi(api).get_namespaced_custom_object(
            "openstack-gitops.io", "v1alpha1", repo.namespace, "openstackdeployments", repo.name)
    return dict(cr["status"])


def events(testbed: bed.TestBed, repo: ConfigRepo, reason: str) -> list[str]:
    """Notes of our Events (read untyped: the typed client refuses controllers' Events without eventTime)."""
    with testbed.api_client() as api:
        res = dynamic.DynamicClient(api).resources.get(api_version="events.k8s.io/v1", kind="Event")
        items = res.get(namespace=repo.namespace).to_dict()["items"]
    return [str(e.get("note", "")) for e in items if e.get("reason") == reason]


def restore(cloud: dict[str, Any]) -> None:
    repo: ConfigRepo = cloud["repo"]
    git(repo.work, "reset", "-q", "--hard", cloud["good"])
    git(repo.work, "push", "-q", "--force", "origin", "HEAD:main")
    outcome = cloud["reconciler"].reconcile()
    assert outcome.ok, outcome.message


BAD_SPECS = {
    "malformed-yaml": ("openstack.yaml", "spec:\n  release: '2025.1'\n  size: [small\n", "SpecInvalid",
                       "openstack.yaml:4: malformed YAML"),
    "schema-unknown-size": (None, lambda d: d["spec"].update(size="huge"), "SpecInvalid", "spec.size"),
    "meaning-dependency-off": (None, lambda d: d["spec"]["services"]["mariadb"].update(enabled=False),
                               "SpecInvalid", "mariadb"),
    "every-service-off": (None, lambda d: [s.update(enabled=False) for s in d["spec"]["services"].values()],
                          "SpecInvalid", "every service"),
    "unknown-release": (None, lambda d: d["spec"].update(release="2099.1"), "SpecInvalid", "2099.1"),
}


@pytest.mark.parametrize("case", BAD_SPECS, ids=list(BAD_SPECS))
def test_bad_spec_writes_nothing_and_reports(testbed: bed.TestBed, cloud: dict[str, Any], case: str) -> None:
    repo: ConfigRepo = cloud["repo"]
    path, change, reason, needle = BAD_SPECS[case]
    commit = repo.write(path, change, f"bad: {case}") if path else repo.edit(change, f"bad: {case}")
    outcome, writes = object_writes_during(testbed, cloud["reconciler"].reconcile)
    try:
        assert not outcome.ok and outcome.reason == reason, outcome.message
        assert needle in outcome.message
        assert writes == [], writes
        status = cr_status(testbed, repo)
        assert status["observedCommit"] == commit and status["state"] == "Failed"
        assert status["lastAppliedCommit"] == cloud["good"]
        assert needle in status["lastError"]
        assert any(needle in note for note in events(testbed, repo, reason))
        assert cloud["reconciler"].metrics.reconciles.labels("failure", reason)._value.get() >= 1
    finally:
        restore(cloud)


def test_chart_that_fails_to_render_writes_nothing(testbed: bed.TestBed, cloud: dict[str, Any]) -> None:
    repo: ConfigRepo = cloud["repo"]
    repo.write("charts/glance/templates/broken.yaml", "{{ .Values.no.such.value }}\n", "glance: broken template")
    outcome, writes = object_writes_during(testbed, cloud["reconciler"].reconcile)
    try:
        assert outcome.reason == "RenderFailed", outcome.message
        assert "chart glance" in outcome.message and "broken.yaml" in outcome.message
        assert writes == []
    finally:
        restore(cloud)


def test_object_refused_by_server_dry_run_writes_nothing(testbed: bed.TestBed, cloud: dict[str, Any]) -> None:
    repo: ConfigRepo = cloud["repo"]
    bad = {"pod": {"resources": {"enabled": True, "api": {"requests": {"memory": "lots"}}}}}
    repo.edit(lambda d: d["spec"]["overrides"].update(keystone=bad), "keystone: invalid memory quantity")
    outcome, writes = object_writes_during(testbed, cloud["reconciler"].reconcile)
    try:
        assert outcome.reason == "DryRunFailed", outcome.message
        assert "keystone-api" in outcome.message
        assert "dry-run patch deployments/keystone-api" in writes  # asked, refused...
        assert [w for w in writes if not w.startswith("dry-run")] == []  # ...and nothing written
    finally:
        restore(cloud)


def test_git_unreachable_keeps_state_and_backs_off(testbed: bed.TestBed, cloud: dict[str, Any]) -> None:
    repo: ConfigRepo = cloud["repo"]
    hidden = repo.bare.with_name("hidden.git")
    repo.bare.rename(hidden)
    try:
        outcome, writes = object_writes_during(testbed, cloud["reconciler"].reconcile)
        assert outcome.reason == "GitFetchFailed" and outcome.retry == "backoff", outcome.message
        assert writes == []
        assert cloud["reconciler"].metrics.git_errors.labels("Unreachable")._value.get() >= 1
        assert cr_status(testbed, repo)["lastAppliedCommit"] == cloud["good"]
    finally:
        hidden.rename(repo.bare)
    assert cloud["reconciler"].reconcile().ok


def test_deleted_then_force_pushed_branch(testbed: bed.TestBed, cloud: dict[str, Any]) -> None:
    repo: ConfigRepo = cloud["repo"]
    git(repo.bare, "config", "receive.denyDeleteCurrent", "ignore")  # main is the bare repo's HEAD
    git(repo.work, "push", "-q", "origin", "--delete", "main")
    outcome, writes = object_writes_during(testbed, cloud["reconciler"].reconcile)
    assert outcome.reason == "GitFetchFailed" and "BranchMissing" in outcome.message
    assert writes == []
    # history rewritten: an unrelated root commit with the same config is force-pushed
    git(repo.work, "checkout", "-q", "--orphan", "rewritten")
    git(repo.work, "commit", "-q", "-m", "rewritten history")
    git(repo.work, "push", "-q", "--force", "origin", "rewritten:main")
    outcome, writes = object_writes_during(testbed, cloud["reconciler"].reconcile)
    assert outcome.ok, outcome.message
    assert outcome.commit == git(repo.work, "rev-parse", "HEAD").strip()
    assert writes == []  # same content: nothing to do
    cloud["good"] = outcome.commit
    git(repo.work, "checkout", "-q", "-B", "main")


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


def test_render_command_writes_every_chart_without_credentials(tmp_path: Path) -> None:
    env = {**os.environ, "OPENSTACK_GITOPS_HELM": str(build.binary("helm"))}
    template = Path(__file__).resolve().parents[2] / "config-repo-template"
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
                             "--interval", "3600"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        text = ""
        while "openstack_gitops_last_applied_commit_info{" not in text and time.monotonic() < deadline:
            time.sleep(1)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
                    text = resp.read().decode()
            except OSError:
                continue
        if "openstack_gitops_last_applied_commit_info{" not in text:
            proc.kill()
            pytest.fail(f"no successful reconcile: {proc.communicate()[1][-3000:]}")
        assert 'openstack_gitops_reconcile_total{reason="Applied",result="success"} 1.0' in text
        assert 'openstack_gitops_reconcile_progress_ratio{phase="read"} 1.0' in text
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()  # never leave it running; the assertion below reports the hang
            _, err = proc.communicate()
    assert proc.returncode == 0, f"did not exit cleanly on SIGTERM: {err[-2000:]}"
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(line["msg"] == "reconciled" and line["ok"] for line in lines)
    credentials = client.CoreV1Api(testbed.api_client()).read_namespaced_secret(
        f"{repo.name}-credentials", repo.namespace).data
    for value in credentials.values():
        assert base64.b64decode(value).decode() not in err  # never a credential in the logs
