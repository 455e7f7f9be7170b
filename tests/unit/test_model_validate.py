"""Meaning checks: each rule passes on a sound spec and fails, located and explained, on a broken one."""

from __future__ import annotations

from typing import Any

import pytest

from openstack_gitops.model import validate
from openstack_gitops.model.releases import CHART_VERSION, RELEASES
from openstack_gitops.model.validate import RULES

from .model_support import SERVICES, spec, text


def policy(minimum: int, maximum: int) -> dict[str, Any]:
    return {"minReplicas": minimum, "maxReplicas": maximum, "targetSessionsPerReplica": 50}


ALL_CHARTS_AT_PIN = dict(RELEASES["2025.1"].chart_versions)


@pytest.mark.parametrize(
    ("changes", "field", "message", "expected"),
    [
        pytest.param(
            {"spec.release": "2023.1"},
            "spec.release",
            "unknown release '2023.1'",
            "one of: 2025.1, 2025.2, 2026.1",
            id="unknown-release",
        ),
        pytest.param(
            {"spec.services.placement.enabled": False},
            "spec.services.compute.enabled",
            "compute needs placement, which is disabled",
            "spec.services.placement.enabled: true",
            id="dependency-off",
        ),
        pytest.param(
            {"spec.services.mariadb.enabled": False},
            "spec.services.identity.enabled",
            "identity needs mariadb",
            "mariadb.enabled: true",
            id="infra-off",
        ),
        pytest.param(
            {f"spec.services.{s}.enabled": False for s in SERVICES},
            "spec.services",
            "a spec that removes every service is refused",
            "at least one service enabled",
            id="every-service-off",
        ),
        pytest.param(
            {"spec.autoscaling": {"nova-conductor": policy(1, 3)}},
            "spec.autoscaling.nova-conductor",
            "'nova-conductor' is not an autoscalable API Deployment",
            "one of: keystone-api",
            id="autoscale-non-api",
        ),
        pytest.param(
            {"spec.autoscaling": {"keystone-apii": policy(1, 3)}},
            "spec.autoscaling.keystone-apii",
            "did you mean 'keystone-api'?",
            "one of:",
            id="autoscale-typo",
        ),
        pytest.param(
            {"spec.autoscaling": {"horizon": policy(1, 3)}, "spec.services.dashboard.enabled": False},
            "spec.autoscaling.horizon",
            "horizon belongs to dashboard, which is disabled",
            "dashboard enabled",
            id="autoscale-disabled-service",
        ),
        pytest.param(
            {"spec.autoscaling": {"keystone-api": policy(5, 2)}},
            "spec.autoscaling.keystone-api.minReplicas",
            "minReplicas 5 is greater than maxReplicas 2",
            "minReplicas <= maxReplicas",
            id="autoscale-min-above-max",
        ),
        pytest.param(
            {"spec.autoscaling": {"keystone-api": policy(0, 2)}},
            "spec.autoscaling.keystone-api.minReplicas",
            "minReplicas 0 is below 1",
            "at least 1",
            id="autoscale-min-below-1",
        ),
        pytest.param(
            {"spec.autoscaling": {"keystone-api": policy(2, 101)}},
            "spec.autoscaling.keystone-api.maxReplicas",
            "maxReplicas 101 is above 100",
            "at most 100",
            id="autoscale-max-above-100",
        ),
        pytest.param(
            {"spec.overrides": {"nova": {"pod": {"replicas": {"osapi": -1}}}}},
            "spec.overrides.nova.pod.replicas.osapi",
            "negative replica count -1",
            "0 or more",
            id="override-negative-replicas",
        ),
        pytest.param(
            {"spec.overrides": {"nova": {"pod": {"replicas": {"osapi": "three"}}}}},
            "spec.overrides.nova.pod.replicas.osapi",
            "is not a whole number",
            "a whole number",
            id="override-replicas-not-int",
        ),
    ],
)
def test_meaning_error(changes: dict[str, Any], field: str, message: str, expected: str) -> None:
    errors = validate(spec(changes))
    assert len(errors) == 1, errors
    (error,) = errors
    assert (error.file, error.field) == ("openstack.yaml", field)
    assert message in error.message
    assert expected in error.expected
    line = text(changes).splitlines()[error.line - 1]  # type: ignore[operator]
    assert field.rsplit(".", 1)[-1] in line, "the line shown is the line of the field"


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({}, id="everything-on"),
        pytest.param({"spec.services.dashboard.enabled": False}, id="leaf-service-off"),
        pytest.param(
            {
                f"spec.services.{s}.enabled": False
                for s in ("compute", "image", "placement", "networking", "block-storage", "dashboard", "orchestration")
            },
            id="identity-and-infra-only",
        ),
        pytest.param(
            {
                "spec.services.identity.enabled": False,
                **{
                    f"spec.services.{s}.enabled": False
                    for s in (
                        "compute",
                        "image",
                        "placement",
                        "networking",
                        "block-storage",
                        "dashboard",
                        "orchestration",
                    )
                },
            },
            id="infra-only",
        ),
        pytest.param({"spec.autoscaling": {"keystone-api": policy(1, 1)}}, id="autoscale-min-equals-max"),
        pytest.param({"spec.autoscaling": {"nova-api-osapi": policy(1, 100)}}, id="autoscale-max-100"),
        pytest.param({"spec.overrides": {"nova": {"pod": {"replicas": {"osapi": 0}}}}}, id="override-zero-replicas"),
        pytest.param({"spec.release": "2026.1"}, id="newest-release"),
    ],
)
def test_sound_specs_pass_every_rule(changes: dict[str, Any]) -> None:
    assert validate(spec(changes), ALL_CHARTS_AT_PIN) == []


