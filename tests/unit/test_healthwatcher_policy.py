"""The health watcher's policy in the spec: schema and meaning errors with file:line, the round trip
through the published resource, and how the watcher resolves workloads and limits from it (pure)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pytest

from healthwatcher.decide import Limits
from healthwatcher.detect import Thresholds
from healthwatcher.workloads import COMPUTE, DATABASE, Watched, defaults, limits, resolve
from openstack_gitops.api import health_watcher_policy, spec_document
from openstack_gitops.model import (
    HealthWatcherPolicy,
    NetworkBackend,
    SpecError,
    SpecInvalid,
    WatchedWorkloadPolicy,
    load_spec,
    validate,
)
from openstack_gitops.model.spec import DEFAULTS, WATCHER_FIELDS, watcher_policy

from .model_support import spec, text

OVS = NetworkBackend.OPENVSWITCH


def watcher(**fields_: Any) -> dict[str, Any]:
    return {"spec.healthWatcher": fields_}


def schema_errors(changes: dict[str, Any]) -> list[SpecError]:
    with pytest.raises(SpecInvalid) as caught:
        load_spec(text(changes), "openstack.yaml")
    return list(caught.value.errors)


def assert_located(error: SpecError, changes: dict[str, Any], field: str) -> None:
    assert (error.file, error.field) == ("openstack.yaml", field)
    assert error.expected, "every error says what was expected"
    line = text(changes).splitlines()[error.line - 1]  # type: ignore[operator]
    assert field.rsplit(".", 1)[-1] in line, line


# -- schema -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("changes", "field", "message", "expected"), [
    pytest.param(watcher(maxRestarts=3), "spec.healthWatcher.maxRestarts", "unknown field 'maxRestarts'",
                 "maxRestartsPerHour", id="unknown-field"),
    pytest.param(watcher(breakerPercent=0), "spec.healthWatcher.breakerPercent", "invalid value 0", "1 to 100",
                 id="percent-0"),
    pytest.param(watcher(breakerPercent=101), "spec.healthWatcher.breakerPercent", "invalid value 101", "1 to 100",
                 id="percent-101"),
    pytest.param(watcher(breakerPercent=50.5), "spec.healthWatcher.breakerPercent", "wrong type: got the number 50.5",
                 "a whole number", id="percent-fraction"),
    pytest.param(watcher(maxRestartsPerNodePerHour=101), "spec.healthWatcher.maxRestartsPerNodePerHour",
                 "invalid value 101", "0 to 100", id="per-node-101"),
    pytest.param(watcher(maxRestartsPerWorkloadPerHour=-1), "spec.healthWatcher.maxRestartsPerWorkloadPerHour",
                 "invalid value -1", "0 to 1000", id="per-workload-negative"),
    pytest.param(watcher(enabled="no"), "spec.healthWatcher.enabled", "wrong type: got the text 'no'",
                 "true or false", id="enabled-text"),
    pytest.param(watcher(workloads=[]), "spec.healthWatcher.workloads", "wrong type: got a list", "a mapping",
                 id="workloads-list"),
    pytest.param(watcher(workloads={"Nova_Compute": {"kind": "DaemonSet"}}),
                 "spec.healthWatcher.workloads.Nova_Compute",
                 "invalid key 'Nova_Compute'", "DNS label", id="name-not-a-dns-label"),
    pytest.param(watcher(workloads={"nova-compute-default": {"restarts": 5}}),
                 "spec.healthWatcher.workloads.nova-compute-default.restarts", "unknown field 'restarts'",
                 "restartLimit", id="unknown-workload-field"),
    pytest.param(watcher(workloads={"nova-compute-default": {"graceSeconds": {"crashloop": 5}}}),
                 "spec.healthWatcher.workloads.nova-compute-default.graceSeconds.crashloop",
                 "unknown field 'crashloop'; did you mean 'crashLoop'?", "notReady", id="unknown-grace-rule"),
    pytest.param(watcher(workloads={"nova-compute-default": {"graceSeconds": {"notReady": True}}}),
                 "spec.healthWatcher.workloads.nova-compute-default.graceSeconds.notReady", "wrong type: got true",
                 "a number", id="grace-bool"),
    pytest.param(watcher(workloads={"nova-compute-default": {"graceSeconds": {"notReady": 86401}}}),
                 "spec.healthWatcher.workloads.nova-compute-default.graceSeconds.notReady", "invalid value 86401",
                 "0 to 86400", id="grace-above-a-day"),
    pytest.param(watcher(workloads={"nova-compute-default": {"restartLimit": "five"}}),
                 "spec.healthWatcher.workloads.nova-compute-default.restartLimit", "wrong type: got the text 'five'",
                 "a whole number", id="restart-limit-text"),
    pytest.param(watcher(workloads={"nova-compute-default": {"restartLimit": 0}}),
                 "spec.healthWatcher.workloads.nova-compute-default.restartLimit", "invalid value 0", "1 to 100",
                 id="restart-limit-0"),
    pytest.param(watcher(workloads={"mariadb-server": {"quorum": 0}}),
                 "spec.healthWatcher.workloads.mariadb-server.quorum", "invalid value 0", "from 1", id="quorum-0"),
    pytest.param(watcher(workloads={"memcached": {"kind": "Deployment"}}),
                 "spec.healthWatcher.workloads.memcached.kind", "unknown workload kind 'Deployment'",
                 "DaemonSet, StatefulSet", id="kind-deployment"),
    pytest.param(watcher(workloads={"mariadb-server": None}), "spec.healthWatcher.workloads.mariadb-server",
                 "wrong type: got nothing (null)", "a mapping", id="workload-null"),
])
def test_schema_refuses_a_bad_policy_with_its_line(changes: dict[str, Any], field: str, message: str,
                                                   expected: str) -> None:
    (error,) = schema_errors(changes)
    assert_located(error, changes, field)
    assert message in error.message
    assert expected in error.expected


# -- meaning ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("changes", "field", "message", "expected"), [
    pytest.param(watcher(workloads={"nova-compute": {"restartLimit": 5}}), "spec.healthWatcher.workloads.nova-compute",
                 "'nova-compute' is not guarded by default with backend openvswitch; did you mean "
                 "'nova-compute-default'?", "kind: DaemonSet or kind: StatefulSet", id="unknown-without-kind"),
    pytest.param({"spec.networking": {"backend": "ovn"}, **watcher(workloads={"openvswitch": {"enabled": False}})},
                 "spec.healthWatcher.workloads.openvswitch", "not guarded by default with backend ovn",
                 "ovn-controller-default", id="other-backends-default-without-kind"),
    pytest.param(watcher(workloads={"mariadb-server": {"kind": "DaemonSet"}}),
                 "spec.healthWatcher.workloads.mariadb-server.kind", "mariadb-server is a StatefulSet, not a DaemonSet",
                 "kind: StatefulSet, or no kind", id="default-with-other-kind"),
    pytest.param(watcher(workloads={"nova-compute-default": {"quorum": 1}}),
                 "spec.healthWatcher.workloads.nova-compute-default.quorum",
                 "only read for a database workload, and nova-compute-default is not one", "database: true",
                 id="quorum-on-compute"),
    pytest.param(watcher(workloads={"mariadb-server": {"database": False, "quorum": 1}}),
                 "spec.healthWatcher.workloads.mariadb-server.quorum", "only read for a database workload",
                 "database: true, or no quorum", id="quorum-on-database-switched-off"),
    pytest.param(watcher(workloads={"memcached-memcached": {"kind": "StatefulSet", "quorum": 2}}),
                 "spec.healthWatcher.workloads.memcached-memcached.quorum", "only read for a database workload",
                 "database: true", id="quorum-on-new-non-database"),
    pytest.param(watcher(workloads={"mariadb-server": {"quorum": 2}}),
                 "spec.healthWatcher.workloads.mariadb-server.quorum",
                 "quorum 2 is more than the 1 replicas of mariadb-server", "at most 1",
                 id="quorum-above-size-replicas"),
    pytest.param({"spec.size": "large", "spec.overrides": {"rabbitmq": {"pod": {"replicas": {"server": 2}}}},
                  **watcher(workloads={"rabbitmq-rabbitmq": {"quorum": 3}})},
                 "spec.healthWatcher.workloads.rabbitmq-rabbitmq.quorum",
                 "quorum 3 is more than the 2 replicas of rabbitmq-rabbitmq", "at most 2",
                 id="quorum-above-overridden-replicas"),
])
def test_validation_refuses_a_meaningless_policy_with_its_line(changes: dict[str, Any], field: str, message: str,
                                                               expected: str) -> None:
    (error,) = validate(spec(changes))
    assert_located(error, changes, field)
    assert message in error.message
    assert expected in error.expected


@pytest.mark.parametrize("changes", [
    pytest.param(watcher(maxRestartsPerHour=0, maxRestartsPerNodePerHour=0, maxRestartsPerWorkloadPerHour=0),
                 id="zero-budgets-mean-never-restart"),
    pytest.param(watcher(breakerPercent=1), id="percent-1"),
    pytest.param(watcher(breakerPercent=100), id="percent-100"),
    pytest.param({"spec.size": "large", **watcher(workloads={"mariadb-server": {"quorum": 3, "kind": "StatefulSet"}})},
                 id="quorum-of-all-size-replicas"),
    pytest.param({"spec.overrides": {"mariadb": {"pod": {"replicas": {"server": 3}}}},
                  **watcher(workloads={"mariadb-server": {"quorum": 3}})}, id="quorum-of-overridden-replicas"),
    pytest.param(watcher(workloads={"ovn-ovsdb-sb": {"kind": "StatefulSet", "database": True, "quorum": 5}}),
                 id="new-database-quorum-unknowable"),
    pytest.param(watcher(workloads={"neutron-l3-agent-default": {"kind": "DaemonSet"},
                                    "nova-compute-default": {"enabled": False},
                                    "libvirt-libvirt-default": {"graceSeconds": {"crashLoop": 0, "notReady": 86400}}}),
                 id="add-drop-and-tune"),
])
def test_sound_policies_pass(changes: dict[str, Any]) -> None:
    assert validate(spec(changes)) == []


# -- the published resource -------------------------------------------------------------------------

FULL = watcher(enabled=False, maxRestartsPerHour=0, maxRestartsPerNodePerHour=7, maxRestartsPerWorkloadPerHour=9,
               breakerPercent=35, workloads={
                   "rabbitmq-rabbitmq": {"quorum": 1, "restartLimit": 2},
                   "mariadb-server": {"graceSeconds": {"crashLoop": 10, "phaseFailed": 20.5, "notReady": 30,
                                                       "terminating": 40}},
                   "ovn-ovsdb-sb": {"kind": "StatefulSet", "enabled": True, "database": True},
                   "openvswitch": {"enabled": False}})


def test_the_spec_reads_every_field() -> None:
    policy = spec(FULL).health_watcher
    assert policy == HealthWatcherPolicy(
        enabled=False, max_restarts_per_hour=0, max_restarts_per_node_per_hour=7, max_restarts_per_workload_per_hour=9,
        breaker_percent=35, workloads=(
            WatchedWorkloadPolicy("mariadb-server", crash_loop_grace_seconds=10.0, phase_failed_grace_seconds=20.5,
                                  not_ready_grace_seconds=30.0, terminating_grace_seconds=40.0),
            WatchedWorkloadPolicy("openvswitch", enabled=False),
            WatchedWorkloadPolicy("ovn-ovsdb-sb", kind="StatefulSet", database=True),
            WatchedWorkloadPolicy("rabbitmq-rabbitmq", quorum=1, restart_limit=2),
        ))


@pytest.mark.parametrize("changes", [pytest.param({}, id="defaults"), pytest.param(FULL, id="every-field")])
def test_the_published_policy_reads_back_equal(changes: dict[str, Any]) -> None:
    s = spec(changes)
    published = spec_document(s)
    assert health_watcher_policy(published) == s.health_watcher
    assert health_watcher_policy(published).workloads == s.health_watcher.workloads  # not both empty by accident
    assert set(published["healthWatcher"]) == set(WATCHER_FIELDS) | {"workloads"}


@pytest.mark.parametrize(("document", "policy"), [
    pytest.param({}, HealthWatcherPolicy(), id="nothing-published"),
    pytest.param({"healthWatcher": {"enabled": True, "maxRestartsPerHour": 4}},
                 HealthWatcherPolicy(max_restarts_per_hour=4), id="an-older-reconciler"),
    pytest.param({"healthWatcher": {"workloads": {"mariadb-server": {}, "libvirt-libvirt-default": {"quorum": None}}}},
                 HealthWatcherPolicy(workloads=(WatchedWorkloadPolicy("libvirt-libvirt-default"),
                                                WatchedWorkloadPolicy("mariadb-server"))),
                 id="empty-overrides-sorted"),
    pytest.param({"healthWatcher": {"breakerPercent": 20, "aNewerField": 1}}, HealthWatcherPolicy(breaker_percent=20),
                 id="a-newer-reconciler"),
])
def test_a_partial_published_policy_takes_defaults(document: dict[str, Any], policy: HealthWatcherPolicy) -> None:
    assert health_watcher_policy(document) == policy


def test_the_documented_defaults_are_the_dataclass_defaults() -> None:
    """DEFAULTS feeds the spec and the README; HealthWatcherPolicy() is what code builds: one set of values."""
    assert watcher_policy({}) == HealthWatcherPolicy()
    for name, (attr, _) in WATCHER_FIELDS.items():
        assert DEFAULTS[("healthWatcher", name)] == getattr(HealthWatcherPolicy(), attr), name


# -- what the watcher makes of it -------------------------------------------------------------------

NOVA = Watched("DaemonSet", "nova-compute-default", COMPUTE)
MARIADB = Watched("StatefulSet", "mariadb-server", DATABASE, database=True)


def by_name(watched: tuple[Watched, ...]) -> dict[str, Watched]:
    return {w.name: w for w in watched}


@pytest.mark.parametrize(("overrides", "changed", "dropped"), [
    pytest.param((), {}, set(), id="no-overrides-are-the-defaults"),
    pytest.param((WatchedWorkloadPolicy("nova-compute-default", restart_limit=7, not_ready_grace_seconds=300),),
                 {"nova-compute-default": Watched("DaemonSet", "nova-compute-default",
                                                  Thresholds(restart_limit=7, not_ready_grace=300.0))},
                 set(), id="override-keeps-the-rest"),
    pytest.param((WatchedWorkloadPolicy("mariadb-server", quorum=2, crash_loop_grace_seconds=30,
                                        phase_failed_grace_seconds=5, terminating_grace_seconds=90),),
                 {"mariadb-server": Watched("StatefulSet", "mariadb-server",
                                            Thresholds(restart_limit=5, crash_loop_grace=30.0, phase_failed_grace=5.0,
                                                       not_ready_grace=600.0, terminating_grace=90.0),
                                            database=True, quorum=2)},
                 set(), id="database-keeps-its-thresholds"),
    pytest.param((WatchedWorkloadPolicy("rabbitmq-rabbitmq", kind="StatefulSet", database=False),),
                 {"rabbitmq-rabbitmq": Watched("StatefulSet", "rabbitmq-rabbitmq", DATABASE, database=False)},
                 set(), id="database-switched-off"),
    pytest.param((WatchedWorkloadPolicy("openvswitch", enabled=False),), {}, {"openvswitch"}, id="disabled-dropped"),
    pytest.param((WatchedWorkloadPolicy("neutron-l3-agent-default", kind="DaemonSet", restart_limit=4),),
                 {"neutron-l3-agent-default": Watched("DaemonSet", "neutron-l3-agent-default",
                                                      Thresholds(restart_limit=4))},
                 set(), id="new-compute-workload"),
    pytest.param((WatchedWorkloadPolicy("ovn-ovsdb-sb", kind="StatefulSet", database=True, quorum=2),),
                 {"ovn-ovsdb-sb": Watched("StatefulSet", "ovn-ovsdb-sb", DATABASE, database=True, quorum=2)},
                 set(), id="new-database-gets-database-thresholds"),
    pytest.param((WatchedWorkloadPolicy("memcached-memcached", kind="StatefulSet", enabled=False),), {}, set(),
                 id="new-and-disabled-is-not-added"),
    pytest.param((WatchedWorkloadPolicy("memcached-memcached"),), {}, set(), id="new-without-kind-is-skipped"),
])
def test_resolve_merges_overrides_by_name(overrides: tuple[WatchedWorkloadPolicy, ...], changed: dict[str, Watched],
                                          dropped: set[str]) -> None:
    expected = by_name(defaults(OVS)) | changed
    for name in dropped:
        del expected[name]
    resolved = resolve(HealthWatcherPolicy(workloads=overrides), OVS)
    assert by_name(resolved) == expected
    assert [w.name for w in resolved] == sorted(expected)


def test_resolve_follows_the_backend() -> None:
    ovn = by_name(resolve(HealthWatcherPolicy(), NetworkBackend.OVN))
    assert "ovn-controller-default" in ovn and "openvswitch" not in ovn
    assert ovn["nova-compute-default"] == NOVA and ovn["mariadb-server"] == MARIADB


@pytest.mark.parametrize(("policy", "expected"), [
    pytest.param(HealthWatcherPolicy(), Limits(per_node=3, per_workload=5, breaker_share=0.5), id="defaults"),
    pytest.param(HealthWatcherPolicy(max_restarts_per_node_per_hour=0, max_restarts_per_workload_per_hour=40,
                                     breaker_percent=100),
                 Limits(per_node=0, per_workload=40, breaker_share=1.0), id="never-per-node-breaker-never"),
    pytest.param(HealthWatcherPolicy(max_restarts_per_hour=999, breaker_percent=1),
                 Limits(per_node=3, per_workload=5, breaker_share=0.01), id="total-is-not-a-limit-field"),
])
def test_limits_take_the_spec_budgets(policy: HealthWatcherPolicy, expected: Limits) -> None:
    assert limits(policy) == expected
    others = {f.name for f in fields(Limits)} - {"per_node", "per_workload", "breaker_share"}
    assert all(getattr(limits(policy), name) == getattr(Limits(), name) for name in others)
