"""Host discovery's pure core: the Job kubectl would make from a CronJob, and when to start one (fixed clock)."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from healthwatcher.discovery import (
    INSTANTIATE_ANNOTATION,
    LABEL,
    DiscoveryState,
    Idle,
    Retry,
    Start,
    Step,
    Wait,
    adopt,
    job_finished,
    job_from_cronjob,
    job_name,
    job_started,
    job_state,
    next_step,
    observe,
    ready_at,
    ready_nodes,
    start_failed,
)

NOW = 1_700_000_000.0
A, B, C, D = "compute-a", "compute-b", "compute-c", "compute-d"


def nodes(*names: str) -> frozenset[str]:
    return frozenset(names)


PRIMED = DiscoveryState(known=nodes(A))


def cronjob(**template_meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "nova-cell-setup", "namespace": "openstack", "uid": "uid-1",
                     "labels": {"openstack-gitops.io/deployment": "cloud"}, "resourceVersion": "7"},
        "spec": {"schedule": "0 */1 * * *", "concurrencyPolicy": "Forbid",
                 "jobTemplate": {"metadata": template_meta,
                                 "spec": {"template": {"metadata": {"labels": {"component": "cell-setup"}},
                                                       "spec": {"restartPolicy": "OnFailure",
                                                                "containers": [{"name": "c", "image": "i"}]}}}}},
    }


# -- job_from_cronjob ----------------------------------------------------------------------------------
def test_job_is_what_kubectl_creates_plus_our_label_and_a_ttl() -> None:
    source = cronjob(labels={"application": "nova", "component": "cell-setup"}, annotations={"note": "x"})
    kept = copy.deepcopy(source)
    job = job_from_cronjob(source, "nova-cell-setup-hd-1")
    assert job == {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {
            "name": "nova-cell-setup-hd-1", "namespace": "openstack",
            "labels": {"application": "nova", "component": "cell-setup", LABEL: "true"},
            "annotations": {INSTANTIATE_ANNOTATION: "manual", "note": "x"},
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "nova-cell-setup",
                                 "uid": "uid-1", "controller": True}],
        },
        "spec": {**source["spec"]["jobTemplate"]["spec"], "ttlSecondsAfterFinished": 3600,
                 "activeDeadlineSeconds": 1800},
    }
    assert source == kept  # the CronJob is not changed
    job["spec"]["template"]["spec"]["containers"][0]["image"] = "changed"
    assert source == kept  # nor shared with the Job


@pytest.mark.parametrize(("template_meta", "labels", "annotations"), [
    pytest.param({}, {LABEL: "true"}, {INSTANTIATE_ANNOTATION: "manual"}, id="no-template-metadata"),
    pytest.param({"annotations": {INSTANTIATE_ANNOTATION: "auto"}}, {LABEL: "true"},
                 {INSTANTIATE_ANNOTATION: "auto"}, id="template-annotation-wins-as-in-kubectl"),
    pytest.param({"labels": {LABEL: "false"}}, {LABEL: "true"}, {INSTANTIATE_ANNOTATION: "manual"},
                 id="our-label-wins"),
])
def test_job_metadata(template_meta: dict[str, Any], labels: dict[str, str], annotations: dict[str, str]) -> None:
    meta = job_from_cronjob(cronjob(**template_meta), "j")["metadata"]
    assert (meta["labels"], meta["annotations"]) == (labels, annotations)


def test_a_deadline_of_the_template_stays_and_one_is_added_when_it_has_none() -> None:
    """One of our Jobs at a time: a Job that never ends must fail by itself, or discovery stops for good."""
    source = cronjob()
    assert job_from_cronjob(source, "j")["spec"]["activeDeadlineSeconds"] == 1800
    source["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] = 120
    assert job_from_cronjob(source, "j")["spec"]["activeDeadlineSeconds"] == 120


def test_a_ttl_of_the_template_stays() -> None:
    source = cronjob()
    source["spec"]["jobTemplate"]["spec"]["ttlSecondsAfterFinished"] = 60
    assert job_from_cronjob(source, "j")["spec"]["ttlSecondsAfterFinished"] == 60
    assert job_from_cronjob(cronjob(), "j", ttl_seconds=10)["spec"]["ttlSecondsAfterFinished"] == 10


@pytest.mark.parametrize(("prefix", "now", "expected"), [
    pytest.param("nova-cell-setup", NOW, "nova-cell-setup-hd-1700000000", id="plain"),
    pytest.param("nova-cell-setup", NOW + 0.9, "nova-cell-setup-hd-1700000000", id="whole-seconds"),
    pytest.param("x" * 60, NOW, "x" * 49 + "-hd-1700000000", id="cut-to-63"),
    pytest.param("a" * 48 + "-b", NOW, "a" * 48 + "-hd-1700000000", id="no-dash-left-at-the-cut"),
])
def test_job_name(prefix: str, now: float, expected: str) -> None:
    assert job_name(prefix, now) == expected
    assert len(job_name(prefix, now)) <= 63


@pytest.mark.parametrize(("conditions", "expected"), [
    pytest.param(None, None, id="no-status"),
    pytest.param([], None, id="no-conditions"),
    pytest.param([{"type": "SuccessCriteriaMet", "status": "True"}], None, id="success-criteria-not-terminal"),
    pytest.param([{"type": "FailureTarget", "status": "True"}], None, id="failure-target-not-terminal"),
    pytest.param([{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}],
                 True, id="complete"),
    pytest.param([{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}], False, id="failed"),
    pytest.param([{"type": "Complete", "status": "False"}], None, id="complete-false"),
    pytest.param([{"type": "Suspended", "status": "True"}], None, id="suspended"),
])
def test_job_state(conditions: list[dict[str, str]] | None, expected: bool | None) -> None:
    job: dict[str, Any] = {"metadata": {"name": "j"}}
    if conditions is not None:
        job["status"] = {"conditions": conditions}
    assert job_state(job) is expected


def pod(node: str | None, ready: str = "True", deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": f"nova-compute-{node}"}
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return {"metadata": meta, "spec": {"nodeName": node} if node else {},
            "status": {"conditions": [{"type": "Ready", "status": ready}]}}


def test_ready_nodes_counts_ready_scheduled_pods_not_being_deleted() -> None:
    pods = [pod(A), pod(B, ready="False"), pod(C, deleting=True), pod(None), pod(D)]
    assert ready_nodes(pods) == nodes(A, D)


# -- the state machine ---------------------------------------------------------------------------------
Transition = Callable[[DiscoveryState], DiscoveryState]


def run(*transitions: Transition, state: DiscoveryState = DiscoveryState()) -> DiscoveryState:  # noqa: B008 (frozen)
    for transition in transitions:
        state = transition(state)
    return state


def seen(*names: str, at: float = NOW) -> Transition:
    return lambda s: observe(s, nodes(*names), at)


def started(name: str) -> Transition:
    return lambda s: job_started(s, name)


def ended(name: str, ok: bool, at: float) -> Transition:
    return lambda s: job_finished(s, name, ok, at)


@pytest.mark.parametrize(("state", "expected"), [
    pytest.param(run(seen(A, B)), DiscoveryState(known=nodes(A, B)), id="first-observation-primes"),
    pytest.param(run(seen(A), seen(A, at=NOW + 60)), PRIMED, id="nothing-new"),
    pytest.param(run(seen(A), seen(A, B, at=NOW + 1)),
                 replace(PRIMED, pending=nodes(B), pending_since=NOW + 1), id="new-node-pending"),
    pytest.param(run(seen(A), seen(A, B, at=NOW + 1), seen(A, B, C, at=NOW + 3)),
                 replace(PRIMED, pending=nodes(B, C), pending_since=NOW + 1), id="oldest-pending-time-kept"),
    pytest.param(run(seen(A), seen(A, B, at=NOW + 1), seen(A, at=NOW + 2)), PRIMED,
                 id="pending-node-gone-before-start-dropped"),
    pytest.param(run(seen(A), seen(at=NOW + 1), seen(A, at=NOW + 2)), PRIMED,
                 id="known-node-back-is-still-known"),
    pytest.param(run(seen(A), seen(A, B, at=NOW + 1), started("j1"), seen(A, B, C, at=NOW + 7)),
                 replace(PRIMED, running="j1", covering=nodes(B), pending=nodes(C), pending_since=NOW + 7),
                 id="node-during-job-waits-for-next"),
    pytest.param(run(seen(A), seen(A, B, at=NOW + 1), started("j1"), ended("j1", True, NOW + 30)),
                 DiscoveryState(known=nodes(A, B)), id="success-covers"),
    pytest.param(run(seen(A), seen(A, B, at=NOW + 1), started("j1"), ended("other", True, NOW + 30)),
                 replace(PRIMED, running="j1", covering=nodes(B)), id="another-jobs-end-ignored"),
    pytest.param(run(seen(A), seen(A, B, at=NOW + 1), started("j1"), ended("j1", False, NOW + 30)),
                 replace(PRIMED, pending=nodes(B), pending_since=NOW + 30, failures=1, retry_at=NOW + 40),
                 id="failure-leaves-nodes-pending-with-back-off"),
    pytest.param(run(seen(A), seen(A, B, at=NOW + 1), started("j1"), seen(A, B, C, at=NOW + 7),
                     ended("j1", False, NOW + 30)),
                 replace(PRIMED, pending=nodes(B, C), pending_since=NOW + 7, failures=1, retry_at=NOW + 40),
                 id="failure-merges-with-nodes-that-came-meanwhile"),
    pytest.param(run(seen(A), seen(A, B, at=NOW + 1), started("j1"), ended("j1", False, NOW + 30),
                     started("j2"), ended("j2", False, NOW + 60), started("j3"), ended("j3", True, NOW + 90)),
                 DiscoveryState(known=nodes(A, B)), id="success-resets-back-off"),
    pytest.param(run(seen(A), lambda s: adopt(s, "old"), seen(A, B, at=NOW + 1)),
                 replace(PRIMED, running="old", pending=nodes(B), pending_since=NOW + 1), id="adopted-job-runs"),
    pytest.param(run(seen(A), lambda s: adopt(s, "old"), lambda s: adopt(s, "other")),
                 replace(PRIMED, running="old"), id="adopt-keeps-the-running-job"),
    pytest.param(run(seen(A), seen(A, B, at=NOW + 1), lambda s: start_failed(s, NOW + 6)),
                 replace(PRIMED, pending=nodes(B), pending_since=NOW + 1, failures=1, retry_at=NOW + 16),
                 id="create-failed-backs-off"),
])
def test_transitions(state: DiscoveryState, expected: DiscoveryState) -> None:
    assert state == expected


@pytest.mark.parametrize(("state", "now", "expected"), [
    pytest.param(DiscoveryState(), NOW, Idle(), id="not-primed"),
    pytest.param(PRIMED, NOW, Idle(), id="nothing-pending"),
    pytest.param(replace(PRIMED, pending=nodes(B), pending_since=NOW), NOW + 1, Wait(NOW + 5), id="debounce"),
    pytest.param(replace(PRIMED, pending=nodes(B), pending_since=NOW), NOW + 5,
                 Start("nova-cell-setup-hd-1700000005"), id="after-debounce"),
    pytest.param(replace(PRIMED, pending=nodes(B), pending_since=NOW, running="j1"), NOW + 60, Idle(),
                 id="job-running"),
    pytest.param(replace(PRIMED, pending=nodes(B), pending_since=NOW, failures=1, retry_at=NOW + 40), NOW + 6,
                 Wait(NOW + 40), id="back-off"),
    pytest.param(replace(PRIMED, pending=nodes(B), pending_since=NOW, failures=1, retry_at=NOW + 40), NOW + 40,
                 Start("nova-cell-setup-hd-1700000040"), id="after-back-off"),
    pytest.param(replace(PRIMED, failures=1, retry_at=NOW + 40), NOW + 40, Idle(), id="back-off-nothing-pending"),
])
def test_next_step(state: DiscoveryState, now: float, expected: Step) -> None:
    assert next_step(state, now) == expected


def test_fifty_nodes_joining_at_once_make_one_job() -> None:
    state = run(seen(A))
    for i in range(50):  # one node every 50 ms, inside the debounce
        state = observe(state, state.known | state.pending | nodes(f"n{i}"), NOW + i * 0.05)
        assert not isinstance(next_step(state, NOW + i * 0.05), Start)
    assert next_step(state, NOW + 5) == Start("nova-cell-setup-hd-1700000005")
    state = job_started(state, "nova-cell-setup-hd-1700000005")
    assert len(state.covering) == 50 and not state.pending


def test_nodes_arriving_during_a_job_make_exactly_one_more_job() -> None:
    state = run(seen(A), seen(A, B, at=NOW + 1), started("j1"), seen(A, B, C, at=NOW + 8), seen(A, B, C, D, at=NOW + 9))
    assert next_step(state, NOW + 20) == Idle()
    state = job_finished(state, "j1", True, NOW + 30)
    assert next_step(state, NOW + 30) == Start("nova-cell-setup-hd-1700000030")  # debounce long over
    state = job_started(state, "j2")
    assert (state.covering, state.pending, next_step(state, NOW + 31)) == (nodes(C, D), nodes(), Idle())


@pytest.mark.parametrize(("failures", "delay"), [(1, 10.0), (2, 20.0), (3, 40.0), (5, 160.0), (6, 300.0), (30, 300.0)])
def test_back_off_grows_to_its_cap(failures: int, delay: float) -> None:
    assert Retry().delay(failures) == delay


def test_repeated_failures_never_loop_tightly() -> None:
    state = run(seen(A), seen(A, B, at=NOW))
    now, starts = NOW, []
    while now < NOW + 3600:
        step = next_step(state, now)
        if isinstance(step, Start):
            starts.append(now)
            state = job_finished(job_started(state, step.name), step.name, False, now + 1)
        now += 1
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert gaps == sorted(gaps) and gaps[-1] == 301  # 300 s back-off plus the Job's second
    assert len(starts) < 20


def test_ready_at() -> None:
    assert ready_at(PRIMED, 5.0) is None
    assert ready_at(replace(PRIMED, pending=nodes(B), pending_since=NOW), 5.0) == NOW + 5
    assert ready_at(replace(PRIMED, pending=nodes(B), pending_since=NOW, running="j"), 5.0) is None
