"""Schema errors: each names the file, the line, the field and what would have been accepted."""

from __future__ import annotations

import importlib.resources
import json

import pytest

from openstack_gitops.model import SpecError, SpecInvalid, load_spec
from openstack_gitops.model.catalog import ALL_CHARTS, SERVICES
from openstack_gitops.model.presets import Size
from openstack_gitops.model.schema import schema, unquoted_reading

from .model_support import DELETE, text

SPEC_WITH_TYPOS = """\
apiVersion: openstack-gitops.io/v1alpha1
kind: OpenStackDeployment
metadata:
  name: cloud
spec:
  release: "2025.1"
  sise: small
  size: huge
  publicDomain: cloud.example.com
  services:
    identity: {enabled: true}
    image: {enabled: true}
    placement: {enabled: true}
    compute: {enabled: yes please}
    networking: {enabled: true}
    block-storage: {enabled: true}
    dashboard: {enabled: true}
    orchestration: {enabled: true}
    mariadb: {enabled: true}
    rabbitmq: {enabled: true}
    memcached: {enabled: true}
"""


def load_errors(yaml_text: str) -> list[SpecError]:
    with pytest.raises(SpecInvalid) as caught:
        load_spec(yaml_text, "openstack.yaml")
    return list(caught.value.errors)


def one_error(changes: dict[str, object]) -> SpecError:
    errors = load_errors(text(changes))
    assert len(errors) == 1, errors
    return errors[0]


def test_all_errors_are_reported_at_once_with_their_lines() -> None:
    errors = load_errors(SPEC_WITH_TYPOS)
    assert [(e.line, e.field) for e in errors] == [
        (7, "spec.sise"),
        (8, "spec.size"),
        (14, "spec.services.compute.enabled"),
    ]


def test_error_text_names_file_line_field_and_expected() -> None:
    errors = {e.field: str(e) for e in load_errors(SPEC_WITH_TYPOS)}
    assert errors["spec.size"] == (
        "openstack.yaml:8: spec.size: unknown size 'huge' (expected one of: small, medium, large)"
    )
    assert "did you mean 'size'?" in errors["spec.sise"]
    assert errors["spec.services.compute.enabled"] == (
        "openstack.yaml:14: spec.services.compute.enabled: wrong type: got the text 'yes please' "
        "(expected true or false)"
    )


