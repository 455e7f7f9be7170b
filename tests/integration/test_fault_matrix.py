"""The fault matrix: what the reconciler guarantees when something breaks, one row per fault.

Every row runs the same checks on a converged template cloud (the README's table is this one):
1. under the fault, no object of the cloud is deleted and no credential changes;
2. the fault is reported: the outcome's reason, the resource's status and an Event say it, and the
   failure counter of that reason grows (faults the cloud absorbs report ``Applied``);
3. once the fault is healed, the next reconciles converge on the same objects and credentials.

Faults that need their own cloud or process (a SIGKILL mid-apply, a first reconcile that fails,
an apiserver that is down, manual edits of every kind) follow the table as their own tests.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, dynamic

from openstack_gitops.api import (
    FIELD_MANAGER,
    GROUP,
    MANAGED_BY_LABEL,
    OWNER_LABEL,
    PLURAL,
    REGENERATE_ANNOTATION,
    SERVICE_LABEL,
    VERSION,
)
from openstack_gitops.kube import objects as kobjects
from reconciler.edges.git import GitSource
from reconciler.engine.outcome import Outcome
from reconciler.engine.reconcile import Reconciler
from testbed import bed, build
from testbed.charts import upstream_charts

from .reconcile_support import (
    ConfigRepo,
    converged_cloud,
    git,
    make_reconciler,
    object_writes_during,
    reconcile_until_converged,
)

pytestmark = pytest.mark.testbed

Cloud = dict[str, Any]


# -- what the checks read -----------------------------------------------------------------------
def owned(reconciler: Reconciler, namespace: str) -> set[str]:
    """Every object of the cloud in the cluster, found by our labels (kinds from the inventory)."""
    kinds = {(e.api_version, k.kind) for k, e in reconciler.inventory.entries.items()}
    selector = kobjects.selector({MANAGED_BY_LABEL: FIELD_MANAGER, OWNER_LABEL: None})
    out = set()
    for api_version, kind in kinds:
        for obj in reconciler.cluster.list(api_version, kind, selector):
            if namespace in (obj["metadata"].get("namespace"), kind == "Namespace" and obj["metadata"]["name"]):
                out.add(f"{kind}/{obj['metadata']['name']}")
    return out


def credentials(testbed: bed.TestBed, repo: ConfigRepo) -> dict[str, str]:
    with testbed.api_client() as api:
        secret = client.CoreV1Api(api).read_namespaced_secret(f"{repo.name}-credentials", repo.namespace)
    return dict(secret.data)


def resource(testbed: bed.TestBed, namespace: str, name: str) -> dict[str, Any] | None:
    with testbed.api_client() as api:
        try:
            return dict(client.CustomObjectsApi(api).get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name))
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise


def event_notes(testbed: bed.TestBed, namespace: str, reason: str) -> list[str]:
    with testbed.api_client() as api:
        res = dynamic.DynamicClient(api).resources.get(api_version="events.k8s.io/v1", kind="Event")
        items = res.get(namespace=namespace).to_dict()["items"]
    return [str(e.get("note", "")) for e in items if e.get("reason") == reason]


def failures(reconciler: Reconciler, reason: str) -> float:
    value = reconciler.metrics.registry.get_sample_value(
        "openstack_gitops_reconcile_total", {"result": "failure", "reason": reason})
    return value or 0.0


# -- faults: each injects, and returns how to heal -------------------------------------------
Heal = Callable[[], None]


def _charts(repo: ConfigRepo, *names: str) -> Heal:
    """Remove every template of the named charts (all charts when none is named)."""
    doomed = [p for p in (repo.work / "charts").glob("*/templates")
              if (not names or p.parent.name in names) and p.parent.name != "helm-toolkit"]
    for path in doomed:
        shutil.rmtree(path)
    repo.commit(f"charts: templates of {', '.join(names) or 'every chart'} removed")
    return lambda: None  # restore() resets the repo


def _without_autoscaling(repo: ConfigRepo) -> ConfigRepo:
    """Drop the autoscaling policies first: with keystone-api gone from the render, validation would
    refuse the policy (SpecInvalid) before the prune guard is reached, and this row is about the guard."""
    repo.edit(lambda d: d["spec"].update(autoscaling={}), "no autoscaling policies")
    return repo


def git_down(cloud: Cloud) -> Heal:
    repo: ConfigRepo = cloud["repo"]
    hidden = repo.bare.with_name("hidden.git")
    repo.bare.rename(hidden)
    return lambda: hidden.rename(repo.bare)


def git_hung(cloud: Cloud) -> Heal:
    """A git:// server that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:  # closed by heal()
                return

    threading.Thread(target=serve, daemon=True).start()
    reconciler: Reconciler = cloud["reconciler"]
    original = reconciler.git
    port = listener.getsockname()[1]
    reconciler.git = GitSource(f"git://127.0.0.1:{port}/config.git", "main", original.workdir.with_name("hung"),
                               timeout=3)

    def heal() -> None:
        stop.set()
        for conn in accepted:
            conn.close()
        listener.close()
        reconciler.git = original

    return heal


