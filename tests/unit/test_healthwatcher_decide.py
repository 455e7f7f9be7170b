"""The health watcher's decide core: restart, force-delete or refuse, as table tests with a fixed clock (no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

from healthwatcher.decide import (
    RESTARTS,
    Action,
    Failure,
    History,
    Limits,
    Outcome,
    Reason,
    Restart,
    Workload,
    WorkloadRef,
    decide,
)
from healthwatcher.detect import Rule, Verdict
from openstack_gitops.model.spec import HealthWatcherPolicy

NOW = 1_000_000.0
POLICY = HealthWatcherPolicy(enabled=True, max_restarts_per_hour=10)
COMPUTE = WorkloadRef("DaemonSet", "openstack", "nova-compute-default")
MARIADB = WorkloadRef("StatefulSet", "openstack", "mariadb-server")
RABBIT = WorkloadRef("StatefulSet", "openstack", "rabbitmq-rabbitmq")
NOT_READY = Verdict(True, Rule.NOT_READY, NOW - 300, "not Ready")
EMPTY = History()
STUCK = Verdict(True, Rule.STUCK_TERMINATING, NOW - 300, "terminating on NotReady node")


def compute(i: int, verdict: Verdict = NOT_READY, **kw: object) -> Failure:
    return Failure("openstack", f"nova-compute-default-{i:05d}", COMPUTE, f"compute-{i}", verdict, **kw)  # type: ignore[arg-type]


def member(ref: WorkloadRef, i: int, verdict: Verdict = NOT_READY, **kw: object) -> Failure:
    return Failure("openstack", f"{ref.name}-{i}", ref, f"db-{i}", verdict, **kw)  # type: ignore[arg-type]


def workloads(*extra: Workload) -> dict[WorkloadRef, Workload]:
    base = [Workload(COMPUTE, pods=100, ready=99), Workload(MARIADB, pods=3, ready=2, database=True),
            Workload(RABBIT, pods=3, ready=2, database=True)]
    return {w.ref: w for w in (*base, *extra)}


def restarts(n: int, ago: float = 600.0, node: str | None = None, workload: WorkloadRef = COMPUTE,
             slot: str | None = None) -> tuple[Restart, ...]:
    return tuple(Restart(NOW - ago - i, slot or f"{workload}@other-{i}", f"p{i}", node or f"other-{i}", workload)
                 for i in range(n))


def run(failures: Sequence[Failure], state: dict[WorkloadRef, Workload] | None = None,
        history: History = EMPTY, policy: HealthWatcherPolicy = POLICY, limits: Limits | None = None,
        now: float = NOW) -> Outcome:
    return decide(failures, workloads() if state is None else state, policy, history, now, limits)


def only(outcome: Outcome) -> tuple[Action, Reason]:
    (d,) = outcome.decisions
    return d.action, d.reason


# --- how a restart is done ---------------------------------------------------------------------------

@pytest.mark.parametrize(("failure", "expected"), [
    pytest.param(compute(1), (Action.DELETE, Reason.RESTART), id="delete-so-the-controller-recreates"),
    pytest.param(compute(1, pdb=True), (Action.EVICT, Reason.RESTART_EVICT), id="evict-where-a-pdb-applies"),
    pytest.param(compute(1, STUCK), (Action.FORCE_DELETE, Reason.FORCE_DELETE), id="force-only-stuck-on-notready"),
    pytest.param(compute(1, STUCK, pdb=True), (Action.FORCE_DELETE, Reason.FORCE_DELETE),
                 id="force-even-with-pdb-the-kubelet-is-gone"),
    pytest.param(compute(1, Verdict(True, Rule.CRASH_LOOP, NOW - 90, "crash")), (Action.DELETE, Reason.RESTART),
                 id="crash-loop-is-a-plain-delete"),
    pytest.param(member(MARIADB, 1, Verdict(True, Rule.PHASE_FAILED, NOW - 60, "failed")),
                 (Action.DELETE, Reason.RESTART), id="db-member-not-ready-keeps-quorum"),
])
def test_restart_kind(failure: Failure, expected: tuple[Action, Reason]) -> None:
    outcome = run([failure])
    assert only(outcome) == expected
    assert outcome.history.restarts == (Restart(NOW, failure.slot, failure.pod, failure.node, failure.workload),)


# --- refusals ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("failures", "state", "history", "policy", "expected"), [
    pytest.param([compute(1)], None, History(), HealthWatcherPolicy(enabled=False), Reason.DISABLED, id="disabled"),
    pytest.param([compute(1)], {}, History(), POLICY, Reason.UNKNOWN_WORKLOAD, id="unknown-workload"),
    # databases
    pytest.param([member(MARIADB, 1)], workloads(Workload(MARIADB, 3, 2, database=True, rolling_out=True)),
                 History(), POLICY, Reason.DB_ROLLING_OUT, id="db-rolling-out"),
    pytest.param([member(MARIADB, 1)], workloads(Workload(MARIADB, 3, 2, database=True, restarting=1)),
                 History(), POLICY, Reason.DB_ONE_AT_A_TIME, id="db-another-member-restarting"),
    pytest.param([member(MARIADB, 1)], workloads(Workload(MARIADB, 3, 1, database=True)),
                 History(), POLICY, Reason.DB_QUORUM, id="db-another-member-already-down"),
    pytest.param([member(MARIADB, 1, ready=True)], workloads(Workload(MARIADB, 3, 2, database=True)),
                 History(), POLICY, Reason.DB_QUORUM, id="db-ready-member-would-break-quorum"),
    pytest.param([member(RABBIT, 1)], workloads(Workload(RABBIT, 5, 3, database=True, quorum=4)),
                 History(), POLICY, Reason.DB_QUORUM, id="db-explicit-quorum"),
    pytest.param([member(MARIADB, 1, STUCK)], workloads(Workload(MARIADB, 3, 1, database=True)),
                 History(), POLICY, Reason.DB_QUORUM, id="db-no-force-delete-without-quorum"),
    # back-off per pod slot
    pytest.param([compute(1)], None, History(restarts(1, ago=10, slot=f"{COMPUTE}@compute-1")), POLICY,
                 Reason.BACKING_OFF, id="backoff-30s-after-one-restart"),
    pytest.param([compute(1)], None, History(restarts(3, ago=100, slot=f"{COMPUTE}@compute-1")), POLICY,
                 Reason.BACKING_OFF, id="backoff-120s-after-three"),
    pytest.param([member(MARIADB, 1)], None, History(restarts(1, ago=10, workload=MARIADB,
                                                              slot="openstack/mariadb-server-1")), POLICY,
                 Reason.BACKING_OFF, id="backoff-follows-the-statefulset-member"),
    # sliding-hour rate limits
    pytest.param([compute(1)], None, History(restarts(3, node="compute-1")), POLICY, Reason.RATE_LIMIT_NODE,
                 id="rate-limit-per-node"),
    pytest.param([compute(1)], None, History(restarts(5)), POLICY, Reason.RATE_LIMIT_WORKLOAD,
                 id="rate-limit-per-workload"),
    pytest.param([compute(1)], None, History(restarts(3, workload=MARIADB) + restarts(2, workload=RABBIT)),
                 HealthWatcherPolicy(max_restarts_per_hour=5), Reason.RATE_LIMIT_TOTAL,
                 id="rate-limit-total-is-the-specs-maxRestartsPerHour"),
])
def test_refusal(failures: list[Failure], state: dict[WorkloadRef, Workload] | None, history: History,
                 policy: HealthWatcherPolicy, expected: Reason) -> None:
    outcome = run(failures, state, history, policy)
    (d,) = outcome.decisions
    assert (d.action, d.reason) == (Action.REFUSE, expected)
    assert d.reason not in RESTARTS and d.detail
    assert outcome.history.restarts == tuple(r for r in history.restarts)  # nothing recorded for a refusal


@pytest.mark.parametrize(("history", "now_offset", "reason"), [
    pytest.param(restarts(3, ago=3597, node="compute-1"), 0, Reason.RATE_LIMIT_NODE, id="inside-the-hour"),
    pytest.param(restarts(3, ago=3597, node="compute-1"), 1, Reason.RESTART, id="slides-out-of-the-hour"),
    pytest.param(restarts(1, ago=29, slot=f"{COMPUTE}@compute-1"), 0, Reason.BACKING_OFF, id="backoff-29s-of-30"),
    pytest.param(restarts(1, ago=29, slot=f"{COMPUTE}@compute-1"), 1, Reason.RESTART, id="backoff-over"),
    pytest.param(restarts(10, ago=4000, slot=f"{COMPUTE}@compute-1"), 0, Reason.RESTART,
                 id="backoff-resets-after-a-quiet-hour"),
])
def test_time_lifts_refusals(history: tuple[Restart, ...], now_offset: float, reason: Reason) -> None:
    assert only(run([compute(1)], history=History(history), now=NOW + now_offset))[1] is reason


@pytest.mark.parametrize(("history", "retry_at"), [
    pytest.param(restarts(1, ago=10, slot=f"{COMPUTE}@compute-1"), NOW + 20, id="backoff-due"),
    pytest.param(restarts(2, ago=10, slot=f"{COMPUTE}@compute-1"), NOW + 50, id="backoff-doubles"),
    pytest.param(restarts(3, ago=600, node="compute-1"), NOW - 602 + 3600, id="node-limit-oldest-leaves"),
])
def test_refusals_say_when_to_retry(history: tuple[Restart, ...], retry_at: float) -> None:
    (d,) = run([compute(1)], history=History(history)).decisions
    assert d.retry_at == retry_at


def test_backoff_is_capped() -> None:
    history = History(restarts(20, ago=10, slot=f"{COMPUTE}@compute-1"))
    (d,) = run([compute(1)], history=history, limits=Limits(per_node=99, per_workload=99)).decisions
    assert d.reason is Reason.BACKING_OFF
    assert d.retry_at == NOW - 10 + Limits().backoff_max


def test_backoff_follows_the_daemonset_slot_not_the_pod_name() -> None:
    history = History(restarts(1, ago=10, slot=f"{COMPUTE}@compute-1"))
    renamed = replace(compute(1), pod="nova-compute-default-zzzzz")
    assert only(run([renamed], history=history))[1] is Reason.BACKING_OFF
    assert only(run([compute(2)], history=history))[1] is Reason.RESTART


# --- the circuit breaker -------------------------------------------------------------------------------

@pytest.mark.parametrize(("failed", "pods", "open_"), [
    pytest.param(51, 100, True, id="51-of-100"),
    pytest.param(50, 100, False, id="50-of-100-is-not-more-than-half"),
    pytest.param(2, 3, True, id="2-of-3"),
    pytest.param(1, 1, False, id="one-pod-of-one-is-a-failure-not-an-outage"),
])
def test_breaker(failed: int, pods: int, open_: bool) -> None:
    state = workloads(Workload(COMPUTE, pods=pods, ready=pods - failed))
    limits = Limits(per_node=99, per_workload=999)
    outcome = run([compute(i) for i in range(failed)], state, policy=HealthWatcherPolicy(max_restarts_per_hour=999),
                  limits=limits)
    assert (COMPUTE in outcome.breakers) is open_
    reasons = {d.reason for d in outcome.decisions}
    assert reasons == ({Reason.BREAKER_OPEN} if open_ else {Reason.RESTART})
    assert (outcome.history.restarts == ()) is open_


@pytest.mark.parametrize(("failed", "unwell", "open_"), [
    pytest.param(1, 1, True, id="one-fired-one-within-grace-of-3"),
    pytest.param(1, 0, False, id="one-fired-alone"),
    pytest.param(0, 3, True, id="all-within-grace-opens-before-any-fires"),
])
def test_breaker_counts_pods_still_within_grace(failed: int, unwell: int, open_: bool) -> None:
    """A bad image fails every pod within a second of each other: the first one's grace running out
    must not restart it before the breaker sees the others."""
    state = workloads(Workload(COMPUTE, pods=3, ready=3 - failed - unwell))
    outcome = decide([compute(i) for i in range(failed)], state, POLICY, EMPTY, NOW, None, {COMPUTE: unwell})
    assert (COMPUTE in outcome.breakers) is open_
    assert {d.reason for d in outcome.decisions} == (set() if not failed else
                                                     {Reason.BREAKER_OPEN} if open_ else {Reason.RESTART})


def test_a_database_refuses_for_quorum_before_the_breaker() -> None:
    state = workloads(Workload(MARIADB, pods=3, ready=1, database=True))
    outcome = run([member(MARIADB, 1), member(MARIADB, 2)], state)
    assert MARIADB in outcome.breakers
    assert {d.reason for d in outcome.decisions} == {Reason.DB_QUORUM}


def test_breaker_is_per_workload() -> None:
    state = workloads(Workload(COMPUTE, pods=4, ready=1))
    outcome = run([compute(1), compute(2), compute(3), member(MARIADB, 1)], state)
    assert outcome.breakers == (COMPUTE,)
    assert {d.pod: d.reason for d in outcome.decisions}["mariadb-server-1"] is Reason.RESTART


# --- several failures in one call: each restart counts against the next ---------------------------------

def test_database_one_member_at_a_time_within_a_call() -> None:
    state = workloads(Workload(MARIADB, pods=5, ready=5, database=True))
    early = member(MARIADB, 2, Verdict(True, Rule.CRASH_LOOP, NOW - 500, "crash"), ready=True)
    late = member(MARIADB, 1, Verdict(True, Rule.CRASH_LOOP, NOW - 100, "crash"), ready=True)
    outcome = run([late, early], state)
    assert [(d.pod, d.reason) for d in outcome.decisions] == [
        ("mariadb-server-2", Reason.RESTART), ("mariadb-server-1", Reason.DB_ONE_AT_A_TIME)]


def test_limits_count_restarts_granted_in_the_same_call() -> None:
    outcome = run([compute(i) for i in range(4)], history=History(restarts(8, workload=MARIADB)),
                  limits=Limits(per_workload=99))
    assert [d.reason for d in outcome.decisions] == [Reason.RESTART, Reason.RESTART, Reason.RATE_LIMIT_TOTAL,
                                                     Reason.RATE_LIMIT_TOTAL]
    assert len(outcome.restarts) == 2 and len(outcome.refusals) == 2


def test_oldest_failure_first_and_order_independent() -> None:
    a = compute(1, Verdict(True, Rule.NOT_READY, NOW - 100, "x"))
    b = compute(2, Verdict(True, Rule.NOT_READY, NOW - 900, "x"))
    limits = Limits(per_workload=1)
    assert run([a, b], limits=limits) == run([b, a], limits=limits)
    assert [d.reason for d in run([a, b], limits=limits).decisions] == [Reason.RESTART, Reason.RATE_LIMIT_WORKLOAD]
    assert run([a, b], limits=limits).decisions[0].pod == b.pod


def test_history_forgets_what_no_rule_counts() -> None:
    old = restarts(2, ago=7200)
    assert run([], history=History(old + restarts(1))).history == History(restarts(1))
