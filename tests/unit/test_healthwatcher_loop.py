"""The loop's bookkeeping, fed watch events by hand (a standby: it judges, it never talks to a cluster)."""

from __future__ import annotations

from typing import Any, cast

from healthwatcher.loop import HealthWatcher
from healthwatcher.metrics import Metrics
from openstack_gitops import api
from openstack_gitops.kube.client import Cluster
from openstack_gitops.kube.watch import EventType, WatchEvent

from .test_healthwatcher_view import NS, cloud, daemonset, node, pod

NOW = 1_900_000_000.0  # long after the fixtures' timestamps: every grace time has run out


def resync(*objects: dict[str, Any]) -> WatchEvent:
    return WatchEvent(EventType.RESYNC, {}, "1", synthetic=True, objects=tuple(objects))


def standby() -> HealthWatcher:
    return HealthWatcher(cast(Cluster, None), Metrics(), still_leader=lambda: False, clock=lambda: NOW)


def test_a_pod_listed_before_the_last_kind_is_judged_once_every_kind_is_listed() -> None:
    watcher = standby()
    failed = pod("nova-compute-default-a", ready=False, phase="Failed")
    watcher.pass_once([(api.KIND, resync(cloud())), ("Node", resync(node("compute-0"))), ("Pod", resync(failed)),
                       ("StatefulSet", resync())])
    assert not watcher.synced() and watcher.failed == {}
    watcher.pass_once([("DaemonSet", resync(daemonset()))])  # the last kind: touches no pod by itself
    assert list(watcher.failed) == [(NS, "nova-compute-default-a")]


def test_a_standby_judges_but_never_acts() -> None:
    watcher = standby()
    failed = pod("nova-compute-default-a", ready=False, phase="Failed")
    watcher.pass_once([(api.KIND, resync(cloud())), ("Node", resync(node("compute-0"))), ("StatefulSet", resync()),
                       ("DaemonSet", resync(daemonset())), ("Pod", resync(failed))])
    assert list(watcher.failed) == [(NS, "nova-compute-default-a")]
    assert watcher.done == [] and watcher.clouds[NS].decisions == {}
    healthy = pod("nova-compute-default-a")
    watcher.pass_once([("Pod", WatchEvent(EventType.MODIFIED, healthy, "2"))])
    assert watcher.failed == {}
