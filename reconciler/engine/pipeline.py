"""The one render pipeline ``validate``, ``render`` and ``reconcile`` share.

load -> check -> (credentials, expand: the model) -> render every chart -> parse and stamp. The
CLI commands and the reconcile phases call these same functions, so what ``render`` shows for a
pull request is what ``reconcile`` would apply.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from openstack_gitops import api
from openstack_gitops.kube.objects import Manifest, ObjectKey, selector
from openstack_gitops.model import catalog
from openstack_gitops.model.errors import SpecError
from openstack_gitops.model.expand import autoscaled_deployments
from openstack_gitops.model.loader import load_spec
from openstack_gitops.model.spec import MetricPreset, Spec
from openstack_gitops.model.validate import Inputs, autoscaling_rendered, promql_checked, validate
from reconciler.edges.helm import Helm
from reconciler.edges.promql import find_promtool, parse_errors
from reconciler.engine.charts import available_charts, chart_refs
from reconciler.plan import hooks, manifests, ownership
from reconciler.plan.diff import Desired

SPEC_FILE = "openstack.yaml"
PRODUCT_SERVICE = "openstack-gitops"  # the service label of objects the product itself needs (the Namespace)

Progress = Callable[[str, int, int], None]


class SpecUnreadable(Exception):
    """The spec file cannot be read (missing, permissions)."""


def load(root: Path, spec_file: str = SPEC_FILE) -> Spec:
    """The spec of a config repo checkout; raises SpecUnreadable or the model's SpecInvalid."""
    try:
        text = (root / spec_file).read_text()
    except OSError as exc:
        raise SpecUnreadable(f"{spec_file}: cannot read ({exc.strerror})") from exc
    return load_spec(text, spec_file)


def check(spec: Spec, root: Path, current_release: str | None = None, promtool: str | None = None) -> list[SpecError]:
    """Meaning checks against the charts the repo holds, the release running now, and Prometheus'
    parser for raw autoscaling queries (skipped when promtool is not installed)."""
    return validate(spec, available_charts=available_charts(spec, root), current_release=current_release,
                    promql_errors=promql_errors(spec, promtool))


def promql_errors(spec: Spec, promtool: str | None = None) -> Mapping[str, str] | None:
    """Prometheus' parse errors of the spec's raw PromQL policies; None when they cannot be checked here."""
    queries = [promql_checked(p) for p in spec.autoscaling if p.metric is MetricPreset.PROMQL and p.query]
    if not queries:
        return {}
    tool = find_promtool(promtool)
    return None if tool is None else parse_errors(queries, tool)


def check_render(spec: Spec, objects: Sequence[Desired]) -> list[SpecError]:
    """Checks only a render can answer: every autoscaling policy names a Deployment the charts render."""
    rendered = frozenset(d.key.name for d in objects if d.key.kind == "Deployment")
    return list(autoscaling_rendered(spec, Inputs(rendered_deployments=rendered)))


def render(spec: Spec, root: Path, helm: Helm, values: Mapping[str, Mapping[str, Any]], kube_version: str,
           api_versions: Sequence[str] = (), workers: int = 4,
           progress: Progress = lambda _p, _d, _t: None) -> dict[str, str]:
    """Every chart rendered by Helm, in parallel; raises the Helm edge's HelmError for the first that fails."""
    refs = chart_refs(spec, root)
    texts: dict[str, str] = {}

    def render_one(chart: str) -> tuple[str, str]:
        return chart, helm.render(chart, refs[chart], spec.namespace, values[chart], kube_version, api_versions)

    progress("render", 0, len(values))
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for done, (chart, text) in enumerate(pool.map(render_one, list(values)), 1):
            texts[chart] = text
            progress("render", done, len(values))
    return texts


def desired_objects(spec: Spec, chart: str, text: str) -> list[Desired]:
    """One chart's render parsed and stamped as ours; raises manifests.RenderInvalid. Pure."""
    autoscaled = autoscaled_deployments(spec)
    out = []
    for obj in manifests.parse(chart, text, spec.namespace):
        if obj["kind"] == "Namespace" and obj["metadata"]["name"] == spec.namespace:
            continue  # the product owns the cloud's namespace
        autoscaled_here = obj["kind"] == "Deployment" and obj["metadata"]["name"] in autoscaled
        sent = ownership.without_replicas(obj) if autoscaled_here else obj  # the autoscaler owns replicas
        stamped = ownership.stamp(sent, spec.name, chart)
        out.append(Desired(ObjectKey.of(stamped), chart, stamped))
    return out


def stamped_namespace(spec: Spec) -> Manifest:
    """The cloud's Namespace, as the product applies (and owns) it."""
    return ownership.stamp({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": spec.namespace}},
                           spec.name, PRODUCT_SERVICE)


def namespace_desired(spec: Spec) -> Desired:
    """The cloud's Namespace as the first desired object of every render."""
    namespace = stamped_namespace(spec)
    return Desired(ObjectKey.of(namespace), PRODUCT_SERVICE, namespace)


def owned_selector(spec: Spec) -> str:
    """Every object this cloud's reconciler applied."""
    return selector({api.OWNER_LABEL: spec.name, api.MANAGED_BY_LABEL: api.FIELD_MANAGER})


def split_hooks(desired: Sequence[Desired]) -> tuple[list[Desired], list[hooks.Hook]]:
    """(objects the plan applies, Helm hooks run by their own rules); test hooks are left out. Pure."""
    return hooks.split(desired)


def removed_charts(spec: Spec, applied_services: Sequence[str] | set[str]) -> list[str]:
    """Charts the cloud has objects of that the spec no longer renders (switched off), in apply order."""
    wanted = set(spec.charts)
    return [c for c in catalog.APPLY_ORDER if c in set(applied_services) and c not in wanted]


def spec_with_chart(spec: Spec, chart: str) -> Spec:
    """``spec`` with ``chart``'s service switched on (and its network backend, for a switch chart):
    how a chart switched off is rendered once more, for its pre-delete hooks."""
    service = catalog.CHARTS[chart].service
    services = tuple(replace(s, enabled=True) if s.name == service else s for s in spec.services)
    backend = next((b for b, c in catalog.BACKEND_CHARTS.items() if c == chart), spec.network_backend)
    return replace(spec, services=services, network_backend=backend)


@functools.cache
def code_digest() -> str:
    """Digest of this product's own Python source: a new version may render the same inputs differently."""
    digest = hashlib.sha256()
    for package in ("openstack_gitops", "reconciler"):
        root = Path(__file__).resolve().parents[2] / package
        for path in sorted(root.rglob("*.py")):
            digest.update(str(path.relative_to(root.parent)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()
