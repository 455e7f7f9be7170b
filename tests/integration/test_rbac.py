"""manifests/rbac.yaml on the real apiserver: escalation is denied, and a whole cloud still reconciles.

The RBAC is applied with the admin client, a token for the reconciler's ServiceAccount comes from
the TokenRequest API, and every request below is made with that token: the apiserver's own RBAC
authorizer (with its escalation prevention) decides, nothing is mocked.
"""

from __future__ import annotations

import copy
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from openstack_gitops.kube.client import ApiError, Cluster
from openstack_gitops.kube.objects import ObjectKey
from reconciler.edges.git import GitSource
from reconciler.edges.helm import Helm
from reconciler.engine import status
from reconciler.engine.reconcile import Reconciler
from testbed import bed, build, controlplane

from .reconcile_support import AUDIT_LAG, WRITE_VERBS, ConfigRepo, reconcile_until_converged

pytestmark = pytest.mark.testbed

REPO = Path(__file__).resolve().parents[2]
RBAC_FILE = REPO / "manifests" / "rbac.yaml"
NAMESPACE_FILE = REPO / "manifests" / "namespace.yaml"
SA_NAMESPACE, SA_NAME = "openstack-gitops", "openstack-gitops-reconciler"
SA_USER = f"system:serviceaccount:{SA_NAMESPACE}:{SA_NAME}"
CLOUD_ROLE = "openstack-gitops-cloud"
RBAC_API = "rbac.authorization.k8s.io/v1"
ADMIN_MANAGER = "test-admin"


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


RBAC_DOCS = documents(RBAC_FILE)

def cloud_binding(namespace: str) -> dict[str, Any]:
    """The per-cloud RoleBinding of rbac.yaml, for another namespace (what an operator copies)."""
    (template,) = [d for d in RBAC_DOCS if d["kind"] == "RoleBinding" and d["roleRef"]["name"] == CLOUD_ROLE]
    out = copy.deepcopy(template)
    out["metadata"]["namespace"] = namespace
    return out


def denied(action: Callable[[], object]) -> ApiError:
    """Run ``action`` as the reconciler and return the apiserver's refusal (403)."""
    with pytest.raises(ApiError) as refused:
        action()
    assert refused.value.status == 403, str(refused.value)
    return refused.value


@pytest.fixture(scope="module")
def admin(testbed: bed.TestBed) -> Iterator[Cluster]:
    with testbed.api_client() as api:
        cluster = Cluster(api, field_manager=ADMIN_MANAGER)
        api.user_agent = ADMIN_MANAGER  # not the reconciler's: other tests count its requests by user agent
        yield cluster


@pytest.fixture(scope="module")
def installed(admin: Cluster) -> Iterator[None]:
    """manifests/namespace.yaml and manifests/rbac.yaml, applied by the admin; removed afterwards."""
    created = [d for d in [*documents(NAMESPACE_FILE), *RBAC_DOCS]
               if not admin.exists(d["apiVersion"], ObjectKey.of(d))]
    for doc in [*documents(NAMESPACE_FILE), *RBAC_DOCS]:
        admin.apply(doc)
    yield
    for doc in reversed(created):
        admin.delete(doc["apiVersion"], ObjectKey.of(doc))


@pytest.fixture(scope="module")
def sa_api(testbed: bed.TestBed, installed: None,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[client.ApiClient]:
    """An API client authenticated as the reconciler's ServiceAccount (a TokenRequest token)."""
    with testbed.api_client() as api:
        request = client.CoreV1Api(api).create_namespaced_service_account_token(
            SA_NAME, SA_NAMESPACE, {"spec": {"expirationSeconds": 3600}})
    kubeconfig = tmp_path_factory.mktemp("sa") / "kubeconfig"
    controlplane.write_kubeconfig(kubeconfig, testbed.control.server, testbed.control.pki.serving_cert,
                                  request.status.token, "reconciler-sa")
    api_client: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(kubeconfig))
    with api_client:
        yield api_client


@pytest.fixture(scope="module")
def sa(sa_api: client.ApiClient) -> Cluster:
    return Cluster(sa_api)


@pytest.fixture
def cloud_namespace(admin: Cluster, installed: None) -> Iterator[str]:
    """A namespace the operator has granted the reconciler (Namespace + the per-cloud RoleBinding)."""
    name = f"rbac-{uuid.uuid4().hex[:8]}"
    admin.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    admin.apply(cloud_binding(name))
    try:
        yield name
    finally:
        admin.delete("v1", ObjectKey("", "Namespace", "", name))


