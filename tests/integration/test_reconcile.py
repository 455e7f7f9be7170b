"""The reconciler on the real test bed: converge, no-op, one-value change, drift, prune, autoscaled replicas."""

from __future__ import annotations

import base64
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from prometheus_client import CollectorRegistry, generate_latest

from openstack_gitops.api import PRUNE_ANNOTATION, SERVICE_LABEL
from reconciler.engine.changeset import Change
from reconciler.engine.loop import Loop
from reconciler.engine.reconcile import upgrade_chart_order
from reconciler.engine.watch import DriftWatch
from reconciler.plan.diff import Action
from reconciler.plan.order import kind_rank
from testbed import bed, kwok_stages

from .reconcile_support import (
    ConfigRepo,
    converged_cloud,
    make_reconciler,
    object_writes_during,
    reconcile_until_converged,
    writes_during,
)

pytestmark = pytest.mark.testbed


@pytest.fixture(scope="module")
def cloud(testbed: bed.TestBed, tmp_path_factory: pytest.TempPathFactory, helm_repo: str) -> dict[str, Any]:
    """One converged template cloud shared by the tests of this module.

    Each test sets up the state it checks itself (``pytest -k NAME`` runs it alone), so it must not
    rely on what an earlier test of the module did to this cloud.
    """
    return converged_cloud(testbed, tmp_path_factory.mktemp("cloud"), helm_repo)


DRIFT = "openstack_gitops_drift_corrections_total"
RECONCILES = "openstack_gitops_reconcile_total"
APPLIED = {"result": "success", "reason": "Applied"}


def sample(registry: CollectorRegistry, name: str, labels: dict[str, str] | None = None) -> float:
    """One sample of the reconciler's registry; it must exist."""
    value = registry.get_sample_value(name, labels)
    assert value is not None, f"no sample {name}{labels or ''}"
    return value


def tamper_glance_api(testbed: bed.TestBed, namespace: str) -> None:
    """Like `kubectl edit` of a field the reconciler owns."""
    with testbed.api_client() as api:
        client.AppsV1Api(api).patch_namespaced_deployment(
            "glance-api", namespace, {"metadata": {"labels": {SERVICE_LABEL: "tampered"}}})


def changed(changes: list[Change]) -> set[str]:
    return {f"{c.key.kind}/{c.key.name}" for c in changes if c.action not in (Action.UNCHANGED, Action.KEEP)}


def test_first_reconcile_converges_the_whole_cloud(testbed: bed.TestBed, cloud: dict[str, Any]) -> None:
    outcome = cloud["first"]
    repo: ConfigRepo = cloud["repo"]
    assert outcome.ok, outcome.message
    assert outcome.converged, {s: h.message for s, h in outcome.health.items() if not h.healthy}
    with testbed.api_client() as api:
        apps = client.AppsV1Api(api)
        compute = apps.read_namespaced_daemon_set("nova-compute-default", repo.namespace)
        assert compute.status.number_ready == 3  # one per compute node of the test bed
        assert apps.read_namespaced_stateful_set("mariadb-server", repo.namespace).status.ready_replicas >= 1
        cr = client.CustomObjectsApi(api).get_namespaced_custom_object(
            "openstack-gitops.io", "v1alpha1", repo.namespace, "openstackdeployments", repo.name)
    assert cr["status"]["observedCommit"] == outcome.commit
    assert cr["status"]["state"] == "Ready"
    assert set(cr["status"]["services"]) >= {"keystone", "nova", "neutron", "mariadb"}


def test_credentials_are_generated_once_and_shared(testbed: bed.TestBed, cloud: dict[str, Any]) -> None:
    repo: ConfigRepo = cloud["repo"]
    with testbed.api_client() as api:
        core = client.CoreV1Api(api)
        creds = core.read_namespaced_secret(f"{repo.name}-credentials", repo.namespace).data
        assert len(creds) > 10
        # the same DB admin password is in mariadb's secret and in keystone's db-admin secret
        admin = base64.b64decode(creds["oslo_db.admin"]).decode()
        keystone_db = core.read_namespaced_secret("keystone-db-admin", repo.namespace).data
        assert admin in base64.b64decode(next(iter(keystone_db.values()))).decode()


def test_noop_reconcile_writes_nothing(testbed: bed.TestBed, cloud: dict[str, Any]) -> None:
    outcome, writes = writes_during(testbed, cloud["reconciler"].reconcile)
    assert outcome.ok, outcome.message
    assert writes == {}, f"a no-op reconcile wrote: {dict(writes)}"
    assert outcome.changes.count(Action.UNCHANGED) > 100


