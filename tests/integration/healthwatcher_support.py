"""Helpers for health-watcher tests on the real test bed: the guarded workloads under their charts'
names (nova-compute-default on the compute nodes, mariadb-server), the resource publishing the
policy, the watcher in-process or as processes, and reading back what it did from the audit log."""

from __future__ import annotations

import functools
import os
import secrets
import subprocess
import sys
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import Any

from healthwatcher.loop import HealthWatcher, Notifier
from healthwatcher.metrics import Metrics
from openstack_gitops import api
from openstack_gitops.api import Process
from openstack_gitops.kube.client import Cluster
from openstack_gitops.kube.objects import Manifest
from openstack_gitops.model import complete, expand, load_spec, needed_credentials
from openstack_gitops.model.spec import ChartSource, ChartSourceType
from reconciler.edges.helm import Helm
from reconciler.engine import pipeline, status
from testbed import bed, build, process
from testbed.charts import upstream_charts
from testbed.nodes import COMPUTE_LABELS, CONTROL_PLANE_LABELS
from tests import background

REPO = Path(__file__).resolve().parents[2]
FAST = {"crashLoop": 1, "phaseFailed": 1, "notReady": 2, "terminating": 2}  # grace seconds in tests


def compute_daemonset(namespace: str, name: str = "nova-compute-default") -> dict[str, Any]:
    """A DaemonSet on every compute node, labelled like the nova chart's."""
    labels = {"application": "nova", "component": "compute"}
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"nodeSelector": dict(COMPUTE_LABELS),
                                           "tolerations": [{"operator": "Exists"}],
                                           "containers": [{"name": "nova-compute",
                                                           "image": "registry.invalid/nova:1"}]}}}}


def database_statefulset(namespace: str, replicas: int = 3, name: str = "mariadb-server") -> dict[str, Any]:
    labels = {"application": "mariadb", "component": "server"}
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": replicas, "serviceName": name, "podManagementPolicy": "Parallel",
                     "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"nodeSelector": dict(CONTROL_PLANE_LABELS),
                                           "tolerations": [{"operator": "Exists"}],
                                           "affinity": {"podAntiAffinity": {  # one member per node, as the chart
                                               "requiredDuringSchedulingIgnoredDuringExecution": [{
                                                   "labelSelector": {"matchLabels": labels},
                                                   "topologyKey": "kubernetes.io/hostname"}]}},
                                           "containers": [{"name": "mariadb",
                                                           "image": "registry.invalid/mariadb:1"}]}}}}


def policy(max_per_hour: int = 50, per_node: int = 3, per_workload: int = 20, **workloads: Any) -> dict[str, Any]:
    """``healthWatcher`` in the spec's words: short grace times for the compute and database workloads."""
    wl = {"nova-compute-default": {"graceSeconds": dict(FAST)},
          "mariadb-server": {"graceSeconds": dict(FAST)}}
    wl.update(workloads)
    return {"enabled": True, "maxRestartsPerHour": max_per_hour, "maxRestartsPerNodePerHour": per_node,
            "maxRestartsPerWorkloadPerHour": per_workload, "workloads": wl}


def publish(cluster: Cluster, namespace: str, health: dict[str, Any], name: str = "cloud") -> None:
    """The OpenStackDeployment as the reconciler publishes it (the policy is all the watcher reads)."""
    status.ensure_crd(cluster)
    cluster.apply({"apiVersion": api.API_VERSION, "kind": api.KIND, "metadata": {"name": name, "namespace": namespace},
                   "spec": {"networking": {"backend": "openvswitch"}, "healthWatcher": health}},
                  field_manager="test-publisher")


def pods(cluster: Cluster, namespace: str, selector: str) -> list[dict[str, Any]]:
    return sorted(cluster.list("v1", "Pod", selector, namespace), key=lambda p: p["metadata"]["name"])


def ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or []) \
        and not pod["metadata"].get("deletionTimestamp")


def all_ready(cluster: Cluster, namespace: str, selector: str, count: int) -> bool:
    got = pods(cluster, namespace, selector)
    return len(got) == count and all(ready(p) for p in got)


