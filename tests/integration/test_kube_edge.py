"""The Kubernetes edge on the real test bed: the watch verb, the scale verb, per-process identity, errors.

Every watch runs in a thread of its own (``Collector``) and is stopped at the end of its test.
"""

from __future__ import annotations

import base64
import json
import queue
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from openstack_gitops.api import Process
from openstack_gitops.kube.client import ApiError, Cluster, load_api_client
from openstack_gitops.kube.objects import ObjectKey
from openstack_gitops.kube.watch import EventType, Watch, WatchEvent
from openstack_gitops.runtime.backoff import Backoff
from testbed import bed
from tests.waiting import wait_for

from .reconcile_support import AUDIT_LAG, converged_cloud, object_writes_during

pytestmark = pytest.mark.testbed

LABEL = "openstack-gitops.io/test"
SELECTOR = f"{LABEL}=watch"


class Collector:
    """Iterates a watch in a thread; its events (or the error that ended it) land in a queue."""

    def __init__(self, watch: Watch) -> None:
        self.watch = watch
        self.events: queue.Queue[WatchEvent] = queue.Queue()
        self.error: ApiError | None = None
        self.thread = threading.Thread(target=self._run, daemon=True, name="test-watch")
        self.thread.start()

    def _run(self) -> None:
        try:
            for event in self.watch:
                self.events.put(event)
        except ApiError as exc:
            self.error = exc

    def until(self, done: Callable[[WatchEvent], bool], timeout: float = 30) -> list[WatchEvent]:
        """Every event up to and including the first that is ``done``."""
        seen: list[WatchEvent] = []
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                event = self.events.get(timeout=max(remaining, 0.01))
            except queue.Empty:
                raise AssertionError(f"no matching event within {timeout}s; saw {summary(seen)}; "
                                     f"error {self.error}") from None
            seen.append(event)
            if done(event):
                return seen

    def quiet(self, seconds: float) -> list[WatchEvent]:
        """Every event until none came for ``seconds``."""
        seen: list[WatchEvent] = []
        while True:
            try:
                seen.append(self.events.get(timeout=seconds))
            except queue.Empty:
                return seen

    def stop(self) -> float:
        """Stop the watch; how long its thread took to end."""
        started = time.monotonic()
        self.watch.stop()
        self.thread.join(10)
        assert not self.thread.is_alive(), "the watch did not stop"
        return time.monotonic() - started


@contextmanager
def collecting(watch: Watch) -> Iterator[Collector]:
    collector = Collector(watch)
    try:
        yield collector
    finally:
        collector.stop()


def summary(events: list[WatchEvent]) -> list[tuple[str, str]]:
    return [(e.type.value, e.key.name if e.type is not EventType.RESYNC else "") for e in events]


def is_resync(event: WatchEvent) -> bool:
    return event.type is EventType.RESYNC


def config_map(name: str, value: str = "1", labelled: bool = True) -> dict[str, Any]:
    labels = {LABEL: "watch"} if labelled else {}
    return {"metadata": {"name": name, "labels": labels}, "data": {"k": value}}


class GatedBackoff(Backoff):
    """Holds the watch in its first back-off until the test opens the gate (then no delay)."""

    def __init__(self) -> None:
        super().__init__(base=0.2, cap=0.2)
        self.waiting = threading.Event()
        self.gate = threading.Event()

    def next_delay(self) -> float:
        self.failures += 1
        self.waiting.set()
        self.gate.wait(120)
        return 0.2