def test_one_value_change_writes_only_affected_objects(testbed: bed.TestBed, cloud: dict[str, Any]) -> None:
    repo: ConfigRepo = cloud["repo"]
    repo.edit(lambda d: d["spec"]["overrides"]["nova"]["conf"]["nova"]["DEFAULT"].update(cpu_allocation_ratio=8.0),
              "nova: cpu_allocation_ratio 8")
    outcome, writes = object_writes_during(testbed, cloud["reconciler"].reconcile)
    assert outcome.ok, outcome.message
    objects = changed([c for c in outcome.changes.changes if c.action is not Action.HOOK])
    hooks = changed([c for c in outcome.changes.changes if c.action is Action.HOOK])
    assert "Secret/nova-etc" in objects, objects  # the rendered nova.conf
    assert "DaemonSet/nova-compute-default" in objects  # its pods roll through the config hash annotation
    assert "Job/nova-db-sync" in hooks, hooks  # nova's render changed: an upgrade of nova, its hooks run again
    assert all(c.service == "nova" for c in outcome.changes.changes if c.action is not Action.UNCHANGED)
    # one dry-run and one apply per changed object; a hook: dry-run, delete of the old run, apply
    resources = {"Secret": "secrets", "ConfigMap": "configmaps", "Deployment": "deployments",
                 "DaemonSet": "daemonsets", "StatefulSet": "statefulsets", "Job": "jobs"}

    def resource(key: str) -> str:
        kind, name = key.split("/")
        return f"{resources[kind]}/{name}"

    expected = sorted([f"{p}patch {resource(k)}" for k in objects for p in ("", "dry-run ")]
                      + [f"{v} {resource(k)}" for k in hooks for v in ("dry-run patch", "delete", "patch")])
    assert sorted(writes) == expected


def test_manual_edit_is_detected_and_reverted(testbed: bed.TestBed, cloud: dict[str, Any]) -> None:
    repo: ConfigRepo = cloud["repo"]
    registry = cloud["reconciler"].metrics.registry
    tamper_glance_api(testbed, repo.namespace)
    before = sample(registry, DRIFT)
    outcome = cloud["reconciler"].reconcile()
    assert outcome.ok, outcome.message
    drifted = [c for c in outcome.changes.changes if c.drift]
    assert [f"{c.key.kind}/{c.key.name}" for c in drifted] == ["Deployment/glance-api"]
    assert sample(registry, DRIFT) == before + 1
    with testbed.api_client() as api:
        live = client.AppsV1Api(api).read_namespaced_deployment("glance-api", repo.namespace)
    assert live.metadata.labels[SERVICE_LABEL] == "glance"


def test_autoscaled_replicas_are_left_to_the_autoscaler(testbed: bed.TestBed, cloud: dict[str, Any]) -> None:
    repo: ConfigRepo = cloud["repo"]
    with testbed.api_client("admin") as api:
        apps = client.AppsV1Api(api)
        apps.patch_namespaced_deployment_scale("keystone-api", repo.namespace, {"spec": {"replicas": 4}},
                                               field_manager="openstack-gitops-autoscaler")
        outcome, writes = object_writes_during(testbed, cloud["reconciler"].reconcile)
        assert outcome.ok
        assert writes == []  # (its status may change: keystone now has 4 replicas)
        assert apps.read_namespaced_deployment("keystone-api", repo.namespace).spec.replicas == 4


def test_disabling_a_service_prunes_it_in_reverse_order(testbed: bed.TestBed, cloud: dict[str, Any]) -> None:
    repo: ConfigRepo = cloud["repo"]
    with testbed.api_client() as api:
        core = client.CoreV1Api(api)
        core.patch_namespaced_config_map("horizon-bin", repo.namespace,
                                         {"metadata": {"annotations": {PRUNE_ANNOTATION: "disabled"}}})
        repo.edit(lambda d: d["spec"]["services"]["dashboard"].update(enabled=False), "dashboard off")
        outcome = cloud["reconciler"].reconcile()
        assert outcome.ok, outcome.message
        pruned = [c for c in outcome.changes.changes if c.action is Action.PRUNE]
        assert pruned and all(c.service == "horizon" for c in pruned)
        ranks = [kind_rank(c.key.kind) for c in pruned]
        assert ranks == sorted(ranks, reverse=True), "Jobs and workloads go before the config they mount"
        assert {c.key.kind for c in pruned} >= {"Deployment", "Secret", "Job", "Service"}
        apps = client.AppsV1Api(api)
        assert not [d for d in apps.list_namespaced_deployment(repo.namespace).items if d.metadata.name == "horizon"]
        assert core.read_namespaced_config_map("horizon-bin", repo.namespace)  # protected, kept
        kept = [c for c in outcome.changes.changes if c.action is Action.KEEP]
        assert [c.key.name for c in kept] == ["horizon-bin"]


