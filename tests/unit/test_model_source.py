"""Parsing the spec file: syntax errors carry their line, and every key knows its line."""

from __future__ import annotations

import pytest

from openstack_gitops.model import SpecInvalid
from openstack_gitops.model.source import format_path, parse

VALID = """\
apiVersion: openstack-gitops.io/v1alpha1
kind: OpenStackDeployment
spec:
  services:
    compute:
      enabled: true
  nodeRoles:
    network: {"example.com/role": network}
  list:
    - a
    - b: 1
"""


@pytest.mark.parametrize(
    ("yaml_text", "line", "fragment"),
    [
        pytest.param("spec:\n  size: small\n   region: x\n", 3, "malformed YAML", id="bad-indent"),
        pytest.param("spec:\n  services: {identity: {enabled: true}\n", 3, "malformed YAML", id="unclosed-flow"),
        pytest.param("a: 1\n---\nb: 2\n", 2, "malformed YAML", id="two-documents"),
        pytest.param("spec:\n  size: 'small\n", 3, "malformed YAML", id="unclosed-quote"),
        pytest.param("spec:\n  release: 1\n  size: a\n  size: b\n", 4, "duplicate key 'size'", id="duplicate-key"),
        pytest.param("", 1, "the file is empty", id="empty"),
        pytest.param("spec:\n  overrides:\n    nova: {1: x}\n", 3, "is not a string", id="int-key"),
        pytest.param("spec:\n  x: .nan\n", 2, "not a finite number", id="nan"),
        pytest.param("spec:\n  x: !!binary aGk=\n", 2, "is not plain data", id="binary"),
    ],
)
def test_malformed_yaml_is_reported_with_file_and_line(yaml_text: str, line: int, fragment: str) -> None:
    with pytest.raises(SpecInvalid) as caught:
        parse(yaml_text, "openstack.yaml")
    (error,) = caught.value.errors
    assert error.file == "openstack.yaml"
    assert error.line == line
    assert fragment in error.message
    assert str(error).startswith(f"openstack.yaml:{line}: ")


@pytest.mark.parametrize(
    ("path", "line"),
    [
        pytest.param((), 1, id="root"),
        pytest.param(("spec",), 3, id="spec"),
        pytest.param(("spec", "services", "compute", "enabled"), 6, id="nested-key"),
        pytest.param(("spec", "nodeRoles", "network", "example.com/role"), 8, id="key-with-dots"),
        pytest.param(("spec", "list", 1, "b"), 11, id="list-item"),
        pytest.param(("spec", "services", "compute", "missing"), 5, id="missing-falls-back-to-parent"),
    ],
)
def test_every_field_knows_its_line(path: tuple[str | int, ...], line: int) -> None:
    assert parse(VALID, "f.yaml").source.line(path) == line


def test_timestamps_stay_strings_so_values_remain_json() -> None:
    doc = parse("spec:\n  when: 2025-01-01\n", "f.yaml")
    assert doc.data == {"spec": {"when": "2025-01-01"}}


@pytest.mark.parametrize(
    ("path", "shown"),
    [
        pytest.param(("spec", "services", "compute", "enabled"), "spec.services.compute.enabled", id="dotted"),
        pytest.param(("spec", "list", 0, "b"), "spec.list[0].b", id="index"),
        pytest.param((), "", id="root"),
    ],
)
def test_paths_read_the_way_operators_write_them(path: tuple[str | int, ...], shown: str) -> None:
    assert format_path(path) == shown