def branch_deleted(cloud: Cloud) -> Heal:
    repo: ConfigRepo = cloud["repo"]
    git(repo.bare, "config", "receive.denyDeleteCurrent", "ignore")  # main is the bare repo's HEAD
    git(repo.work, "push", "-q", "origin", "--delete", "main")

    def push_again() -> None:
        git(repo.work, "push", "-q", "--force", "origin", "HEAD:main")

    return push_again


def force_pushed(cloud: Cloud) -> Heal:
    """History rewritten: an unrelated root commit with the same files."""
    repo: ConfigRepo = cloud["repo"]
    git(repo.work, "checkout", "-q", "--orphan", "rewritten")
    git(repo.work, "commit", "-q", "-m", "rewritten history")
    git(repo.work, "push", "-q", "--force", "origin", "rewritten:main")

    def back_to_main() -> None:
        git(repo.work, "checkout", "-q", "-B", "main")

    return back_to_main


def spec_edit(change: Callable[[dict[str, Any]], None]) -> Callable[[Cloud], Heal]:
    def inject(cloud: Cloud) -> Heal:
        cloud["repo"].edit(change, "a bad spec")
        return lambda: None
    return inject


def malformed_yaml(cloud: Cloud) -> Heal:
    cloud["repo"].write("openstack.yaml", "spec:\n  release: '2025.1'\n  size: [small\n", "malformed")
    return lambda: None


def credentials_deleted(cloud: Cloud) -> Heal:
    testbed: bed.TestBed = cloud["testbed"]
    repo: ConfigRepo = cloud["repo"]
    with testbed.api_client() as api:
        core = client.CoreV1Api(api)
        saved = core.read_namespaced_secret(f"{repo.name}-credentials", repo.namespace)
        core.delete_namespaced_secret(f"{repo.name}-credentials", repo.namespace)

    def restore_from_backup() -> None:  # what the README tells an operator to do
        with testbed.api_client() as api:
            client.CoreV1Api(api).create_namespaced_secret(repo.namespace, {
                "metadata": {"name": saved.metadata.name, "labels": saved.metadata.labels},
                "type": saved.type, "data": saved.data})

    return restore_from_backup


def dry_run_refused(cloud: Cloud) -> Heal:
    bad = {"pod": {"resources": {"enabled": True, "api": {"requests": {"memory": "lots"}}}}}
    cloud["repo"].edit(lambda d: d["spec"]["overrides"].update(keystone=bad), "keystone: invalid memory quantity")
    return lambda: None


def render_fails(cloud: Cloud) -> Heal:
    cloud["repo"].write("charts/glance/templates/broken.yaml", "{{ .Values.no.such.value }}\n", "glance: broken")
    return lambda: None


def extra_objects(*objects: Any) -> Callable[[Cloud], Heal]:
    """A config-repo writer adds raw objects to a chart (OpenStack-Helm's extraObjects, tpl-rendered)."""
    return spec_edit(lambda d: d["spec"]["overrides"].setdefault("nova", {}).update(extraObjects=list(objects)))


CLUSTER_ADMIN_BINDING = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                         "metadata": {"name": "config-writer-takes-over"},
                         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                     "name": "cluster-admin"},
                         "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "default"}]}
ROOT_PASSWORD_IN_A_CONFIGMAP = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: leaked-root-password\n"
                                "data:\n  pw: '{{ .Values.endpoints.oslo_db.auth.admin.password }}'\n")


@dataclass(frozen=True)
class Fault:
    inject: Callable[[Cloud], Heal]
    reason: str  # what outcome, status, Events and metrics report ("Applied": the cloud absorbs it)
    says: str  # a phrase the message must hold