def test_changed_job_is_deleted_and_recreated(testbed: bed.TestBed, cloud: dict[str, Any]) -> None:
    """A plain Job (nova-cell-setup) is re-created when it changed; a hook Job (glance-db-sync) runs again."""
    repo: ConfigRepo = cloud["repo"]
    with testbed.api_client() as api:
        batch = client.BatchV1Api(api)
        uids = {name: batch.read_namespaced_job(name, repo.namespace).metadata.uid
                for name in ("glance-db-sync", "nova-cell-setup")}
        repo.edit(lambda d: d["spec"]["overrides"].update(
            glance={"images": {"tags": {"glance_db_sync": "quay.io/airshipit/glance:2025.2-hotfix"}}},
            nova={**d["spec"]["overrides"].get("nova", {}),
                  "images": {"tags": {"nova_cell_setup": "quay.io/airshipit/nova:2025.2-hotfix"}}}), "hotfixes")
        outcome = cloud["reconciler"].reconcile()
        assert outcome.ok, outcome.message
        assert "nova-cell-setup" in [c.key.name for c in outcome.changes.changes if c.action is Action.RECREATE]
        assert "glance-db-sync" in [c.key.name for c in outcome.changes.changes if c.action is Action.HOOK]
        for name, uid in uids.items():
            job = batch.read_namespaced_job(name, repo.namespace)
            assert job.metadata.uid != uid
            assert job.spec.template.spec.containers[0].image.endswith("hotfix")


def test_metrics_report_the_reconciles(testbed: bed.TestBed, cloud: dict[str, Any]) -> None:
    """One reconcile that corrects one manual edit: counted once as applied, once as drift, and timestamped."""
    repo: ConfigRepo = cloud["repo"]
    registry = cloud["reconciler"].metrics.registry
    applied_before = registry.get_sample_value(RECONCILES, APPLIED) or 0.0  # absent until the first success
    drift_before = sample(registry, DRIFT)
    tamper_glance_api(testbed, repo.namespace)
    started = time.time()
    outcome = cloud["reconciler"].reconcile()
    assert outcome.ok and outcome.reason == "Applied", outcome.message
    assert sum(c.drift for c in outcome.changes.changes) == 1
    assert sample(registry, RECONCILES, APPLIED) == applied_before + 1
    assert sample(registry, DRIFT) == drift_before + 1
    assert started <= sample(registry, "openstack_gitops_last_success_timestamp_seconds") <= time.time()
    text = generate_latest(registry).decode()  # and so it reads on /metrics
    assert f'{RECONCILES}{{reason="Applied",result="success"}} {applied_before + 1}\n' in text
    assert f"{DRIFT} {drift_before + 1}\n" in text


def test_apiserver_restart_mid_apply_is_finished_by_the_next_reconcile(testbed: bed.TestBed, tmp_path: Path,
                                                                        helm_repo: str) -> None:
    repo = ConfigRepo(tmp_path, helm_repo)
    reconciler = make_reconciler(testbed, str(repo.bare), tmp_path)
    def restart_soon() -> None:
        time.sleep(1.5)
        testbed.restart("kube-apiserver")

    killer = threading.Thread(target=restart_soon)
    killer.start()
    first = reconciler.reconcile()
    killer.join()
    second = reconcile_until_converged(reconciler, attempts=90)
    assert second.ok, second.message
    assert second.converged
    if any(c.action is not Action.UNCHANGED for c in second.changes.changes):
        assert reconciler.reconcile().ok  # the status still says what that pass applied: recorded once more
    third, writes = writes_during(testbed, reconciler.reconcile)
    assert third.ok and writes == {}, (first.message, dict(writes))


