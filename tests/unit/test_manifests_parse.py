"""Rendered output is parsed whole and refused with the chart and template named."""

from __future__ import annotations

import pytest

from reconciler.plan.manifests import RenderInvalid, parse

GOOD = """---
# Source: keystone/templates/configmap-etc.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: keystone-etc
---
# Source: keystone/templates/clusterrole.yaml
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: keystone-reader
  namespace: ignored
"""


def test_parse_sets_namespace_only_on_namespaced_kinds() -> None:
    cm, role = parse("keystone", GOOD, "openstack")
    assert cm["metadata"]["namespace"] == "openstack"
    assert "namespace" not in role["metadata"]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("# Source: keystone/templates/bad.yaml\napiVersion: v1\nkind: [unclosed\n", "does not parse"),
        ("# Source: keystone/templates/x.yaml\nkind: ConfigMap\nmetadata: {name: a}\n", "missing apiVersion"),
        ("# Source: keystone/templates/x.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad_Name}\n",
         "not a valid object name"),
        ("# Source: keystone/templates/x.yaml\n- a\n- b\n", "expected a Kubernetes object"),
        (GOOD + "---\n# Source: keystone/templates/dup.yaml\napiVersion: v1\nkind: ConfigMap\n"
                "metadata: {name: keystone-etc}\n", "rendered twice"),
    ],
    ids=["malformed-yaml", "missing-apiversion", "bad-name", "not-a-mapping", "duplicate"],
)
def test_bad_render_names_chart_and_template(text: str, needle: str) -> None:
    with pytest.raises(RenderInvalid) as err:
        parse("keystone", text, "openstack")
    assert needle in str(err.value)
    assert str(err.value).startswith("chart keystone: keystone/templates/")