def binding(kind: str, name: str, role_kind: str, role: str, namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": RBAC_API, "kind": kind, "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": namespace or "default"}]}


def cluster_role(name: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": RBAC_API, "kind": "ClusterRole", "metadata": {"name": name}, "rules": list(rules)}


# -- (a) escalation attempts, refused by the apiserver ------------------------------------------
def test_a_clusterrolebinding_to_cluster_admin_is_denied(sa: Cluster) -> None:
    refusal = denied(lambda: sa.apply(binding("ClusterRoleBinding", "pwn", "ClusterRole", "cluster-admin")))
    assert SA_USER in refusal.message


@pytest.mark.parametrize("rule", [
    {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
    {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["escalate", "bind"]},
    {"apiGroups": [""], "resources": ["users", "groups", "serviceaccounts"], "verbs": ["impersonate"]},
], ids=["wildcard", "read-every-secret", "escalate-bind", "impersonate"])
def test_a_clusterrole_granting_more_than_it_holds_is_denied(sa: Cluster, rule: dict[str, Any]) -> None:
    denied(lambda: sa.apply(cluster_role("pwn", rule)))


def test_the_clusterroles_the_charts_render_are_allowed(sa: Cluster, admin: Cluster) -> None:
    """ovn-controller's ClusterRole and its binding: what the reconciler holds is enough to grant them."""
    role = cluster_role("ovn-controller-rbac-test", {"apiGroups": [""], "resources": ["nodes"],
                                                     "verbs": ["get", "patch", "list"]})
    sa.apply(role)
    try:
        sa.apply(binding("ClusterRoleBinding", "ovn-controller-rbac-test", "ClusterRole", "ovn-controller-rbac-test"),
                 dry_run=True)
    finally:
        admin.delete(RBAC_API, ObjectKey.of(role))


@pytest.mark.parametrize("role", ["cluster-admin", "admin", "edit", "system:controller:namespace-controller"])
def test_a_rolebinding_to_a_builtin_role_in_the_cloud_namespace_is_denied(sa: Cluster, cloud_namespace: str,
                                                                          role: str) -> None:
    denied(lambda: sa.apply(binding("RoleBinding", "pwn", "ClusterRole", role, cloud_namespace)))


def test_nothing_is_written_outside_the_cloud_namespaces(sa: Cluster) -> None:
    """Even a config repo that says `namespace: kube-system` gets no further than the apiserver."""
    denied(lambda: sa.apply({"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": "pwn", "namespace": "kube-system"}, "data": {}}))
    denied(lambda: sa.apply({"apiVersion": "apps/v1", "kind": "DaemonSet",
                             "metadata": {"name": "pwn", "namespace": "kube-system"},
                             "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
                                 "metadata": {"labels": {"a": "b"}},
                                 "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}))


def test_secrets_outside_the_cloud_namespaces(sa: Cluster, sa_api: client.ApiClient) -> None:
    """Secrets of kube-system can be neither read nor listed: the plan lists in the cloud's namespace."""
    denied(lambda: sa.get("v1", "Secret", "anything", "kube-system"))
    core = client.CoreV1Api(sa_api)
    with pytest.raises(client.ApiException) as refused:
        core.list_namespaced_secret("kube-system")
    assert refused.value.status == 403


def test_impersonation_is_denied(testbed: bed.TestBed, sa_api: client.ApiClient) -> None:
    impersonating = client.ApiClient(sa_api.configuration, header_name="Impersonate-User", header_value="admin")
    with impersonating, pytest.raises(client.ApiException) as refused:
        client.CoreV1Api(impersonating).list_namespace()
    assert refused.value.status == 403


def test_crds_only_by_name(sa: Cluster) -> None:
    """Its own and upstream mariadb's CRDs may be created (dry-run); any other is denied. (The version is
    the chart's own, v1alpha1: a cloud installed earlier in the session may have created the CRD.)"""
    def crd(plural: str, group: str) -> dict[str, Any]:
        return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "metadata": {"name": f"{plural}.{group}"},
                "spec": {"group": group, "scope": "Namespaced",
                         "names": {"plural": plural, "singular": plural[:-1], "kind": plural[:-1].title()},
                         "versions": [{"name": "v1alpha1", "served": True, "storage": True, "schema": {
                             "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}}

    sa.apply(crd("databases", "mariadb.osh.openstack.org"), dry_run=True)
    denied(lambda: sa.apply(crd("widgets", "example.com"), dry_run=True))


# -- (b) what a cloud needs is enough ------------------------------------------------------------
def sa_reconciler(sa_api: client.ApiClient, repo_url: str, workdir: Path) -> Reconciler:
    """reconcile_support.make_reconciler, but every request carries the ServiceAccount's token."""
    cluster = Cluster(sa_api)
    status.ensure_crd(cluster)
    helm = Helm(str(build.binary("helm")), workdir / "helm")
    return Reconciler(cluster, helm, GitSource(repo_url, "main", workdir / "checkout", timeout=20))


def sa_requests(testbed: bed.TestBed) -> list[dict[str, Any]]:
    return testbed.audit_events(user=SA_USER)


def test_a_whole_cloud_reconciles_with_only_this_rbac(testbed: bed.TestBed, admin: Cluster, sa_api: client.ApiClient,
                                                      tmp_path: Path, helm_repo: str) -> None:
    """The template cloud converges with every request made as the ServiceAccount, none refused, and
    a reconcile with nothing to do writes nothing."""
    repo = ConfigRepo(tmp_path, helm_repo)
    admin.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": repo.namespace}})
    admin.apply(cloud_binding(repo.namespace))  # the operator's one step per cloud namespace
    before = len(sa_requests(testbed))
    try:
        reconciler = sa_reconciler(sa_api, str(repo.bare), tmp_path)
        first = reconcile_until_converged(reconciler, attempts=90)
        refused = [f"{e['verb']} {e['requestURI']}" for e in sa_requests(testbed)[before:]
                   if (e.get("responseStatus") or {}).get("code") == 403]
        assert first.ok, f"{first.message}\nrefused: {refused}"
        assert first.converged, first.health
        assert refused == []
        # the passes that converged may still change something (the pre-created Namespace is adopted in
        # two steps), and the status says what the last pass did: go on until a pass changes nothing
        last, passes = first, 0
        while any(change.action.value != "unchanged" for change in last.changes.changes) and passes < 5:
            last, passes = reconciler.reconcile(), passes + 1
            assert last.ok, last.message
        mark = len(sa_requests(testbed))
        second = reconciler.reconcile()
        time.sleep(AUDIT_LAG)
        writes = Counter(f"{e['verb']} {e['requestURI']}" for e in sa_requests(testbed)[mark:]
                         if e["verb"] in WRITE_VERBS)
        assert second.ok, second.message
        assert writes == Counter(), writes
    finally:
        admin.delete("v1", ObjectKey("", "Namespace", "", repo.namespace))