def test_drift_watch_reverts_a_manual_edit_without_waiting_for_the_poll(testbed: bed.TestBed,
                                                                         cloud: dict[str, Any]) -> None:
    repo: ConfigRepo = cloud["repo"]
    reconciler = cloud["reconciler"]
    loop = Loop(reconciler, interval=3600)  # the poll alone would not come back within the test
    loop.start()
    try:
        assert loop.done.wait(120)
        loop.done.clear()
        watch = DriftWatch(reconciler.cluster, repo.namespace, repo.name, lambda: reconciler.inventory, loop.trigger)
        watch.start()
        time.sleep(2)  # let the watches connect
        with testbed.api_client() as api:
            core = client.CoreV1Api(api)
            core.patch_namespaced_service("keystone-api", repo.namespace,
                                          {"metadata": {"labels": {SERVICE_LABEL: "tampered"}}})
            assert loop.done.wait(30), "the drift watch did not trigger a reconcile"
            assert loop.last is not None and any(c.drift for c in loop.last.changes.changes)
            live = core.read_namespaced_service("keystone-api", repo.namespace)
            assert live.metadata.labels[SERVICE_LABEL] == "keystone"
        watch.stop()
    finally:
        loop.stop()


def _image(api: client.ApiClient, namespace: str, deployment: str) -> str:
    return str(client.AppsV1Api(api).read_namespaced_deployment(deployment, namespace)
               .spec.template.spec.containers[0].image)


def test_upgrade_goes_service_by_service_and_stops_at_an_unhealthy_one(testbed: bed.TestBed,
                                                                         cloud: dict[str, Any]) -> None:
    """2025.2 -> 2026.1: keystone's new pods crash, so the gate stops the upgrade before nova."""
    repo: ConfigRepo = cloud["repo"]
    reconciler = cloud["reconciler"]
    reconciler.upgrade_timeout, reconciler.upgrade_poll = 15.0, 0.5
    crashing = f"quay.io/airshipit/keystone:2026.1{kwok_stages.CRASHLOOP_IMAGE_SUFFIX}"

    def upgrade(doc: dict[str, Any]) -> None:
        doc["spec"]["release"] = "2026.1"
        doc["spec"]["overrides"]["keystone"] = {"images": {"tags": {"keystone_api": crashing}}}

    repo.edit(upgrade, "upgrade to 2026.1 (keystone image broken)")
    stalled = reconciler.reconcile()
    assert not stalled.ok and stalled.reason == "UpgradeStalled", stalled.message
    assert "keystone not healthy" in stalled.message
    with testbed.api_client() as api:
        assert _image(api, repo.namespace, "keystone-api") == crashing  # keystone was upgraded ...
        assert "2025.2" in _image(api, repo.namespace, "nova-api-osapi")  # ... nova, later in order, was not
    repo.edit(lambda d: d["spec"]["overrides"].pop("keystone"), "keystone: fixed image")
    done = reconcile_until_converged(reconciler, attempts=60)
    assert done.ok and done.converged, done.message
    with testbed.api_client() as api:
        assert "2026.1" in _image(api, repo.namespace, "nova-api-osapi")
    order = []
    for change in done.changes.changes:
        if change.action in (Action.CREATE, Action.UPDATE, Action.RECREATE) and change.service not in order:
            order.append(change.service)
    upgrade_order = list(upgrade_chart_order(reconciler.spec))
    assert order == [s for s in upgrade_order if s in order], order
    assert order.index("keystone") < order.index("nova")


def running_release(testbed: bed.TestBed, repo: ConfigRepo) -> str:
    """The release the cloud runs, as its resource's status records it (what validation compares with)."""
    with testbed.api_client() as api:
        cr = client.CustomObjectsApi(api).get_namespaced_custom_object(
            "openstack-gitops.io", "v1alpha1", repo.namespace, "openstackdeployments", repo.name)
    return str(cr["status"]["release"])


def test_downgrade_is_refused(testbed: bed.TestBed, cloud: dict[str, Any]) -> None:
    repo: ConfigRepo = cloud["repo"]
    reconciler = cloud["reconciler"]
    reconciler.upgrade_poll = 0.5
    repo.edit(lambda d: d["spec"].update(release="2026.1"), "upgrade to 2026.1")  # a no-op after the upgrade test
    upgraded = reconcile_until_converged(reconciler, attempts=60)
    assert upgraded.ok and upgraded.converged, upgraded.message
    assert running_release(testbed, repo) == "2026.1"
    repo.edit(lambda d: d["spec"].update(release="2025.2"), "back to 2025.2")
    outcome = reconciler.reconcile()
    assert outcome.reason == "SpecInvalid" and "downgrade from 2026.1 to 2025.2 is refused" in outcome.message
    assert running_release(testbed, repo) == "2026.1"
    with testbed.api_client() as api:
        assert "2026.1" in _image(api, repo.namespace, "nova-api-osapi")  # nothing was rolled back