@pytest.mark.parametrize(
    ("changes", "field", "message", "expected"),
    [
        pytest.param(
            {"spec.sizee": "small"},
            "spec.sizee",
            "unknown field 'sizee'; did you mean 'size'?",
            "one of: ",
            id="typo-key",
        ),
        pytest.param(
            {"spec.services.compute.enbled": True},
            "spec.services.compute.enbled",
            "unknown field 'enbled'",
            "one of: enabled",
            id="typo-nested-key",
        ),
        pytest.param(
            {"spec.size": "huge"}, "spec.size", "unknown size 'huge'", "one of: small, medium, large", id="unknown-size"
        ),
        pytest.param(
            {"spec.release": 2025.1},
            "spec.release",
            "wrong type: got the number 2025.1",
            'a string, quoted: "2025.1"',
            id="unquoted-release",
        ),
        pytest.param(
            {"spec.services.image.enabled": "on"},
            "spec.services.image.enabled",
            "wrong type",
            "true or false",
            id="wrong-type-bool",
        ),
        pytest.param(
            {"spec.services": ["identity"]},
            "spec.services",
            "wrong type: got a list",
            "a mapping",
            id="wrong-type-mapping",
        ),
        pytest.param(
            {"spec.size": DELETE},
            "spec.size",
            "missing required field 'size'",
            "one of: small, medium, large",
            id="missing-size",
        ),
        pytest.param(
            {"spec.services.dashboard": DELETE},
            "spec.services.dashboard",
            "missing required field 'dashboard'",
            "",
            id="service-not-listed",
        ),
        pytest.param(
            {"spec.networking": {"backend": "linuxbridge"}},
            "spec.networking.backend",
            "unknown backend 'linuxbridge'",
            "one of: openvswitch, ovn",
            id="unknown-backend",
        ),
        pytest.param(
            {"spec.overrides": {"novaa": {}}},
            "spec.overrides.novaa",
            "unknown chart 'novaa'; did you mean 'nova'?",
            "one of: mariadb",
            id="override-unknown-chart",
        ),
        pytest.param(
            {"spec.overrides": {"nova": "cpu=4"}},
            "spec.overrides.nova",
            "wrong type",
            "a mapping",
            id="override-not-mapping",
        ),
        pytest.param(
            {"spec.charts": {"versions": {"neutorn": "1"}}},
            "spec.charts.versions.neutorn",
            "unknown chart 'neutorn'",
            "one of:",
            id="version-unknown-chart",
        ),
        pytest.param(
            {"spec.charts": {"source": {"type": "git", "path": "x"}}},
            "spec.charts.source.type",
            "unknown chart source type 'git'",
            "one of: directory, helm, oci",
            id="unknown-source-type",
        ),
        pytest.param(
            {"spec.charts": {"source": {"type": "directory", "path": "../elsewhere"}}},
            "spec.charts.source.path",
            "invalid value '../elsewhere'",
            "relative to the config repo root",
            id="directory-escapes-repo",
        ),
        pytest.param(
            {"spec.charts": {"source": {"type": "helm"}}},
            "spec.charts.source.url",
            "missing required field 'url'",
            "",
            id="helm-without-url",
        ),
        pytest.param(
            {"spec.charts": {"source": {"type": "oci", "url": "https://x"}}},
            "spec.charts.source.url",
            "invalid value 'https://x'",
            "an oci:// registry path",
            id="oci-needs-oci-url",
        ),
        pytest.param(
            {"spec.charts": {"source": {"type": "directory", "path": "c", "url": "oci://x"}}},
            "spec.charts.source.url",
            "unknown field 'url'",
            "one of: path, type",
            id="directory-with-url",
        ),
        pytest.param(
            {"spec.nodeRoles": {"compute": {"a": "x", "b": "z"}}},
            "spec.nodeRoles.compute",
            "invalid value",
            "exactly one label",
            id="two-labels-per-role",
        ),
        pytest.param(
            {"spec.nodeRoles": {"compute": {"bad key!": "x"}}},
            "spec.nodeRoles.compute.bad key!",
            "invalid key 'bad key!'",
            "Kubernetes label key",
            id="bad-label-key",
        ),
        pytest.param(
            {"spec.nodeRoles": {"compute": {"role": True}}},
            "spec.nodeRoles.compute.role",
            "wrong type: got true",
            "a string",
            id="label-value-bool",
        ),
        pytest.param(
            {"spec.publicDomain": "Cloud_Example"}, "spec.publicDomain", "invalid value", "DNS domain", id="bad-domain"
        ),
        pytest.param({"metadata.name": "My Cloud"}, "metadata.name", "invalid value", "DNS label", id="bad-name"),
        pytest.param(
            {"kind": "Deployment"}, "kind", "unsupported value 'Deployment'", "OpenStackDeployment", id="wrong-kind"
        ),
        pytest.param(
            {"spec.autoscaling": {"keystone-api": {"minReplicas": 1, "maxReplicas": 2}}},
            "spec.autoscaling.keystone-api",
            "invalid value",
            "targetPerReplica (or targetSessionsPerReplica)",
            id="autoscaling-missing-target",
        ),
        pytest.param(
            {"spec.autoscaling": {"keystone-api": {"minReplicas": 1, "maxReplicas": 2, "targetSessionsPerReplica": 0}}},
            "spec.autoscaling.keystone-api.targetSessionsPerReplica",
            "invalid value 0",
            "above 0",
            id="autoscaling-zero-target",
        ),
        pytest.param(
            {"spec.healthWatcher": {"maxRestartsPerHour": -1}},
            "spec.healthWatcher.maxRestartsPerHour",
            "invalid value -1",
            "0 to 1000",
            id="negative-restart-budget",
        ),
    ],
)
def test_schema_error(changes: dict[str, object], field: str, message: str, expected: str) -> None:
    error = one_error(changes)
    assert error.file == "openstack.yaml"
    assert error.line is not None and error.line >= 1
    assert error.field == field
    assert message in error.message
    assert expected in error.expected
    assert error.expected, "every error says what was expected"


def test_schema_error_line_points_at_the_field() -> None:
    yaml_text = text({"spec.networking": {"backend": "linuxbridge"}})
    error = one_error({"spec.networking": {"backend": "linuxbridge"}})
    assert yaml_text.splitlines()[error.line - 1].strip() == "backend: linuxbridge"  # type: ignore[operator]


def test_a_missing_field_points_at_its_parent() -> None:
    yaml_text = text({"spec.services.dashboard": DELETE})
    error = one_error({"spec.services.dashboard": DELETE})
    assert yaml_text.splitlines()[error.line - 1].strip() == "services:"  # type: ignore[operator]


def test_schema_file_is_valid_draft_2020_12() -> None:
    assert schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_schema_enums_match_the_catalog() -> None:
    """The JSON file duplicates closed sets for operators' editors; they must not drift from the code."""
    spec_props = schema()["properties"]["spec"]["properties"]
    assert spec_props["size"]["enum"] == [s.value for s in Size]
    assert set(spec_props["services"]["required"]) == set(SERVICES)
    assert set(spec_props["services"]["properties"]) == set(SERVICES)
    assert set(schema()["$defs"]["chartName"]["enum"]) == set(ALL_CHARTS)