# -- (a) the three kinds of change ------------------------------------------------------------
def test_watch_sees_added_modified_deleted_of_selected_objects(testbed: bed.TestBed, namespace: str) -> None:
    with testbed.api_client() as api, testbed.api_client() as admin:
        cluster = Cluster(api, Process.HEALTH_WATCHER)
        core = client.CoreV1Api(admin)
        core.create_namespaced_config_map(namespace, config_map("before"))
        with collecting(cluster.watch("v1", "ConfigMap", namespace, label_selector=SELECTOR)) as watch:
            first = watch.until(is_resync)
            assert summary(first) == [("ADDED", "before"), ("RESYNC", "")]
            assert all(e.synthetic for e in first) and [o["metadata"]["name"] for o in first[-1].objects] == ["before"]
            core.create_namespaced_config_map(namespace, config_map("a"))
            core.create_namespaced_config_map(namespace, config_map("unlabelled", labelled=False))
            core.patch_namespaced_config_map("a", namespace, {"data": {"k": "2"}})
            core.delete_namespaced_config_map("a", namespace)
            seen = watch.until(lambda e: e.type is EventType.DELETED)
            assert summary(seen) == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]
            assert not any(e.synthetic for e in seen)
            assert seen[1].object["data"] == {"k": "2"} and seen[1].object["kind"] == "ConfigMap"
            assert int(seen[2].resource_version) > int(first[-1].resource_version)
            assert watch.watch.counters.lists == 1 and watch.watch.counters.failures == 0


# -- (b) an apiserver restart loses nothing ---------------------------------------------------
def test_watch_survives_an_apiserver_restart_and_reports_each_change_once(testbed: bed.TestBed,
                                                                          namespace: str) -> None:
    """Changes made after the restart but before the watch reconnected (held in its back-off)."""
    backoff = GatedBackoff()
    with testbed.api_client() as admin:
        core = client.CoreV1Api(admin)
        for name in ("keep", "mod", "del"):
            core.create_namespaced_config_map(namespace, config_map(name))
    with testbed.api_client() as api:
        cluster = Cluster(api, Process.HEALTH_WATCHER)
        with collecting(cluster.watch("v1", "ConfigMap", namespace, label_selector=SELECTOR,
                                      backoff=backoff)) as watch:
            try:
                assert summary(watch.until(is_resync)) == [("ADDED", "del"), ("ADDED", "keep"), ("ADDED", "mod"),
                                                           ("RESYNC", "")]
                testbed.restart("kube-apiserver")
                assert backoff.waiting.wait(30), "the watch did not notice the restart"
                with testbed.api_client() as admin:
                    core = client.CoreV1Api(admin)
                    core.create_namespaced_config_map(namespace, config_map("new"))
                    core.patch_namespaced_config_map("mod", namespace, {"data": {"k": "2"}})
                    core.delete_namespaced_config_map("del", namespace)
            finally:
                backoff.gate.set()
            seen = watch.until(lambda e: e.key.name == "new" or is_resync(e), timeout=60)
            seen += watch.quiet(3)
            changes = sorted(summary([e for e in seen if not is_resync(e)]))
            assert changes == [("ADDED", "new"), ("DELETED", "del"), ("MODIFIED", "mod")], summary(seen)
            modified = next(e for e in seen if e.type is EventType.MODIFIED)
            assert modified.object["data"] == {"k": "2"}
            assert watch.watch.counters.failures >= 1
            # and it keeps watching on the new apiserver
            with testbed.api_client() as admin:
                client.CoreV1Api(admin).delete_namespaced_config_map("keep", namespace)
            assert summary(watch.until(lambda e: e.key.name == "keep")) == [("DELETED", "keep")]