FAULTS: dict[str, Fault] = {
    "git-down": Fault(git_down, "GitFetchFailed", "Unreachable"),
    "git-hung": Fault(git_hung, "GitFetchFailed", "Timeout"),
    "git-branch-deleted": Fault(branch_deleted, "GitFetchFailed", "BranchMissing"),
    "git-force-pushed": Fault(force_pushed, "Applied", "unchanged"),
    "spec-malformed": Fault(malformed_yaml, "SpecInvalid", "malformed YAML"),
    "spec-unknown-size": Fault(spec_edit(lambda d: d["spec"].update(size="huge")), "SpecInvalid", "spec.size"),
    "spec-dependency-off": Fault(spec_edit(lambda d: d["spec"]["services"]["mariadb"].update(enabled=False)),
                                 "SpecInvalid", "mariadb"),
    "spec-every-service-off": Fault(spec_edit(lambda d: [s.update(enabled=False)
                                                         for s in d["spec"]["services"].values()]),
                                    "SpecInvalid", "every service"),
    "render-empty": Fault(lambda c: _charts(_without_autoscaling(c["repo"])), "PruneRefused",
                          "every workload of keystone"),
    "render-over-prunes": Fault(lambda c: _charts(c["repo"], "nova"), "PruneRefused", "every workload of nova"),
    "render-fails": Fault(render_fails, "RenderFailed", "broken.yaml"),
    "dry-run-refused": Fault(dry_run_refused, "DryRunFailed", "keystone-api"),
    "credentials-deleted": Fault(credentials_deleted, "CredentialsMissing", "annotate"),
    "namespace-changed": Fault(spec_edit(lambda d: d["spec"].update(namespace=d["spec"]["namespace"] + "-moved")),
                               "CloudMoveRefused", "spec.namespace changed"),
    "extra-objects-cluster-admin": Fault(extra_objects(CLUSTER_ADMIN_BINDING), "PolicyRefused", "cluster-admin"),
    "extra-objects-root-password": Fault(extra_objects(ROOT_PASSWORD_IN_A_CONFIGMAP), "PolicyRefused",
                                         "ConfigMap/"),
    "renamed": Fault(spec_edit(lambda d: d["metadata"].update(name=d["metadata"]["name"] + "-renamed")),
                     "CloudMoveRefused", "metadata.name changed"),
}