def test_a_service_missing_two_dependencies_names_each() -> None:
    errors = validate(spec({"spec.services.image.enabled": False, "spec.services.placement.enabled": False}))
    assert [e.message for e in errors] == [
        "compute needs image, which is disabled",
        "compute needs placement, which is disabled",
    ]


@pytest.mark.parametrize(
    ("current", "target", "fragment", "expected"),
    [
        pytest.param(
            "2025.2",
            "2025.1",
            "downgrade from 2025.2 to 2025.1 is refused",
            "2025.2 or the release after",
            id="downgrade",
        ),
        pytest.param(
            "2025.1", "2026.1", "skip-level upgrade from 2025.1 to 2026.1 is refused", "2025.2 first", id="skip-level"
        ),
        pytest.param(
            "2024.2", "2025.1", "the running release 2024.2 is not supported", "one of:", id="running-unknown"
        ),
    ],
)
def test_release_changes_are_one_step_forward_only(current: str, target: str, fragment: str, expected: str) -> None:
    (error,) = validate(spec({"spec.release": target}), current_release=current)
    assert error.field == "spec.release"
    assert fragment in error.message
    assert expected in error.expected


@pytest.mark.parametrize(
    ("current", "target"),
    [
        pytest.param(None, "2025.1", id="fresh-install"),
        pytest.param("2025.2", "2025.2", id="unchanged"),
        pytest.param("2025.1", "2025.2", id="next-release"),
        pytest.param("2025.2", "2026.1", id="next-release-2"),
    ],
)
def test_allowed_release_changes(current: str | None, target: str) -> None:
    assert validate(spec({"spec.release": target}), current_release=current) == []


def test_a_chart_missing_from_the_source_is_named_with_its_expected_version() -> None:
    available = {k: v for k, v in ALL_CHARTS_AT_PIN.items() if k != "nova"}
    (error,) = validate(spec({"spec.charts.source": {"type": "directory", "path": "charts"}}), available)
    assert error.field == "spec.charts.source"
    assert "chart 'nova' is missing from the chart source (directory charts)" in error.message
    assert error.expected == f"nova {CHART_VERSION} (2025.1 pin)"


def test_a_chart_at_the_wrong_version_is_named_with_the_pinned_version() -> None:
    (error,) = validate(spec(), {**ALL_CHARTS_AT_PIN, "neutron": "2024.1.0"})
    assert error.field == "spec.release"
    assert "chart 'neutron' is version 2024.1.0" in error.message
    assert error.expected == f"neutron {CHART_VERSION} (2025.1 pin)"


def test_a_version_override_replaces_the_pin_and_is_blamed_when_wrong() -> None:
    s = spec({"spec.charts": {"versions": {"nova": "2026.1.1"}}})
    assert validate(s, {**ALL_CHARTS_AT_PIN, "nova": "2026.1.1"}) == []
    (error,) = validate(s, ALL_CHARTS_AT_PIN)
    assert error.field == "spec.charts.versions.nova"
    assert error.expected == "nova 2026.1.1 (override)"


def test_only_charts_of_enabled_services_are_required() -> None:
    available = {k: v for k, v in ALL_CHARTS_AT_PIN.items() if k not in {"horizon", "ovn"}}
    assert validate(spec({"spec.services.dashboard.enabled": False}), available) == []


def test_the_backend_chart_is_required() -> None:
    available = {k: v for k, v in ALL_CHARTS_AT_PIN.items() if k != "ovn"}
    (error,) = validate(spec({"spec.networking": {"backend": "ovn"}}), available)
    assert "chart 'ovn'" in error.message


def test_every_rule_is_named_and_listed_once() -> None:
    names = [name for name, _ in RULES]
    assert len(names) == len(set(names))
