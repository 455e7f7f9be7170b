"""glance keeps images on a PersistentVolumeClaim, and an operator's swift gets a generated Temp-URL key.

The glance chart defaults to `storage: swift`, an object store this product's cloud does not run,
and its storage-init Job then sets the chart's Temp-URL key `supersecret`. The expansion sets
`storage: pvc` (catalog, glance `settings`); these tests read the real chart's render of it, and
of an operator's `overrides.glance.storage: swift`.
"""

from __future__ import annotations

import base64
from dataclasses import replace
from typing import Any

import pytest

from openstack_gitops.kube.objects import ObjectKey
from openstack_gitops.model import expand
from reconciler.engine import pipeline
from reconciler.plan import policy
from reconciler.plan.diff import Desired

from .chart_support import EXAMPLES, TEMPLATE, CloudFn, Rendered, RenderFn

TMPURL_KEY = "glance.swift_tmpurl_key"


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    return dict(doc["spec"]["template"]["spec"])


def env(doc: dict[str, Any], container: str) -> dict[str, Any]:
    found = next(c for c in pod_spec(doc)["containers"] if c["name"] == container)
    return {e["name"]: e.get("value") for e in found.get("env", [])}


def test_glance_stores_images_on_its_persistent_volume_claims(real_cloud: CloudFn) -> None:
    cloud = real_cloud(TEMPLATE)
    glance = cloud.renders["glance"]
    assert cloud.values["glance"]["storage"] == "pvc"
    assert glance.names("PersistentVolumeClaim") == {"glance-images", "glance-tmp"}
    for name in ("glance-images", "glance-tmp"):
        claim = glance.find("PersistentVolumeClaim", name)
        assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep", "never pruned with glance"
    volumes = {v["name"]: v for v in pod_spec(glance.find("Deployment", "glance-api"))["volumes"]}
    assert volumes["glance-images"]["persistentVolumeClaim"] == {"claimName": "glance-images"}
    assert volumes["glance-tmp"]["persistentVolumeClaim"] == {"claimName": "glance-tmp"}
    conf = base64.b64decode(glance.find("Secret", "glance-etc")["data"]["glance-api.conf"]).decode()
    assert "default_backend = file" in conf.splitlines()
    init = env(glance.find("Job", "glance-storage-init"), "glance-storage-init")
    assert init["STORAGE_BACKEND"] == "pvc"
    assert "SWIFT_TMPURL_KEY" not in init


def test_a_cloud_with_many_glance_apis_shares_its_images_read_write_many(real_cloud: CloudFn) -> None:
    """large-cloud runs 3+ glance-api replicas: its override gives both claims a ReadWriteMany class."""
    glance = real_cloud(EXAMPLES / "large-cloud.yaml").renders["glance"]
    for name in ("glance-images", "glance-tmp"):
        claim = glance.find("PersistentVolumeClaim", name)["spec"]
        assert (claim["accessModes"], claim["storageClassName"]) == (["ReadWriteMany"], "shared-fs"), name


@pytest.fixture(scope="module")
def swift_glance(real_cloud: CloudFn, render_chart: RenderFn) -> tuple[Rendered, list[Desired], dict[str, str]]:
    """The template cloud's glance with an operator's `overrides.glance.storage: swift`."""
    cloud = real_cloud(TEMPLATE)
    spec = replace(cloud.spec, overrides={**cloud.spec.overrides, "glance": {"storage": "swift"}})
    credentials = dict(cloud.credentials)
    rendered = render_chart("glance", expand(spec, credentials)["glance"])
    return rendered, pipeline.desired_objects(spec, "glance", rendered.text), credentials


def test_swift_storage_gets_the_generated_temp_url_key(swift_glance: tuple[Rendered, Any, dict[str, str]]) -> None:
    rendered, _, credentials = swift_glance
    init = env(rendered.find("Job", "glance-storage-init"), "glance-storage-init")
    assert init["STORAGE_BACKEND"] == "swift"
    assert init["SWIFT_TMPURL_KEY"] == credentials[TMPURL_KEY]
    assert "PersistentVolumeClaim" not in {d["kind"] for d in rendered.docs}


def test_the_policy_allows_the_temp_url_key_only_in_storage_init(
    swift_glance: tuple[Rendered, list[Desired], dict[str, str]],
) -> None:
    _, desired, credentials = swift_glance
    namespace = desired[0].key.namespace
    assert policy.check(desired, namespace, credentials) == []
    leak = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "leak", "namespace": namespace},
            "data": {"key": credentials[TMPURL_KEY]}}
    found = policy.check([*desired, Desired(ObjectKey.of(leak), "glance", leak)], namespace,
                         credentials)
    assert [(v.rule, v.object) for v in found] == [(policy.Rule.CREDENTIAL, f"ConfigMap/{namespace}/leak")]
