"""plan.schedule: which writes run side by side and which in order. Pure, plain data."""

from __future__ import annotations

import pytest

from openstack_gitops.kube.objects import ObjectKey
from reconciler.plan.diff import Action, Step
from reconciler.plan.schedule import Stage, StageKind, chart_stages, lanes

ORDER = ("openstack-gitops", "mariadb", "keystone", "glance")


def step(kind: str, name: str, chart: str) -> Step:
    group = "apps" if kind == "Deployment" else "batch" if kind == "Job" else ""
    return Step(ObjectKey(group, kind, "openstack", name), Action.CREATE, chart, "new", {"kind": kind})


STEPS = [step("Deployment", "keystone-api", "keystone"), step("ConfigMap", "keystone-etc", "keystone"),
         step("Job", "keystone-bootstrap", "keystone"), step("ServiceAccount", "keystone-api", "keystone"),
         step("Service", "keystone-api", "keystone"), step("StatefulSet", "mariadb-server", "mariadb"),
         step("ConfigMap", "mariadb-etc", "mariadb"), step("Deployment", "glance-api", "glance")]


def shape(lane: tuple[Stage, ...]) -> list[str]:
    return [f"{s.kind.value} {s.service}" + (f" {sorted(x.key.name for x in s.steps)}" if s.steps else "")
            for s in lane]


def test_outside_an_upgrade_every_chart_is_a_lane_of_its_own_in_service_order() -> None:
    result = lanes(STEPS, hooked={"keystone"}, service_order=ORDER, upgrade=False)
    assert [shape(lane) for lane in result] == [
        ["objects mariadb ['mariadb-etc']", "objects mariadb ['mariadb-server']"],
        ["pre-hooks keystone",
         "objects keystone ['keystone-api', 'keystone-etc']",  # ServiceAccount and ConfigMap: one kind group
         "objects keystone ['keystone-api']",  # Service
         "objects keystone ['keystone-api']",  # Deployment
         "objects keystone ['keystone-bootstrap']",  # Jobs last
         "post-hooks keystone"],
        ["objects glance ['glance-api']"],
    ]


def test_a_release_upgrade_is_one_lane_chart_after_chart_each_gated() -> None:
    (lane,) = lanes(STEPS, hooked={"keystone", "mariadb"}, service_order=ORDER, upgrade=True)
    assert [str(s) for s in lane if s.kind is not StageKind.OBJECTS] == [
        "pre-hooks mariadb", "post-hooks mariadb", "gate mariadb",
        "pre-hooks keystone", "post-hooks keystone", "gate keystone", "gate glance"]
    services = [s.service for s in lane]
    assert services == sorted(services, key=ORDER.index)  # never back to an earlier chart


@pytest.mark.parametrize("upgrade", [False, True], ids=["install-or-change", "release-upgrade"])
def test_each_chart_gets_helms_order_pre_hooks_objects_post_hooks(upgrade: bool) -> None:
    for lane in lanes(STEPS, hooked={"keystone", "mariadb", "glance"}, service_order=ORDER, upgrade=upgrade):
        for chart in {s.service for s in lane}:
            kinds = [s.kind for s in lane if s.service == chart]
            assert kinds[0] is StageKind.PRE_HOOKS
            assert kinds[-2 if upgrade else -1] is StageKind.POST_HOOKS
            assert all(k is StageKind.OBJECTS for k in kinds[1:-2 if upgrade else -1])


def test_a_chart_with_hooks_due_but_no_object_to_write_still_runs_them() -> None:
    """A chart whose render changed only in a hook: its hooks run (and its revision is recorded)."""
    assert shape(lanes([], hooked={"glance"}, service_order=ORDER, upgrade=False)[0]) == [
        "pre-hooks glance", "post-hooks glance"]


def test_nothing_to_do_is_no_lane() -> None:
    assert lanes([], hooked=set(), service_order=ORDER, upgrade=False) == ()
    assert lanes([], hooked=set(), service_order=ORDER, upgrade=True) == ()


def test_a_chart_outside_the_order_goes_last() -> None:
    result = lanes([step("ConfigMap", "x", "extra"), *STEPS], hooked=set(), service_order=ORDER, upgrade=False)
    assert [lane[0].service for lane in result] == ["mariadb", "keystone", "glance", "extra"]


def test_chart_stages_without_hooks_or_gate_are_only_kind_groups() -> None:
    stages = chart_stages("mariadb", STEPS[5:7], hooked=False, gate=False)
    assert [s.kind for s in stages] == [StageKind.OBJECTS, StageKind.OBJECTS]
