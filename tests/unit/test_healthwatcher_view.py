"""The health watcher's view of the cluster and its Event records: pure, table-tested (no I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from healthwatcher import act
from healthwatcher.decide import Action, Decision, Failure, Reason, WorkloadRef
from healthwatcher.detect import Rule, Verdict
from healthwatcher.view import View, owner_of, rolling_out, selects, trim_pod
from openstack_gitops import api

NS = "openstack"
COMPUTE = WorkloadRef("DaemonSet", NS, "nova-compute-default")
MARIADB = WorkloadRef("StatefulSet", NS, "mariadb-server")
NOW = 1_800_000_000.0


def pod(name: str, owner: WorkloadRef | None = COMPUTE, node: str = "compute-0", ready: bool = True,
        **status: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": NS, "uid": f"uid-{name}",
                            "labels": {"application": "nova"}}
    if owner is not None:
        meta["ownerReferences"] = [{"kind": owner.kind, "name": owner.name, "uid": "x", "controller": True}]
    conditions = [{"type": "Ready", "status": "True" if ready else "False",
                   "lastTransitionTime": "2027-01-15T08:00:00Z"}]
    return {"metadata": meta, "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}]},
            "status": {"phase": "Running", "startTime": "2027-01-15T07:00:00Z", "conditions": conditions, **status}}


def node(name: str, ready: bool = True) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"a": "b"}},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"},
                                      {"type": "Ready", "status": "True" if ready else "False",
                                       "lastTransitionTime": "2027-01-15T07:00:00Z"}],
                       "images": ["big"] * 50}}


def cloud(**health: Any) -> dict[str, Any]:
    return {"metadata": {"name": "cloud", "namespace": NS},
            "spec": {"networking": {"backend": "openvswitch"}, "healthWatcher": health}}


def daemonset(desired: int = 3, updated: int = 3, generation: int = 1, observed: int = 1) -> dict[str, Any]:
    return {"kind": "DaemonSet", "metadata": {"name": COMPUTE.name, "namespace": NS, "generation": generation},
            "status": {"desiredNumberScheduled": desired, "updatedNumberScheduled": updated,
                       "observedGeneration": observed, "numberReady": desired}}


def view(*pods: dict[str, Any]) -> View:
    v = View()
    v.resync(api.KIND, [cloud()])
    v.resync("Node", [node("compute-0"), node("compute-1")])
    v.resync("DaemonSet", [daemonset()])
    v.resync("StatefulSet", [])
    v.resync("Pod", list(pods))
    return v


def test_a_trimmed_pod_keeps_what_the_rules_read_and_drops_the_rest() -> None:
    full = pod("p", ready=False, containerStatuses=[{
        "name": "c", "restartCount": 4, "image": "huge", "imageID": "sha",
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "long text"}},
        "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2027-01-15T08:00:00Z", "message": "log"}}}])
    trimmed = trim_pod(full)
    assert "containers" not in trimmed["spec"]
    c = trimmed["status"]["containerStatuses"][0]
    assert c == {"name": "c", "restartCount": 4, "ready": None, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                 "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2027-01-15T08:00:00Z"}}}


@pytest.mark.parametrize(("refs", "want"), [
    pytest.param([{"kind": "DaemonSet", "name": "ds", "controller": True}], WorkloadRef("DaemonSet", NS, "ds"),
                 id="ds"),
    pytest.param([{"kind": "ReplicaSet", "name": "rs", "controller": True}], None, id="deployment-pod-not-guarded"),
    pytest.param([{"kind": "StatefulSet", "name": "db", "controller": False}], None, id="not-the-controller"),
    pytest.param([], None, id="bare-pod"),
])
def test_owner_of(refs: list[dict[str, Any]], want: WorkloadRef | None) -> None:
    assert owner_of({"metadata": {"namespace": NS, "ownerReferences": refs}}) == want


@pytest.mark.parametrize(("selector", "labels", "want"), [
    pytest.param({"matchLabels": {"app": "db"}}, {"app": "db", "x": "y"}, True, id="match-labels"),
    pytest.param({"matchLabels": {"app": "db"}}, {"app": "web"}, False, id="other-value"),
    pytest.param({"matchExpressions": [{"key": "app", "operator": "In", "values": ["db", "mq"]}]}, {"app": "mq"},
                 True, id="in"),
    pytest.param({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["db"]}]}, {"app": "db"},
                 False, id="not-in"),
    pytest.param({"matchExpressions": [{"key": "app", "operator": "Exists"}]}, {}, False, id="exists-missing"),
    pytest.param({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, {}, True, id="does-not-exist"),
    pytest.param({}, {"any": "thing"}, True, id="empty-selects-all"),
    pytest.param(None, {"any": "thing"}, False, id="no-selector-selects-nothing"),
])
def test_selects(selector: dict[str, Any] | None, labels: dict[str, str], want: bool) -> None:
    assert selects(selector, labels) is want


@pytest.mark.parametrize(("obj", "want"), [
    pytest.param(daemonset(), False, id="ds-settled"),
    pytest.param(daemonset(updated=2), True, id="ds-pods-not-updated"),
    pytest.param(daemonset(generation=2, observed=1), True, id="ds-spec-not-observed"),
    pytest.param({"kind": "StatefulSet", "metadata": {"generation": 3}, "spec": {"replicas": 3},
                  "status": {"observedGeneration": 3, "currentRevision": "a", "updateRevision": "b",
                             "updatedReplicas": 1}}, True, id="sts-revision-rolling"),
    pytest.param({"kind": "StatefulSet", "metadata": {"generation": 3}, "spec": {"replicas": 3},
                  "status": {"observedGeneration": 3, "currentRevision": "b", "updateRevision": "b",
                             "updatedReplicas": 3}}, False, id="sts-settled"),
    pytest.param({"kind": "StatefulSet", "metadata": {"generation": 3}, "spec": {"replicas": 3},
                  "status": {"observedGeneration": 3, "currentRevision": "b", "updateRevision": "b",
                             "updatedReplicas": 2}}, False, id="sts-member-terminating-is-not-a-rollout"),
])
def test_rolling_out(obj: dict[str, Any], want: bool) -> None:
    assert rolling_out(obj) is want


def test_the_view_judges_only_guarded_pods_and_a_node_change_touches_its_pods() -> None:
    v = view(pod("nova-compute-default-a"), pod("nova-compute-default-b", node="compute-1"),
             pod("other", owner=WorkloadRef("DaemonSet", NS, "fluentd")), pod("bare", owner=None))
    assert set(v.pods) == {(NS, "nova-compute-default-a"), (NS, "nova-compute-default-b"), (NS, "other")}
    assert v.verdict((NS, "other"), NOW) is None  # a DaemonSet no policy names
    assert v.verdict((NS, "nova-compute-default-a"), NOW) is not None
    assert v.apply("Node", "MODIFIED", node("compute-1", ready=False)) == {(NS, "nova-compute-default-b")}
    assert v.nodes["compute-1"]["status"]["conditions"][0]["status"] == "False"
    assert "images" not in v.nodes["compute-1"]["status"]


def test_a_resync_drops_what_vanished_while_the_watch_was_away() -> None:
    v = view(pod("nova-compute-default-a"), pod("nova-compute-default-b", node="compute-1"))
    touched = v.resync("Pod", [pod("nova-compute-default-b", node="compute-1")])
    assert (NS, "nova-compute-default-a") in touched and (NS, "nova-compute-default-a") not in v.pods
    assert v.pods_by_node == {"compute-1": {(NS, "nova-compute-default-b")}}
    v.resync(api.KIND, [])
    assert v.clouds == {} and v.verdict((NS, "nova-compute-default-b"), NOW) is None


def test_a_policy_switching_a_workload_off_stops_guarding_it() -> None:
    v = view(pod("nova-compute-default-a"))
    v.apply(api.KIND, "MODIFIED", cloud(workloads={"nova-compute-default": {"enabled": False}}))
    assert v.verdict((NS, "nova-compute-default-a"), NOW) is None


def test_workload_states_count_ready_pods_and_pdbs_turn_restarts_into_evictions() -> None:
    v = view(pod("nova-compute-default-a"), pod("nova-compute-default-b", ready=False, node="compute-1"))
    states = v.workload_states({COMPUTE: 1})
    assert (states[COMPUTE].pods, states[COMPUTE].ready, states[COMPUTE].restarting) == (3, 1, 1)
    key = (NS, "nova-compute-default-b")
    verdict = Verdict(True, Rule.NOT_READY, NOW - 300, "x", NOW - 180)
    assert v.failure(key, COMPUTE, verdict).pdb is False
    v.apply("PodDisruptionBudget", "ADDED", {"metadata": {"name": "nova", "namespace": NS},
                                            "spec": {"selector": {"matchLabels": {"application": "nova"}}}})
    assert v.failure(key, COMPUTE, verdict).pdb is True


# -- the Events: a new leader reads the restarts back ------------------------------------------------------
def failure(name: str = "nova-compute-default-a", node_name: str = "compute-0") -> Failure:
    return Failure(NS, name, COMPUTE, node_name, Verdict(True, Rule.CRASH_LOOP, NOW - 70, "crash", NOW - 10))


def test_a_restart_is_recorded_on_the_pod_and_its_owner_and_read_back_as_history() -> None:
    f = failure()
    d = Decision(NS, f.pod, COMPUTE, Action.DELETE, Reason.RESTART, "crash")
    on_pod, on_owner = act.restart_events(d, f, NOW)
    assert on_pod["regarding"]["kind"] == "Pod" and on_owner["regarding"]["kind"] == "DaemonSet"
    assert on_pod["metadata"]["labels"] == {act.EVENT_LABEL: "restart"}
    assert "compute-0" in on_pod["note"] and on_pod["type"] == "Warning"
    history = act.history_from_events([on_pod, on_owner], since=NOW - 3600)
    assert len(history.restarts) == 1  # the owner's copy carries no record: counted once
    r = history.restarts[0]
    assert (r.at, r.slot, r.node, r.workload, r.pod) == (NOW, f.slot, "compute-0", COMPUTE, f.pod)


@pytest.mark.parametrize("broken", [
    pytest.param({act.AT: "soon"}, id="at-not-a-number"),
    pytest.param({act.WORKLOAD: "DaemonSet/nova"}, id="workload-not-three-parts"),
    pytest.param({act.AT: str(NOW - 7200)}, id="older-than-the-window"),
])
def test_history_skips_records_it_cannot_trust(broken: dict[str, str]) -> None:
    f = failure()
    on_pod, _ = act.restart_events(Decision(NS, f.pod, COMPUTE, Action.DELETE, Reason.RESTART), f, NOW)
    on_pod["metadata"]["annotations"].update(broken)
    assert act.history_from_events([on_pod], since=NOW - 3600).restarts == ()


def test_event_notes_are_scrubbed_and_bounded() -> None:
    f = Failure(NS, "p", COMPUTE, None, Verdict(True, Rule.PHASE_FAILED, NOW, "x" * 5000, NOW))
    on_pod, _ = act.refusal_events(Decision(NS, "p", COMPUTE, Action.REFUSE, Reason.DB_QUORUM, "y" * 5000), f, NOW)
    assert len(on_pod["note"]) <= 1024 and on_pod["reason"] == "HealthWatcherRefused"