def test_schema_file_is_shipped_as_package_data() -> None:
    shipped = importlib.resources.files("openstack_gitops.model") / "openstackdeployment.schema.json"
    assert json.loads(shipped.read_text()) == schema()


def test_a_document_that_is_not_a_mapping_is_refused_at_line_1() -> None:
    (error,) = load_errors("just some text\n")
    assert str(error) == "openstack.yaml:1: wrong type: got the text 'just some text' (expected a mapping)"


def test_error_text_without_a_known_line_or_field() -> None:
    assert str(SpecError("openstack.yaml", None, "", "unreadable", "")) == "openstack.yaml: unreadable"


# A node label's key and value as most OpenStack-Helm templates write them: `{{ key }}: {{ value }}`,
# unquoted, so the pods' nodeSelector gets whatever YAML reads there.
NOT_STRINGS_UNQUOTED = {
    "true": "the boolean true",
    "True": "the boolean true",
    "false": "the boolean false",
    "yes": "the boolean true",
    "No": "the boolean false",
    "on": "the boolean true",
    "OFF": "the boolean false",
    "y": "a boolean",  # go-yaml's YAML 1.1
    "N": "a boolean",
    "null": "null",
    "Null": "null",
    "": "null",
    "1": "a number",
    "007": "a number",
    "1.5": "a number",
    "1e3": "a number",  # Go / YAML 1.2
    "1_000": "a number",
    "0x1F": "a number",
    "0o17": "a number",
    "0b101": "a number",
    "2024-01-02": "a date",
}
STRINGS_UNQUOTED = ("enabled", "prod", "openstack-control-plane", "example.com/role", "1a", "v1.2", "yes-please",
                    "nullable", "true_", "0x", "e3", "2024-01")


@pytest.mark.parametrize(("text_", "reading"), list(NOT_STRINGS_UNQUOTED.items()), ids=repr)
def test_a_plain_scalar_that_yaml_reads_as_no_string_is_named(text_: str, reading: str) -> None:
    assert unquoted_reading(text_) == reading


@pytest.mark.parametrize("text_", STRINGS_UNQUOTED)
def test_a_plain_scalar_that_stays_a_string_passes(text_: str) -> None:
    assert unquoted_reading(text_) is None


@pytest.mark.parametrize("role", ["controlPlane", "compute", "network"])
@pytest.mark.parametrize(
    ("value", "reading"),
    [("true", "the boolean true"), ("1", "a number"), ("on", "the boolean true"), ("null", "null"), ("", "null"),
     ("2024-01-02", "a date")],
)
def test_a_node_label_value_must_stay_a_string_unquoted(role: str, value: str, reading: str) -> None:
    """Quoted in the spec it is a string, but the charts write it unquoted: Kubernetes would refuse the pods."""
    changes = {"spec.nodeRoles": {role: {"example.com/role": value}}}
    error = one_error(changes)
    assert (error.file, error.field) == ("openstack.yaml", f"spec.nodeRoles.{role}.example.com/role")
    assert text(changes).splitlines()[error.line - 1].strip().startswith("example.com/role:")  # type: ignore[operator]
    assert error.message == f"value {value!r} is read as {reading} when a chart template writes it unquoted"
    assert "stays a string when unquoted in YAML" in error.expected


@pytest.mark.parametrize(("key", "reading"), [("true", "the boolean true"), ("yes", "the boolean true"),
                                              ("1", "a number"), ("null", "null")])
def test_a_node_label_key_must_stay_a_string_unquoted(key: str, reading: str) -> None:
    changes = {"spec.nodeRoles": {"network": {key: "enabled"}}}
    error = one_error(changes)
    assert error.field == f"spec.nodeRoles.network.{key}"
    assert error.line is not None
    assert error.message == f"key {key!r} is read as {reading} when a chart template writes it unquoted"
    assert "stays a string when unquoted in YAML" in error.expected


@pytest.mark.parametrize("value", [True, 1])
def test_an_unquoted_non_string_label_value_is_not_told_to_add_quotes(value: object) -> None:
    """Quoting `1` would only trade the type error for the one above: the hint says what would do."""
    error = one_error({"spec.nodeRoles": {"compute": {"role": value}}})
    assert error.message.startswith("wrong type")
    assert "quoted:" not in error.expected
    assert "stays a string when unquoted in YAML" in error.expected


def test_label_keys_and_values_that_stay_strings_are_accepted() -> None:
    roles = {"controlPlane": {"example.com/control": "prod"}, "compute": {"hypervisor": "enabled"},
             "network": {"gateway": "1a"}}
    assert load_spec(text({"spec.nodeRoles": roles}), "openstack.yaml").node_roles.network.value == "1a"
