"""The render policy refuses nothing a real cloud renders.

Every spec of config-repo-template (the template and its examples, both network backends) is
expanded with generated credentials and rendered with the real Helm through the product's own
Helm edge, from two chart sources: the template's test charts and the unmodified upstream
OpenStack-Helm charts in /work/shared/openstack-helm (helm-toolkit vendored from
``file://../helm-toolkit`` by the edge). The objects are parsed and stamped as the reconciler
does, and ``policy.check`` must find nothing: otherwise the reconciler would refuse real clouds.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from openstack_gitops.kube.objects import ObjectKey
from openstack_gitops.model import complete, expand, load_spec, needed_credentials, validate
from openstack_gitops.model.spec import ChartSource, ChartSourceType, Spec
from reconciler.edges.helm import Helm
from reconciler.engine import pipeline
from reconciler.plan import policy
from reconciler.plan.diff import Desired
from testbed.build import binary
from testbed.errors import TestbedError

from .chart_support import CHARTS_DIR, KUBE_VERSION, REPO_ROOT, WORKERS

TEMPLATE = REPO_ROOT / "config-repo-template" / "openstack.yaml"
SPEC_FILES: tuple[Path, ...] = (TEMPLATE, *sorted((TEMPLATE.parent / "examples").glob("*.yaml")))
UPSTREAM = Path(os.environ.get("OPENSTACK_HELM_DIR", "/work/shared/openstack-helm"))
SOURCES = {"template-charts": CHARTS_DIR, "upstream-openstack-helm": UPSTREAM}
CHECK_BUDGET_SECONDS = 0.5  # a whole cloud: generous for a slow CI machine; typical is far below


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Helm]:
    try:
        path = Path(binary("helm"))
    except TestbedError as exc:
        pytest.skip(f"pinned helm binary not built: {exc}")
    if not path.exists():
        pytest.skip(f"pinned helm binary missing at {path}")
    yield Helm(str(path), tmp_path_factory.mktemp("policy-helm"), timeout=180)


Cloud = tuple[Spec, list[Desired], dict[str, str]]


@pytest.fixture(scope="module")
def cloud(helm: Helm) -> Callable[[Path, str], Cloud]:
    """cloud(spec_file, source) -> (spec, rendered objects, credentials), rendered once per module."""
    done: dict[tuple[Path, str], Cloud] = {}

    def get(spec_file: Path, source: str) -> Cloud:
        charts_dir = SOURCES[source]
        if not (charts_dir / "helm-toolkit" / "Chart.yaml").exists():
            pytest.skip(f"no charts at {charts_dir}")
        if (spec_file, source) not in done:
            spec = load(spec_file)
            done[(spec_file, source)] = (spec, *render_cloud(helm, spec, charts_dir))
        return done[(spec_file, source)]

    return get


def load(path: Path) -> Spec:
    spec = load_spec(path.read_text(), path.name)
    assert validate(spec) == [], path.name
    return spec


def render_cloud(helm: Helm, spec: Spec, charts_dir: Path) -> tuple[list[Desired], dict[str, str]]:
    """What the reconciler's render phase produces (its own pipeline), plus the credentials."""
    spec = replace(spec, chart_source=ChartSource(ChartSourceType.DIRECTORY, str(charts_dir)))
    credentials, _ = complete({}, needed_credentials(spec), secrets.token_urlsafe)
    texts = pipeline.render(spec, charts_dir, helm, expand(spec, credentials), KUBE_VERSION, workers=WORKERS)
    desired = [pipeline.namespace_desired(spec)]
    for chart, text in texts.items():
        desired.extend(pipeline.desired_objects(spec, chart, text))
    return desired, credentials


@pytest.mark.parametrize("source", list(SOURCES))
@pytest.mark.parametrize("spec_file", SPEC_FILES, ids=[p.stem for p in SPEC_FILES])
def test_a_real_cloud_breaks_no_rule(cloud: Callable[[Path, str], Cloud], spec_file: Path, source: str) -> None:
    spec, desired, credentials = cloud(spec_file, source)
    assert len(desired) > 100
    found = policy.check(desired, spec.namespace, credentials)
    assert found == [], "\n".join(str(v) for v in found)


def test_the_render_holds_what_the_rules_are_about(cloud: Callable[[Path, str], Cloud]) -> None:
    """The clean result above is meaningful: the upstream render has cluster RBAC, a CRD, bindings and
    credentials in Secrets, and one leaked credential or one cluster-admin binding added to it is found."""
    spec, desired, credentials = cloud(TEMPLATE.parent / "examples" / "ovn-backend.yaml", "upstream-openstack-helm")
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


def test_check_is_fast_on_a_whole_cloud(cloud: Callable[[Path, str], Cloud]) -> None:
    """The full template cloud (~460 objects, every credential of the cloud) is checked well within a
    reconcile's budget; the best of five runs in CPU time, so a busy machine does not flake it."""
    spec, desired, credentials = cloud(TEMPLATE, "template-charts")
    timings = []
    for _ in range(5):
        started = time.process_time()
        assert policy.check(desired, spec.namespace, credentials) == []
        timings.append(time.process_time() - started)
    print(f"policy.check: {len(desired)} objects, {len(credentials)} credentials: best {min(timings) * 1000:.1f} ms")
    assert min(timings) < CHECK_BUDGET_SECONDS
