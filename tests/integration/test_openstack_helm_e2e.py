"""The unmodified OpenStack-Helm charts, end to end, on a 3 control-plane + 10 compute test bed.

Charts come from the loopback Helm repository (``source: {type: helm}``, as operators get them).
A first install converges with every hook Job complete; the second reconcile writes nothing; a
one-value change writes only what it affects and re-runs only that chart's hooks; a release
upgrade moves every image; switching a service off runs its pre-delete hooks, then prunes it.
Each test builds the state it needs (a module fixture installs the cloud once, lazily), so each
passes alone.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from healthwatcher.loop import HealthWatcher
from healthwatcher.metrics import Metrics as HealthWatcherMetrics
from openstack_gitops import api
from openstack_gitops.api import Process
from openstack_gitops.kube.client import Cluster
from openstack_gitops.kube.objects import ObjectKey
from openstack_gitops.model import releases
from reconciler.engine import inventory_store, status
from reconciler.engine.identity import CloudRef
from reconciler.engine.outcome import Reason
from reconciler.engine.reconcile import Reconciler
from testbed import bed
from tests.background import running
from tests.waiting import wait_for

from .reconcile_support import (
    AUDIT_LAG,
    WRITE_VERBS,
    ConfigRepo,
    make_reconciler,
    object_writes_during,
    reconcile_until_converged,
)

CONTROL_PLANE, COMPUTE = 3, 10
FROM_RELEASE, TO_RELEASE = releases.RELEASE_ORDER[-2], releases.RELEASE_ORDER[-1]


@pytest.fixture(scope="module")
def big_bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[bed.TestBed]:
    directory = tmp_path_factory.mktemp("testbed-3-10")
    tb = bed.up(directory, control_plane=CONTROL_PLANE, compute=COMPUTE, pod_ready_delay_ms=100)
    try:
        yield tb
    finally:
        bed.down(directory)


class Cloud:
    def __init__(self, testbed: bed.TestBed, root: Path, helm_repo: str, **edits: Any) -> None:
        self.testbed = testbed
        self.repo = ConfigRepo(root, helm_repo)
        self.repo.edit(lambda doc: doc["spec"].update(release=FROM_RELEASE, **edits), "start")
        self.reconciler: Reconciler = make_reconciler(testbed, str(self.repo.bare), root)
        self.cluster = Cluster(testbed.api_client("admin"))
        self.ref = CloudRef(self.repo.name, self.repo.namespace)
        self.install_writes: list[str] = []  # resource/namespace/name of every object write of the install, in order

    def items(self, api_version: str, kind: str) -> list[dict[str, Any]]:
        return self.cluster.list(api_version, kind, f"{api.OWNER_LABEL}={self.repo.name}",
                                 namespace=self.repo.namespace)

    def pods(self) -> list[dict[str, Any]]:
        return self.cluster.list("v1", "Pod", "", namespace=self.repo.namespace)

    def job_uids(self) -> dict[str, str]:
        return {j["metadata"]["name"]: j["metadata"]["uid"] for j in self.items("batch/v1", "Job")}


@pytest.fixture(scope="module")
def installed(big_bed: bed.TestBed, helm_repo: str, tmp_path_factory: pytest.TempPathFactory) -> Cloud:
    cloud = Cloud(big_bed, tmp_path_factory.mktemp("cloud"), helm_repo)
    agent = cloud.reconciler.cluster.api.user_agent
    start = len(big_bed.audit_events(user_agent_prefix=agent))
    outcome = reconcile_until_converged(cloud.reconciler, attempts=120)
    assert outcome.ok and outcome.converged, outcome.message
    time.sleep(AUDIT_LAG)
    events = big_bed.audit_events(user_agent_prefix=agent)[start:]
    cloud.install_writes = [f"{e['objectRef'].get('resource')}/{e['objectRef'].get('namespace', '')}/"
                            f"{e['objectRef'].get('name')}" for e in events
                            if e.get("verb") in WRITE_VERBS and "dryRun=All" not in str(e.get("requestURI"))
                            and e["objectRef"].get("resource") not in ("events", "openstackdeployments")]
    return cloud


def test_first_install_of_the_real_charts_converges(installed: Cloud) -> None:
    cloud = installed
    live = status.read(cloud.cluster, cloud.ref)
    assert live is not None and live["status"]["state"] == "Ready", live and live.get("status")
    # nova-compute (and libvirt) on every compute node
    compute_nodes = {f"kwok-compute-{i}" for i in range(COMPUTE)}
    for prefix in ("nova-compute-", "libvirt-"):
        nodes = {p["spec"].get("nodeName") for p in cloud.pods() if p["metadata"]["name"].startswith(prefix)}
        assert nodes == compute_nodes or len(nodes) == COMPUTE, (prefix, sorted(n or "" for n in nodes))
    # every hook Job ran to completion; no test Pod and no pre-delete Job was ever created
    jobs = cloud.items("batch/v1", "Job")
    assert len(jobs) > 30
    unfinished = [j["metadata"]["name"] for j in jobs
                  if not any(c["type"] == "Complete" and c["status"] == "True"
                             for c in (j.get("status") or {}).get("conditions") or [])]
    assert unfinished == []
    names = {j["metadata"]["name"] for j in jobs}
    assert not names & {"glance-clean", "cinder-clean", "keystone-credential-cleanup"}
    assert not [p for p in cloud.pods() if "test" in p["metadata"]["name"] and not p["metadata"].get("ownerReferences")]
    # the pre-install Secrets exist; every chart's revision is recorded
    assert cloud.cluster.get("v1", "Secret", "keystone-fernet-keys", cloud.repo.namespace) is not None
    stored = inventory_store.load(cloud.cluster, cloud.ref)
    assert set(stored.hook_revisions) == set(cloud.reconciler.spec.charts if cloud.reconciler.spec else ())


def test_charts_install_side_by_side_each_in_helms_order(installed: Cloud) -> None:
    """Outside an upgrade every chart is applied beside the others, each in Helm's order: its pre-install
    hooks before its first object, its post-install hooks after its last object (plan.schedule)."""
    cloud = installed
    hooks: dict[str, tuple[str, str]] = {}  # resource/namespace/name -> (chart, helm.sh/hook)
    for api_version, kind, resource in (("v1", "Secret", "secrets"), ("batch/v1", "Job", "jobs")):
        for obj in cloud.items(api_version, kind):
            annotations = obj["metadata"].get("annotations") or {}
            if "helm.sh/hook" in annotations:  # a Job's ServiceAccount and Role share its name: not a hook
                hooks[f"{resource}/{cloud.repo.namespace}/{obj['metadata']['name']}"] = (
                    obj["metadata"]["labels"][api.SERVICE_LABEL], annotations["helm.sh/hook"])
    charts: dict[str, set[str]] = {}
    for key, entry in inventory_store.load(cloud.cluster, cloud.ref).inventory.entries.items():
        resource = cloud.cluster.resource(entry.api_version, key.kind).name
        charts.setdefault(f"{resource}/{key.namespace}/{key.name}", set()).add(entry.service)
    at: dict[tuple[str, str], list[int]] = {}  # (chart, "pre" | "objects" | "post") -> positions of its writes
    for i, name in enumerate(cloud.install_writes):
        if name in hooks:
            chart, events = hooks[name]
            at.setdefault((chart, "pre" if "pre-install" in events else "post"), []).append(i)
        elif len(charts.get(name, ())) == 1:
            at.setdefault((next(iter(charts[name])), "objects"), []).append(i)
    with_hooks = {chart for chart, part in at if part != "objects"}
    assert {"keystone", "nova", "glance"} <= with_hooks, sorted(at)
    for chart in with_hooks:
        objects = at[(chart, "objects")]
        assert max(at.get((chart, "pre"), [-1])) < min(objects), chart
        assert min(at.get((chart, "post"), [len(cloud.install_writes)])) > max(objects), chart
    assert max(at[("mariadb", "objects")]) > min(at[("horizon", "objects")]), "charts were applied one by one"


def test_second_reconcile_writes_nothing_and_runs_no_hook(installed: Cloud) -> None:
    cloud = installed
    before = cloud.job_uids()
    outcome, writes = object_writes_during(cloud.testbed, cloud.reconciler.reconcile)
    assert outcome.ok, outcome.message
    assert writes == []
    assert cloud.job_uids() == before


def test_one_value_change_writes_only_its_chart_and_reruns_only_its_hooks(installed: Cloud) -> None:
    cloud = installed
    before = cloud.job_uids()
    cloud.repo.edit(lambda doc: doc["spec"]["overrides"].setdefault("placement", {}).update(
        conf={"placement": {"DEFAULT": {"debug": True}}}), "placement debug")
    outcome, writes = object_writes_during(cloud.testbed, cloud.reconciler.reconcile)
    assert outcome.ok, outcome.message
    real = [w for w in writes if not w.startswith("dry-run")]
    assert real and all("placement" in w for w in real), real
    after = cloud.job_uids()
    rerun = sorted(name for name, uid in after.items() if before.get(name) != uid)
    assert rerun and all(name.startswith("placement-") for name in rerun), rerun
    assert {n for n in before if not n.startswith("placement-")} <= set(after)


def _images(cloud: Cloud) -> set[str]:
    out = set()
    for kind in ("Deployment", "StatefulSet", "DaemonSet"):
        for obj in cloud.items("apps/v1", kind):
            spec = obj["spec"]["template"]["spec"]
            out |= {c["image"] for c in [*spec.get("containers", []), *spec.get("initContainers", [])]}
    for job in cloud.items("batch/v1", "Job"):
        spec = job["spec"]["template"]["spec"]
        out |= {c["image"] for c in [*spec.get("containers", []), *spec.get("initContainers", [])]}
    return out


def test_release_upgrade_moves_every_image_in_order(big_bed: bed.TestBed, helm_repo: str, tmp_path: Path) -> None:
    cloud = Cloud(big_bed, tmp_path, helm_repo)
    first = reconcile_until_converged(cloud.reconciler, attempts=120)
    assert first.ok and first.converged, first.message
    old_images = _images(cloud)
    before = cloud.job_uids()
    cloud.repo.edit(lambda doc: doc["spec"].update(release=TO_RELEASE), f"upgrade to {TO_RELEASE}")
    outcome = reconcile_until_converged(cloud.reconciler, attempts=120)
    assert outcome.ok and outcome.converged, outcome.message
    new_images = _images(cloud)
    wanted = {image for chart in cloud.reconciler.spec.charts  # type: ignore[union-attr]
              for image in releases.images(TO_RELEASE, chart).values()}
    assert new_images <= wanted, sorted(new_images - wanted)[:10]  # nothing left on an old or chart-default image
    assert new_images != old_images
    assert all(before.get(name) != uid for name, uid in cloud.job_uids().items()
               if name.endswith("-db-sync")), "every db-sync re-ran with the new images"


def test_switching_a_service_off_runs_its_pre_delete_hooks_then_prunes(big_bed: bed.TestBed, helm_repo: str,
                                                                       tmp_path: Path) -> None:
    cloud = Cloud(big_bed, tmp_path, helm_repo)
    first = reconcile_until_converged(cloud.reconciler, attempts=120)
    assert first.ok and first.converged, first.message
    glance_before = {(o["kind"], o["metadata"]["name"]) for kind in ("Deployment", "Service", "ConfigMap")
                     for o in cloud.items("apps/v1" if kind == "Deployment" else "v1", kind)
                     if o["metadata"]["labels"].get(api.SERVICE_LABEL) == "glance"}
    assert glance_before
    switched_off = {"glance", "nova", "libvirt"}  # compute needs image: both go
    kept = {f"persistentvolumeclaims/{c['metadata']['name']}" for c in cloud.items("v1", "PersistentVolumeClaim")
            if (c["metadata"].get("annotations") or {}).get("helm.sh/resource-policy") == "keep"}
    assert kept  # glance's image claims: Helm keeps them when a release goes, so do we
    owned = {f"{_plural(kind)}/{name}" for kind, name, service in _owned(cloud)}
    theirs = {f"{_plural(kind)}/{name}" for kind, name, service in _owned(cloud) if service in switched_off} - kept
    cloud.repo.edit(lambda doc: doc["spec"]["services"].update({"image": {"enabled": False},
                                                                 "compute": {"enabled": False}}), "image off")
    outcome, writes = object_writes_during(cloud.testbed, cloud.reconciler.reconcile)
    assert outcome.ok, outcome.message
    real = [w for w in writes if not w.startswith("dry-run")]
    clean = real.index("patch jobs/glance-clean")  # server-side apply creates with PATCH
    first_prune = min(i for i, w in enumerate(real) if w.startswith("delete ") and "glance-clean" not in w)
    assert clean < first_prune, real
    assert "delete jobs/glance-clean" in real[clean:]  # the hook goes with its chart
    deleted = {w.removeprefix("delete ") for w in real if w.startswith("delete ")} - {"jobs/glance-clean"}
    assert deleted & owned == theirs  # exactly the switched-off charts' objects, nothing else
    assert {f"persistentvolumeclaims/{c['metadata']['name']}"
            for c in cloud.cluster.list("v1", "PersistentVolumeClaim", "", namespace=cloud.repo.namespace)} >= kept
    left = [o for kind in ("Deployment", "Service", "ConfigMap", "Job")
            for o in cloud.items("batch/v1" if kind == "Job" else "apps/v1" if kind == "Deployment" else "v1", kind)
            if o["metadata"]["labels"].get(api.SERVICE_LABEL) == "glance"]
    assert left == []
    assert "glance" not in inventory_store.load(cloud.cluster, cloud.ref).hook_revisions


def test_a_hook_that_does_not_complete_fails_the_reconcile_and_runs_again(big_bed: bed.TestBed, helm_repo: str,
                                                                          tmp_path: Path) -> None:
    services = {s: {"enabled": s in ("identity", "mariadb", "rabbitmq", "memcached")}
                for s in ("identity", "image", "placement", "compute", "networking", "block-storage", "dashboard",
                          "orchestration", "mariadb", "rabbitmq", "memcached")}
    cloud = Cloud(big_bed, tmp_path, helm_repo, services=services, autoscaling={})
    crash = releases.images(FROM_RELEASE, "keystone")["keystone_db_sync"] + "-crashloop"
    cloud.repo.edit(lambda doc: doc["spec"]["overrides"].update(
        keystone={"images": {"tags": {"keystone_db_sync": crash}}}), "a db-sync that never completes")
    cloud.reconciler.hook_timeout = 5
    outcome = cloud.reconciler.reconcile()
    assert not outcome.ok and outcome.reason == Reason.HOOK_FAILED, outcome.message
    assert "keystone-db-sync" in outcome.message and "did not complete" in outcome.message
    assert "keystone" not in inventory_store.load(cloud.cluster, cloud.ref).hook_revisions
    live = status.read(cloud.cluster, cloud.ref)
    assert live is not None and live["status"]["state"] == "Failed"
    # the fix: the next pass runs the chart's hooks again and records the revision
    cloud.repo.edit(lambda doc: doc["spec"]["overrides"].pop("keystone"), "fix the image")
    cloud.reconciler.hook_timeout = 300
    deadline = time.monotonic() + 240
    outcome = cloud.reconciler.reconcile()
    while not (outcome.ok and outcome.converged) and time.monotonic() < deadline:
        time.sleep(1)
        outcome = cloud.reconciler.reconcile()
    assert outcome.ok, outcome.message
    assert "keystone" in inventory_store.load(cloud.cluster, cloud.ref).hook_revisions


def test_a_fresh_process_runs_no_helm_when_nothing_changed_and_renders_on_drift(installed: Cloud,
                                                                                tmp_path: Path) -> None:
    cloud = installed
    # a first fresh process records the inputs as it sees them (the install rendered before the CRDs the
    # charts install were served; the long-running reconciler renders with them from its next pass on,
    # which the install may not have needed); the next one runs no Helm at all
    assert make_reconciler(cloud.testbed, str(cloud.repo.bare), tmp_path / "fresh-0").reconcile().ok
    fresh = make_reconciler(cloud.testbed, str(cloud.repo.bare), tmp_path / "fresh")
    outcome, writes = object_writes_during(cloud.testbed, fresh.reconcile)
    assert outcome.ok, outcome.message
    assert writes == [] and fresh.helm.renders == 0
    # a hand edit of a field we own: the next fresh process sees it, renders after all, and takes it back
    config = next(c for c in cloud.items("v1", "ConfigMap")
                  if c["metadata"]["labels"].get(api.SERVICE_LABEL) == "keystone" and c.get("data"))
    name, field = config["metadata"]["name"], sorted(config["data"])[0]
    cloud.cluster.patch_json("v1", ObjectKey("", "ConfigMap", cloud.repo.namespace, name),
                             [{"op": "replace", "path": f"/data/{field.replace('~', '~0').replace('/', '~1')}",
                               "value": "edited by hand"}])
    fresh = make_reconciler(cloud.testbed, str(cloud.repo.bare), tmp_path / "fresh-2")
    outcome, writes = object_writes_during(cloud.testbed, fresh.reconcile)
    assert outcome.ok, outcome.message
    assert fresh.helm.renders > 0 and f"patch configmaps/{name}" in writes, writes
    assert cloud.cluster.get("v1", "ConfigMap", name, cloud.repo.namespace)["data"][field] == config["data"][field]


def _owned(cloud: Cloud) -> list[tuple[str, str, str]]:
    """(kind, name, service) of every object the inventory says the cloud owns."""
    stored = inventory_store.load(cloud.cluster, cloud.ref)
    return [(key.kind, key.name, entry.service) for key, entry in stored.inventory.entries.items()]


def _plural(kind: str) -> str:
    """The resource name the audit log uses for a kind (NetworkPolicy -> networkpolicies)."""
    lower = kind.lower()
    return lower[:-1] + "ies" if lower.endswith("y") else lower + ("es" if lower.endswith("s") else "s")


def test_the_health_watcher_guards_the_real_charts_workloads(installed: Cloud) -> None:
    """The policy the reconciler publishes names workloads the real charts render; a real nova-compute pod
    that fails is restarted, the real single-member mariadb is not (quorum), through its real PDB."""
    cloud = installed
    fast = {"graceSeconds": {"crashLoop": 1, "phaseFailed": 1, "notReady": 5, "terminating": 5}}
    cloud.repo.edit(lambda doc: doc["spec"].update(healthWatcher={
        "enabled": True, "maxRestartsPerHour": 10,
        "workloads": {"nova-compute-default": fast, "mariadb-server": fast}}), "health watcher: short grace")
    outcome = reconcile_until_converged(cloud.reconciler)
    assert outcome.ok and outcome.converged, outcome.message
    namespace = cloud.repo.namespace
    watcher = HealthWatcher(Cluster(cloud.testbed.api_client(), Process.HEALTH_WATCHER), HealthWatcherMetrics(),
                            namespace=namespace, identity="e2e")
    with running(watcher, "health-watcher"):
        wait_for(watcher.synced, 60, "the watcher's first lists")
        guarded = {ref.name for ref in watcher.view.workload_states({})}
        assert guarded == {"nova-compute-default", "libvirt-libvirt-default", "mariadb-server", "rabbitmq-rabbitmq",
                           "openvswitch", "neutron-ovs-agent-default"}, "a default names no real workload"
        compute = sorted(p["metadata"]["name"] for p in cloud.pods()
                         if p["metadata"]["name"].startswith("nova-compute-default-"))
        cloud.testbed.fail_pod(namespace, compute[0], "crashloop")
        cloud.testbed.fail_pod(namespace, "mariadb-server-0", "crashloop")
        wait_for(lambda: any(d.pod == compute[0] for d in watcher.done), 60, "the real nova-compute pod restarted")
        refused = wait_for(lambda: [d for d in watcher.clouds[namespace].decisions.values()
                                    if d.pod == "mariadb-server-0"], 60, "a decision on mariadb-server-0")
        assert refused[0].reason.value == "db-quorum", refused
        assert not any(d.pod == "mariadb-server-0" for d in watcher.done)
        # the reconciler does not fight it: a pass after the restart writes nothing of the cloud's objects
        outcome, writes = object_writes_during(cloud.testbed, cloud.reconciler.reconcile)
        assert outcome.ok and writes == [], (outcome.message, writes)