# -- (c) 410 Gone -----------------------------------------------------------------------------
def compact_etcd(testbed: bed.TestBed) -> int:
    """Compact etcd to its current revision (what the apiserver does every 5 minutes); returns it.

    Through etcd's JSON gateway: every resourceVersion before it is gone for good, so a watch from
    one answers 410 whether the apiserver serves it from its watch cache or from etcd.
    """
    base = f"http://127.0.0.1:{testbed.control.ports.etcd_client}/v3"

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(f"{base}/{path}", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return answer

    revision = int(post("kv/range", {"key": base64.b64encode(b"/").decode(), "limit": 1})["header"]["revision"])
    post("kv/compaction", {"revision": revision, "physical": True})
    return revision


def test_watch_from_a_compacted_version_lists_again_and_goes_on(testbed: bed.TestBed, namespace: str) -> None:
    """A resourceVersion gone from etcd (compacted) and from the apiserver's watch cache (which
    holds every event since it started, so it is restarted to begin after "1") answers 410."""
    with testbed.api_client() as admin:
        client.CoreV1Api(admin).create_namespaced_config_map(namespace, config_map("a"))
    compacted = compact_etcd(testbed)
    testbed.restart("kube-apiserver")
    with testbed.api_client() as api:
        core = client.CoreV1Api(api)
        cluster = Cluster(api, Process.HEALTH_WATCHER)
        started = len(testbed.audit_events(user_agent_prefix=Process.HEALTH_WATCHER.user_agent))
        with collecting(cluster.watch("v1", "ConfigMap", namespace, label_selector=SELECTOR,
                                      resource_version="1")) as watch:
            relisted = watch.until(is_resync)
            assert summary(relisted) == [("ADDED", "a"), ("RESYNC", "")]
            assert all(e.synthetic for e in relisted) and int(relisted[-1].resource_version) >= compacted
            assert watch.watch.counters.expired == 1 and watch.watch.counters.lists == 1
            core.create_namespaced_config_map(namespace, config_map("b"))
            assert summary(watch.until(lambda e: e.key.name == "b")) == [("ADDED", "b")]
        time.sleep(AUDIT_LAG)
        requests = [(e["verb"], e["requestURI"]) for e in
                    testbed.audit_events(user_agent_prefix=Process.HEALTH_WATCHER.user_agent)[started:]
                    if (e.get("objectRef") or {}).get("namespace") == namespace]
        assert [verb for verb, _uri in requests][:2] == ["watch", "list"], requests  # refused, then re-listed
        assert "resourceVersion=1&" in requests[0][1] or requests[0][1].endswith("resourceVersion=1")


# -- (d) bookmarks ----------------------------------------------------------------------------
def test_bookmarks_advance_the_resource_version_without_an_event(testbed: bed.TestBed, namespace: str) -> None:
    other = f"elsewhere-{uuid.uuid4().hex[:6]}"
    with testbed.api_client() as api:
        core = client.CoreV1Api(api)
        cluster = Cluster(api, Process.HEALTH_WATCHER)
        started = len(testbed.audit_events(user_agent_prefix=Process.HEALTH_WATCHER.user_agent))
        with collecting(cluster.watch("v1", "ConfigMap", namespace, label_selector=SELECTOR,
                                      timeout_seconds=5)) as watch:
            listed = watch.until(is_resync)[-1].resource_version
            try:
                core.create_namespaced_config_map("default", config_map(other))  # moves the ConfigMap cache on
                wait_for(lambda: watch.watch.counters.watches >= 2, timeout=30,
                         what="the first 5 s watch to end")
                resumed_from = watch.watch.resource_version  # what the second watch was opened with
                wait_for(lambda: watch.watch.counters.watches >= 3, timeout=30,
                         what="the second 5 s watch to end")
            finally:
                core.delete_namespaced_config_map(other, "default")
            assert watch.watch.counters.bookmarks >= 1
            assert int(resumed_from) > int(listed), "the bookmark did not move the resourceVersion on"
            assert watch.quiet(0.5) == [], "nothing happened in the namespace: no event"
        time.sleep(AUDIT_LAG)
        uris = [e["requestURI"] for e in
                testbed.audit_events(user_agent_prefix=Process.HEALTH_WATCHER.user_agent)[started:]
                if e["verb"] == "watch" and (e.get("objectRef") or {}).get("namespace") == namespace]
        assert any(f"resourceVersion={resumed_from}" in uri and "allowWatchBookmarks=true" in uri
                   for uri in uris), uris


# -- (e) the scale verb -----------------------------------------------------------------------
def deployment(name: str, namespace: str, replicas: int | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}},
                     "spec": {"containers": [{"name": "c", "image": "registry.invalid/c:1"}]}}}
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": spec}


def scale_entry(live: dict[str, Any], manager: str) -> dict[str, Any] | None:
    for entry in live["metadata"].get("managedFields") or []:
        if entry["manager"] == manager and entry.get("subresource") == "scale":
            return dict(entry)
    return None