def in_process(testbed: bed.TestBed, namespace: str, notifier: Notifier | None = None,
               **kw: Any) -> tuple[HealthWatcher, Cluster]:
    """A watcher in this process, talking as the health watcher (its user agent and field manager)."""
    cluster = Cluster(testbed.api_client(), Process.HEALTH_WATCHER)
    return HealthWatcher(cluster, Metrics(), notifier, namespace=namespace, identity="test", **kw), cluster


def running(watcher: HealthWatcher) -> AbstractContextManager[HealthWatcher]:
    """``watcher.run`` in a thread until the block ends."""
    return background.running(watcher, "health-watcher", 15)


def start_process(testbed: bed.TestBed, namespace: str, identity: str, log: Path,
                  extra: tuple[str, ...] = ()) -> tuple[subprocess.Popen[bytes], int]:
    """``python -m healthwatcher`` with a Lease in ``namespace``; (process, metrics port)."""
    port = process.free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    argv = [sys.executable, "-m", "healthwatcher", "--log-json", "--kubeconfig", str(testbed.kubeconfig),
            "--namespace", namespace, "--metrics-port", str(port), "--identity", identity,
            "--lease-namespace", namespace, *extra]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    return proc, port


def pod_deletes(testbed: bed.TestBed, namespace: str, after: int = 0) -> list[dict[str, Any]]:
    """Deletes and evictions of pods in ``namespace`` by the health watcher, from the audit log."""
    out = []
    for event in testbed.audit_events(Process.HEALTH_WATCHER.user_agent.split("/")[0])[after:]:
        ref = event.get("objectRef") or {}
        if ref.get("namespace") != namespace or ref.get("resource") != "pods":
            continue
        restart = event.get("verb") == "delete" or (event.get("verb") == "create"
                                                    and ref.get("subresource") == "eviction")
        if restart and (event.get("responseStatus") or {}).get("code", 200) < 300:
            out.append(event)
    return out


def events(cluster: Cluster, namespace: str, reason: str) -> list[dict[str, Any]]:
    return [e for e in cluster.list("events.k8s.io/v1", "Event", "", namespace) if e.get("reason") == reason]


TEMPLATE = REPO / "config-repo-template" / "openstack.yaml"
KUBE_VERSION = "v1.36.3"


@functools.cache
def cell_setup_objects() -> dict[str, Manifest]:
    """The real nova chart's CronJob nova-cell-setup and its ServiceAccount, rendered from the template spec
    through the reconciler's pipeline, as the reconciler would apply them (by kind)."""
    charts = upstream_charts()
    spec = load_spec(TEMPLATE.read_text(), TEMPLATE.name)
    spec = replace(spec, chart_source=ChartSource(ChartSourceType.DIRECTORY, str(charts)))
    credentials, _ = complete({}, needed_credentials(spec), secrets.token_urlsafe)
    values = expand(spec, credentials)
    with Helm(str(build.binary("helm"))) as helm:
        text = pipeline.render(spec, charts, helm, {"nova": values["nova"]}, KUBE_VERSION)["nova"]
    wanted = {("CronJob", "nova-cell-setup"), ("ServiceAccount", "nova-cell-setup-cron")}
    found = {d.key.kind: d.manifest for d in pipeline.desired_objects(spec, "nova", text)
             if (d.key.kind, d.key.name) in wanted}
    assert set(found) == {"CronJob", "ServiceAccount"}
    return found


def apply_cronjob(cluster: Cluster, namespace: str, rendered: dict[str, Manifest]) -> Manifest:
    """The CronJob applied in ``namespace`` (its ServiceAccount first), as it is live."""
    for kind in ("ServiceAccount", "CronJob"):
        obj = rendered[kind]
        cluster.apply({**obj, "metadata": {**obj["metadata"], "namespace": namespace}},
                      field_manager=Process.RECONCILER.field_manager)
    live = cluster.get("batch/v1", "CronJob", "nova-cell-setup", namespace)
    assert live is not None
    return live