@pytest.fixture(scope="module")
def cloud(testbed: bed.TestBed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """A directory source (the charts in the config repo), so the render faults can edit a chart in Git."""
    converged = converged_cloud(testbed, tmp_path_factory.mktemp("matrix"), upstream_charts())
    converged["testbed"] = testbed
    yield converged


def restore(cloud: Cloud) -> Outcome:
    """Back to the last good commit, reconciled until converged (after a Git fault, once the
    fetch back-off, 5-10 s after a first failure, lets the next fetch through)."""
    repo: ConfigRepo = cloud["repo"]
    git(repo.work, "checkout", "-q", "-B", "main")
    git(repo.work, "reset", "-q", "--hard", cloud["good"])
    git(repo.work, "clean", "-qfd")
    git(repo.work, "push", "-q", "--force", "origin", "HEAD:main")
    outcome = cloud["reconciler"].reconcile()
    deadline = time.monotonic() + 60
    while outcome.reason == "GitFetchFailed" and time.monotonic() < deadline:
        time.sleep(1)
        outcome = cloud["reconciler"].reconcile()
    return outcome if not outcome.ok or outcome.converged else reconcile_until_converged(cloud["reconciler"])


@pytest.mark.parametrize("case", FAULTS, ids=list(FAULTS))
def test_fault(testbed: bed.TestBed, cloud: Cloud, case: str) -> None:
    fault = FAULTS[case]
    repo: ConfigRepo = cloud["repo"]
    reconciler: Reconciler = cloud["reconciler"]
    objects_before, credentials_before = owned(reconciler, repo.namespace), credentials(testbed, repo)
    failed_before = failures(reconciler, fault.reason)
    heal = fault.inject(cloud)
    try:
        outcome, writes = object_writes_during(testbed, reconciler.reconcile)
        # 1. nothing deleted, nothing orphaned, no credential changed
        assert outcome.reason == fault.reason, outcome.message
        assert fault.says in outcome.message
        assert [w for w in writes if not w.startswith("dry-run")] == [], writes
        assert owned(reconciler, repo.namespace) == objects_before
        if case != "credentials-deleted":
            assert credentials(testbed, repo) == credentials_before
        # 2. reported in status, Events and metrics (on the cloud that runs)
        cr = resource(testbed, repo.namespace, repo.name)
        assert cr is not None
        if fault.reason != "Applied":
            assert cr["status"]["state"] == "Failed" and fault.says in cr["status"]["lastError"]
            assert cr["status"]["lastAppliedCommit"] == cloud["good"]
            assert cr["status"]["observedCommit"]  # never blanked by a failure
            assert any(fault.says in note for note in event_notes(testbed, repo.namespace, fault.reason))
            assert failures(reconciler, fault.reason) == failed_before + 1
        if fault.reason == "CloudMoveRefused":  # nothing started beside the running cloud
            assert resource(testbed, repo.namespace + "-moved", repo.name) is None
            assert resource(testbed, repo.namespace, repo.name + "-renamed") is None
    finally:
        heal()
        healed = restore(cloud)
    # 3. recovery: the same objects and credentials, converged, and the next pass writes nothing
    assert healed.ok and healed.converged, healed.message
    assert owned(reconciler, repo.namespace) == objects_before
    assert credentials(testbed, repo) == credentials_before
    again, writes = object_writes_during(testbed, reconciler.reconcile)
    assert again.ok and writes == [], writes
    cloud["good"] = again.commit


def test_git_outage_keeps_correcting_drift_and_backs_off_fetches(testbed: bed.TestBed, cloud: Cloud) -> None:
    """While Git is down the last fetched commit stays enforced, and fetches back off whatever triggers them."""
    repo: ConfigRepo = cloud["repo"]
    reconciler: Reconciler = cloud["reconciler"]
    heal = git_down(cloud)
    try:
        first = reconciler.reconcile()
        assert first.reason == "GitFetchFailed" and first.retry == "backoff", first.message
        errors = reconciler.metrics.registry.get_sample_value("openstack_gitops_git_fetch_errors_total",
                                                              {"reason": "Unreachable"})
        with testbed.api_client() as api:
            apps = client.AppsV1Api(api)
            apps.patch_namespaced_deployment_scale("glance-api", repo.namespace, {"spec": {"replicas": 7}})
            outcomes = [reconciler.reconcile() for _ in range(6)]  # six drift triggers within a second or two
            assert apps.read_namespaced_deployment("glance-api", repo.namespace).spec.replicas != 7
        assert any(c.drift and c.key.name == "glance-api" for o in outcomes for c in o.changes.changes)
        assert all(o.reason == "GitFetchFailed" and o.commit == cloud["good"] for o in outcomes)
        assert reconciler.metrics.registry.get_sample_value("openstack_gitops_git_fetch_errors_total",
                                                            {"reason": "Unreachable"}) == errors  # no new fetch
        cr = resource(testbed, repo.namespace, repo.name)
        assert cr is not None and cr["status"]["observedCommit"] == cloud["good"]
    finally:
        heal()
    assert restore(cloud).ok


def test_credentials_regenerated_only_when_the_operator_says_so(testbed: bed.TestBed, cloud: Cloud) -> None:
    repo: ConfigRepo = cloud["repo"]
    reconciler: Reconciler = cloud["reconciler"]
    before = credentials(testbed, repo)
    with testbed.api_client() as api:
        client.CoreV1Api(api).delete_namespaced_secret(f"{repo.name}-credentials", repo.namespace)
        assert reconciler.reconcile().reason == "CredentialsMissing"
        client.CustomObjectsApi(api).patch_namespaced_custom_object(
            GROUP, VERSION, repo.namespace, PLURAL, repo.name,
            {"metadata": {"annotations": {REGENERATE_ANNOTATION: "true"}}})
    outcome = reconcile_until_converged(reconciler)
    assert outcome.ok, outcome.message
    after = credentials(testbed, repo)
    assert set(after) == set(before) and all(after[k] != before[k] for k in before)
    cr = resource(testbed, repo.namespace, repo.name)
    assert cr is not None and REGENERATE_ANNOTATION not in cr["metadata"].get("annotations", {})
    with testbed.api_client() as api:  # the permission was used once: a second loss stops again
        client.CoreV1Api(api).delete_namespaced_secret(f"{repo.name}-credentials", repo.namespace)
        assert reconciler.reconcile().reason == "CredentialsMissing"
        client.CoreV1Api(api).create_namespaced_secret(repo.namespace, {
            "metadata": {"name": f"{repo.name}-credentials"}, "type": "Opaque", "data": after})
    assert reconciler.reconcile().ok


# -- manual edits of every kind -------------------------------------------------------------------
def kubectl(testbed: bed.TestBed, *args: str, editor: str = "") -> None:
    env = {**os.environ, "KUBECONFIG": str(testbed.kubeconfig), "KUBE_EDITOR": editor or "true"}
    subprocess.run([str(build.binary("kubectl")), *args], env=env, check=True, capture_output=True, text=True)


EDITS: dict[str, tuple[list[str], str, Callable[[dict[str, Any]], Any]]] = {
    # name: (kubectl arguments, KUBE_EDITOR script, how to read the edited value back from the live object)
    "configmap-key-added-by-edit": (["edit", "configmap/rabbitmq-rabbitmq-etc"],
                                    "sed -i 's/^data:/data:\\n  injected: by-hand/'",
                                    lambda o: o.get("data", {}).get("injected")),
    "configmap-value-patched": (["patch", "configmap/rabbitmq-rabbitmq-etc", "--type", "merge", "-p",
                                 '{"data":{"enabled_plugins":"tampered"}}'], "",
                                lambda o: o["data"].get("enabled_plugins") == "tampered" or None),
    "label-added": (["label", "deployment/glance-api", "tampered=yes"], "",
                    lambda o: o["metadata"]["labels"].get("tampered")),
    "annotation-added": (["annotate", "service/keystone-api", "tampered=yes"], "",
                         lambda o: o["metadata"].get("annotations", {}).get("tampered")),
    "image-set": (["set", "image", "deployment/glance-api", "*=tampered:1"], "",
                  lambda o: "tampered:1" in str(o["spec"]["template"]["spec"]["containers"]) or None),
    "scaled": (["scale", "deployment/glance-api", "--replicas=5"], "",
               lambda o: o["spec"]["replicas"] == 5 or None),
    "secret-data-edited": (["patch", "secret/keystone-db-admin", "--type", "merge", "-p",
                            '{"data":{"injected":"' + base64.b64encode(b"x").decode() + '"}}'], "",
                           lambda o: o.get("data", {}).get("injected")),
    "deleted": (["delete", "configmap/rabbitmq-rabbitmq-etc"], "", lambda o: o.get("__missing__")),
}
_KINDS = {"configmap": ("v1", "ConfigMap"), "deployment": ("apps/v1", "Deployment"), "service": ("v1", "Service"),
          "secret": ("v1", "Secret")}


@pytest.mark.parametrize("case", EDITS, ids=list(EDITS))
def test_manual_edit_is_reverted_and_counted(testbed: bed.TestBed, cloud: Cloud, case: str) -> None:
    repo: ConfigRepo = cloud["repo"]
    reconciler: Reconciler = cloud["reconciler"]
    args, editor, edited = EDITS[case]
    target = next(a for a in args if "/" in a)
    api_version, kind = _KINDS[target.split("/")[0]]
    name = target.split("/")[1]

    def live() -> dict[str, Any]:
        return reconciler.cluster.get(api_version, kind, name, repo.namespace) or {"__missing__": True}

    kubectl(testbed, "-n", repo.namespace, *args, editor=editor)
    assert edited(live()), f"the edit {case} did not take"
    drift_before = reconciler.metrics.registry.get_sample_value("openstack_gitops_drift_corrections_total")
    outcome = reconciler.reconcile()
    assert outcome.ok, outcome.message
    assert not edited(live()), f"{case} was not reverted"
    assert [f"{c.key.kind}/{c.key.name}" for c in outcome.changes.changes if c.drift] == [f"{kind}/{name}"]
    assert reconciler.metrics.registry.get_sample_value("openstack_gitops_drift_corrections_total") == drift_before + 1
    again, writes = object_writes_during(testbed, reconciler.reconcile)
    assert again.ok and writes == [], writes


# -- faults that need their own cloud or process ----------------------------------------------------
def _cli(testbed: bed.TestBed) -> tuple[list[str], dict[str, str]]:
    env = {**os.environ, "KUBECONFIG": str(testbed.kubeconfig), "OPENSTACK_GITOPS_HELM": str(build.binary("helm"))}
    return [sys.executable, "-m", "reconciler.cli"], env


def test_sigkill_mid_apply_then_a_commit_orphans_nothing(testbed: bed.TestBed, tmp_path: Path, helm_repo: str) -> None:
    """Killed at about half of a first install, then orchestration is switched off: heat goes too."""
    repo = ConfigRepo(tmp_path / "repo", helm_repo)
    cli, env = _cli(testbed)
    proc = subprocess.Popen([*cli, "reconcile", "--once", "--repo", str(repo.bare), "--workdir",
                             str(tmp_path / "w")], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    reconciler = make_reconciler(testbed, str(repo.bare), tmp_path / "observer")
    selector = kobjects.selector({OWNER_LABEL: repo.name})
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # kill once heat's objects and some workloads exist, mid-apply
            heat = reconciler.cluster.list("v1", "ConfigMap", selector + f",{SERVICE_LABEL}=heat",
                                           namespace=repo.namespace)
            if heat and reconciler.cluster.list("apps/v1", "Deployment", selector, namespace=repo.namespace):
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
    created = reconciler.cluster.list("apps/v1", "Deployment", selector, namespace=repo.namespace)
    assert heat and created, "the kill came too late or too early to test anything"
    repo.edit(lambda d: d["spec"]["services"]["orchestration"].update(enabled=False), "orchestration off")
    outcome = reconcile_until_converged(reconciler, attempts=90)
    assert outcome.ok, outcome.message
    left = [o["metadata"]["name"] for av, kind in (("v1", "ConfigMap"), ("v1", "Secret"), ("apps/v1", "Deployment"),
                                                   ("batch/v1", "Job"), ("v1", "Service"))
            for o in reconciler.cluster.list(av, kind, selector + f",{SERVICE_LABEL}=heat",
                                             namespace=repo.namespace)]
    assert left == [], f"heat objects orphaned by the kill: {left}"


def test_first_reconcile_that_fails_is_reported_on_a_new_resource(testbed: bed.TestBed, tmp_path: Path,
                                                                   helm_repo: str) -> None:
    repo = ConfigRepo(tmp_path, helm_repo)
    repo.edit(lambda d: d["spec"]["services"]["mariadb"].update(enabled=False), "mariadb off (invalid)")
    reconciler = make_reconciler(testbed, str(repo.bare), tmp_path)
    outcome = reconciler.reconcile()
    assert outcome.reason == "SpecInvalid"
    cr = resource(testbed, repo.namespace, repo.name)
    assert cr is not None and cr["status"]["state"] == "Failed" and "mariadb" in cr["status"]["lastError"]
    assert any("mariadb" in note for note in event_notes(testbed, repo.namespace, "SpecInvalid"))
    repo.edit(lambda d: d["spec"]["services"]["mariadb"].update(enabled=True), "mariadb on")
    assert reconcile_until_converged(reconciler, attempts=90).converged


def test_apiserver_down_is_reported_not_a_crash(testbed: bed.TestBed, cloud: Cloud, tmp_path: Path) -> None:
    repo: ConfigRepo = cloud["repo"]
    reconciler: Reconciler = cloud["reconciler"]
    cli, env = _cli(testbed)
    testbed.stop_component("kube-apiserver")
    try:
        outcome = reconciler.reconcile()
        assert outcome.reason == "ClusterUnreachable", outcome.message
        assert failures(reconciler, "ClusterUnreachable") >= 1
        once = subprocess.run([*cli, "reconcile", "--once", "--repo", str(repo.bare), "--workdir", str(tmp_path)],
                              env=env, capture_output=True, text=True, timeout=120, check=False)
        assert once.returncode == 1, once.stderr
        assert "Traceback" not in once.stderr and "cannot reach the cluster" in once.stderr, once.stderr
    finally:
        testbed.start_component("kube-apiserver")
    assert reconcile_until_converged(reconciler).ok


def test_fault_table_in_readme_names_every_row() -> None:
    """The README's fault matrix is this module's table: a row added here must be documented there."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    missing = [case for case in [*FAULTS, *EDITS] if f"`{case}`" not in readme]
    assert missing == [], f"README's fault matrix lacks: {missing}"