def test_scale_owns_replicas_even_unchanged_so_an_apply_without_them_keeps_them(testbed: bed.TestBed,
                                                                                namespace: str) -> None:
    """Why scale is an apply: a Deployment the reconciler applied with 3 replicas gets an autoscaling
    policy; the autoscaler asks for 3 (no change) and the reconciler's next apply leaves replicas out."""
    with testbed.api_client() as api, testbed.api_client() as api2:
        reconciler, autoscaler = Cluster(api), Cluster(api2, Process.AUTOSCALER)
        reconciler.apply(deployment("web", namespace, 3))
        assert autoscaler.scale("apps/v1", "Deployment", "web", namespace, 3).spec_replicas == 3
        entry = scale_entry(reconciler.get("apps/v1", "Deployment", "web", namespace) or {},
                            Process.AUTOSCALER.field_manager)
        assert entry is not None and entry["operation"] == "Apply"
        assert entry["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
        reconciler.apply(deployment("web", namespace, None))
        assert autoscaler.get_scale("apps/v1", "Deployment", "web", namespace).spec_replicas == 3
        # the control: the same story with a merge patch of the scale subresource loses the replicas
        reconciler.apply(deployment("control", namespace, 3))
        client.AppsV1Api(api2).patch_namespaced_deployment_scale("control", namespace, {"spec": {"replicas": 3}},
                                                                 field_manager=Process.AUTOSCALER.field_manager)
        reconciler.apply(deployment("control", namespace, None))
        assert autoscaler.get_scale("apps/v1", "Deployment", "control", namespace).spec_replicas == 1


def test_scale_of_an_autoscaled_deployment_survives_the_reconcilers_next_apply(
        testbed: bed.TestBed, tmp_path: Path, helm_repo: str) -> None:
    cloud = converged_cloud(testbed, tmp_path, helm_repo)
    namespace, reconciler = cloud["repo"].namespace, cloud["reconciler"]
    with testbed.api_client() as api:
        autoscaler = Cluster(api, Process.AUTOSCALER)
        before = autoscaler.get_scale("apps/v1", "Deployment", "keystone-api", namespace)
        after = autoscaler.scale("apps/v1", "Deployment", "keystone-api", namespace, before.spec_replicas + 2)
        assert after.spec_replicas == before.spec_replicas + 2
        live = autoscaler.get("apps/v1", "Deployment", "keystone-api", namespace) or {}
        entry = scale_entry(live, Process.AUTOSCALER.field_manager)
        assert entry is not None and entry["operation"] == "Apply", live["metadata"].get("managedFields")
        outcome, writes = object_writes_during(testbed, reconciler.reconcile)
        assert outcome.ok, outcome.message
        assert writes == []  # no drift: the autoscaler's field is not one the reconciler owns
        # a change that makes the reconciler apply keystone-api again leaves replicas alone too
        cloud["repo"].edit(lambda d: d["spec"]["overrides"].setdefault("keystone", {}).update(
            {"images": {"tags": {"keystone_api": "quay.io/airshipit/keystone:2025.1-hotfix"}}}), "keystone: hotfix")
        outcome, writes = object_writes_during(testbed, reconciler.reconcile)
        assert outcome.ok, outcome.message
        assert "patch deployments/keystone-api" in writes, writes
        final = autoscaler.get_scale("apps/v1", "Deployment", "keystone-api", namespace)
        assert final.spec_replicas == before.spec_replicas + 2


# -- (f) three processes, three identities ----------------------------------------------------
def test_the_audit_log_tells_the_three_processes_apart(testbed: bed.TestBed, namespace: str) -> None:
    managers = []
    for process in Process:
        with testbed.api_client() as api:
            cluster = Cluster(api, process)
            cluster.apply({"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": "shared", "namespace": namespace}, "data": {process.value: "1"}})
            managers.append(cluster.field_manager)
    time.sleep(AUDIT_LAG)
    patches = [e for e in testbed.audit_events()
               if e["verb"] == "patch" and (e.get("objectRef") or {}).get("namespace") == namespace]
    assert sorted(e["userAgent"] for e in patches) == sorted(p.user_agent for p in Process)
    assert len({p.user_agent for p in Process}) == 3
    with testbed.api_client() as api:
        live = Cluster(api).get("v1", "ConfigMap", "shared", namespace) or {}
    assert sorted(m["manager"] for m in live["metadata"]["managedFields"]) == sorted(managers)
    assert len(set(managers)) == 3


