"""The render policy refuses nothing a real cloud renders.

Every spec of config-repo-template (the template and its examples, both network backends) is
expanded with generated credentials and rendered with the real Helm through the product's own
pipeline and Helm edge, from the unmodified upstream OpenStack-Helm charts (`testbed.charts`;
helm-toolkit vendored from ``file://../helm-toolkit`` by the edge). The objects are parsed and
stamped as the reconciler does, and ``policy.check`` must find nothing: otherwise the reconciler
would refuse real clouds. The renders are the session's shared `real_cloud` ones.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from openstack_gitops.kube.objects import ObjectKey
from reconciler.plan import policy
from reconciler.plan.diff import Desired

from .chart_support import EXAMPLES, SPEC_FILES, TEMPLATE, CloudFn

CHECK_BUDGET_SECONDS = 0.5  # a whole cloud: generous for a slow CI machine; typical is far below


@pytest.mark.parametrize("spec_file", SPEC_FILES, ids=[p.stem for p in SPEC_FILES])
def test_a_real_cloud_breaks_no_rule(real_cloud: CloudFn, spec_file: Path) -> None:
    cloud = real_cloud(spec_file)
    assert len(cloud.desired) > 100
    found = policy.check(list(cloud.desired), cloud.spec.namespace, cloud.credentials)
    assert found == [], "\n".join(str(v) for v in found)


def test_the_render_holds_what_the_rules_are_about(real_cloud: CloudFn) -> None:
    """The clean result above is meaningful: the upstream render has cluster RBAC, a CRD, bindings and
    credentials in Secrets, and one leaked credential or one cluster-admin binding added to it is found."""
    cloud = real_cloud(EXAMPLES / "ovn-backend.yaml")
    spec, desired, credentials = cloud.spec, list(cloud.desired), cloud.credentials
    kinds = {d.key.kind for d in desired}
    assert {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "Role", "RoleBinding"} <= kinds
    root = credentials["oslo_db.admin"]
    assert any(d.key.kind == "Secret" and d.service == "nova" for d in desired)
    leak = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "leak", "namespace": spec.namespace},
            "data": {"my.cnf": f"[client]\npassword={root}\n"}}
    pwn = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "pwn"},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
           "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": spec.namespace}]}
    extra = [Desired(ObjectKey.of(o), "nova", o) for o in (leak, pwn)]
    found = policy.check([*desired, *extra], spec.namespace, credentials)
    assert [(v.rule, v.object) for v in found] == [
        (policy.Rule.CREDENTIAL, f"ConfigMap/{spec.namespace}/leak"), (policy.Rule.ROLE_REF, "ClusterRoleBinding/pwn")]
    assert root not in "\n".join(str(v) for v in found)


def test_check_is_fast_on_a_whole_cloud(real_cloud: CloudFn) -> None:
    """The full template cloud (~460 objects, every credential of the cloud) is checked well within a
    reconcile's budget; the best of five runs in CPU time, so a busy machine does not flake it."""
    cloud = real_cloud(TEMPLATE)
    spec, desired, credentials = cloud.spec, list(cloud.desired), cloud.credentials
    timings = []
    for _ in range(5):
        started = time.process_time()
        assert policy.check(desired, spec.namespace, credentials) == []
        timings.append(time.process_time() - started)
    print(f"policy.check: {len(desired)} objects, {len(credentials)} credentials: best {min(timings) * 1000:.1f} ms")
    assert min(timings) < CHECK_BUDGET_SECONDS