# -- (g) errors -------------------------------------------------------------------------------
def unreachable_kubeconfig(testbed: bed.TestBed, directory: Path) -> str:
    """The test bed's kubeconfig with a server address nothing listens on."""
    text = testbed.kubeconfig.read_text().replace(testbed.control.server, "https://127.0.0.1:1")
    assert "server: https://127.0.0.1:1\n" in text
    path = directory / "kubeconfig-unreachable"
    path.write_text(text)
    return str(path)


def test_an_unreachable_apiserver_is_a_transient_api_error(testbed: bed.TestBed, tmp_path: Path) -> None:
    with load_api_client(unreachable_kubeconfig(testbed, tmp_path), Process.HEALTH_WATCHER) as api:
        cluster = Cluster(api, Process.HEALTH_WATCHER)
        with pytest.raises(ApiError) as raised:
            cluster.list("v1", "ConfigMap", "", "default")
        error = raised.value
        assert (error.status, error.reason) == (0, "ServerUnreachable"), str(error)
        assert error.transient and error.unreachable and not error.terminal
        assert "refused" in error.message.lower(), error.message


def test_a_watch_that_cannot_connect_backs_off_and_stops_promptly(testbed: bed.TestBed, tmp_path: Path) -> None:
    with load_api_client(unreachable_kubeconfig(testbed, tmp_path), Process.HEALTH_WATCHER) as api:
        cluster = Cluster(api, Process.HEALTH_WATCHER)
        watch = cluster.watch("v1", "ConfigMap", "default", backoff=Backoff(base=30, cap=60))
        collector = Collector(watch)
        wait_for(lambda: watch.counters.failures >= 1, timeout=30, what="a failed LIST")
        assert collector.stop() < 2, "stop() must interrupt the back-off"
        assert collector.error is None and watch.counters.lists == 0


def test_a_kind_the_server_does_not_serve_and_a_missing_object_are_terminal(testbed: bed.TestBed,
                                                                           namespace: str) -> None:
    with testbed.api_client() as api:
        cluster = Cluster(api)
        with pytest.raises(ApiError) as kind:
            cluster.list("example.invalid/v1", "Nope", "")
        assert kind.value.kind_not_served and kind.value.status == 404 and kind.value.terminal
        with pytest.raises(ApiError) as watched:
            cluster.watch("example.invalid/v1", "Nope", namespace)
        assert watched.value.kind_not_served
        with pytest.raises(ApiError) as missing:
            cluster.get_scale("apps/v1", "Deployment", "missing", namespace)
        assert (missing.value.status, missing.value.reason) == (404, "NotFound")
        assert missing.value.not_found and missing.value.terminal
        assert cluster.get("v1", "ConfigMap", "missing", namespace) is None
        assert cluster.delete("v1", ObjectKey("", "ConfigMap", namespace, "missing")) is False


# -- bulk reads --------------------------------------------------------------------------------
def test_a_metadata_only_list_reads_what_the_plan_needs_and_no_data(testbed: bed.TestBed, namespace: str) -> None:
    """The plan's LIST of ConfigMaps and Secrets: labels, annotations and managedFields, none of the data."""
    with testbed.api_client() as api:
        cluster = Cluster(api)
        applied = cluster.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {
            "name": "meta", "namespace": namespace, "labels": {LABEL: "watch"}, "annotations": {"a": "1"}},
            "stringData": {"password": "not-in-the-list"}})
        full = cluster.list("v1", "Secret", SELECTOR, namespace=namespace)
        meta = cluster.list("v1", "Secret", SELECTOR, namespace=namespace, metadata_only=True)
    assert [ObjectKey.of(o) for o in meta] == [ObjectKey.of(o) for o in full] == [ObjectKey.of(applied)]
    assert meta[0]["metadata"]["annotations"] == {"a": "1"} and meta[0]["metadata"]["labels"] == {LABEL: "watch"}
    assert meta[0]["metadata"]["managedFields"] == full[0]["metadata"]["managedFields"]
    assert "data" in full[0] and "data" not in meta[0] and "not-in-the-list" not in json.dumps(meta)
