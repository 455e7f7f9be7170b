"""The render policy: what a config repo may ask the cluster for (reconciler/plan/policy.py)."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from openstack_gitops.kube.objects import ObjectKey
from openstack_gitops.model.catalog import chart_credentials
from reconciler.plan.diff import Desired
from reconciler.plan.policy import Rule, Violation, check

NS = "openstack"
ROOT_PASSWORD = "root-Pa55word-0123456789abcdefghijklmnopqrs"  # a fake stored credential
NOVA_PASSWORD = "nova-Pa55word-0123456789abcdefghijklmnopqrs"
COOKIE = "erlang-cookie-0123456789abcdefghijklmnopqrstu"
MQ_ADMIN = "mq-admin-Pa55word-0123456789abcdefghijklmno"
SST = "sst-Pa55word-0123456789abcdefghijklmnopqrstu"
TMPURL = "tmpurl-key-0123456789abcdefghijklmnopqrstuvw"
CREDENTIALS = {"oslo_db.admin": ROOT_PASSWORD, "oslo_db.nova": NOVA_PASSWORD, "short": "abc1234",
               "oslo_messaging.erlang_cookie": COOKIE, "oslo_messaging.admin": MQ_ADMIN, "oslo_db.sst": SST,
               "glance.swift_tmpurl_key": TMPURL}
CARRIED = {"nova": ["oslo_db.admin", "oslo_db.nova", "oslo_messaging.admin"],
           "mariadb": ["oslo_db.admin", "oslo_db.sst"], "glance": ["glance.swift_tmpurl_key"],
           "memcached": [], "rabbitmq": ["oslo_messaging.admin", "oslo_messaging.erlang_cookie"]}
RBAC_GROUP = "rbac.authorization.k8s.io"
RBAC = f"{RBAC_GROUP}/v1"


def obj(kind: str, name: str, namespace: str | None = NS, api_version: str = "v1", **fields: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, **fields}


def role(name: str, *rules: dict[str, Any], kind: str = "Role", **meta: Any) -> dict[str, Any]:
    out = obj(kind, name, NS if kind == "Role" else None, RBAC, rules=list(rules))
    out["metadata"].update(meta)
    return out


def rule(groups: list[str], resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


def binding(name: str, ref_kind: str, ref_name: str, kind: str = "RoleBinding",
            subjects: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return obj(kind, name, NS if kind == "RoleBinding" else None, RBAC,
               roleRef={"apiGroup": RBAC_GROUP, "kind": ref_kind, "name": ref_name},
               subjects=subjects if subjects is not None else [sa(name)])


def sa(name: str, namespace: str = NS) -> dict[str, Any]:
    return {"kind": "ServiceAccount", "name": name, "namespace": namespace}


def secret(name: str, data: dict[str, str] | None = None, string_data: dict[str, str] | None = None,
           **meta: Any) -> dict[str, Any]:
    out = obj("Secret", name, type="Opaque")
    out["metadata"].update(meta)
    if data is not None:
        out["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    if string_data is not None:
        out["stringData"] = string_data
    return out


def deployment(name: str, env: list[dict[str, Any]] | None = None, **meta: Any) -> dict[str, Any]:
    out = obj("Deployment", name, api_version="apps/v1", spec={"template": {"spec": {"containers": [
        {"name": "api", "image": "nova:2025.1", "env": env or []}]}}})
    out["metadata"].update(meta)
    return out


MARIADB_CRD = obj("CustomResourceDefinition", "databases.mariadb.osh.openstack.org", None, "apiextensions.k8s.io/v1",
                  spec={"group": "mariadb.osh.openstack.org", "scope": "Namespaced"})
NODE_READER = rule([""], ["nodes"], ["get", "list"])
# The Role kubernetes-entrypoint gets from OpenStack-Helm's helm-toolkit (groups x resources).
ENTRYPOINT = rule(["", "extensions", "batch", "apps", "discovery.k8s.io"],
                  ["daemonsets", "jobs", "pods", "services", "endpoints", "endpointslices", "secrets"],
                  ["get", "list"])
OVN_CONTROLLER = [
    role("ovn-controller", rule([""], ["nodes"], ["get", "patch", "list"]), kind="ClusterRole"),
    binding("ovn-controller", "ClusterRole", "ovn-controller", kind="ClusterRoleBinding",
            subjects=[sa("ovn-controller"), sa("ovn-controller-gw")]),
]

Render = list[tuple[str, dict[str, Any]]]  # (chart, object) pairs, in render order


def mariadb_etc(base_cnf: str, name: str = "mariadb-etc", **data: str) -> dict[str, Any]:
    """upstream mariadb's server config: 00-base.cnf carries `wsrep_sst_auth=sst:<password>`."""
    return obj("ConfigMap", name, data={"00-base.cnf": base_cnf, **data})


BASE_CNF = f"[mysqld]\nwsrep_on=1\nwsrep_sst_auth=sst:{SST}\nwsrep_sst_method=mariabackup\n"


def render(*items: tuple[str, dict[str, Any]]) -> Render:
    return list(items)


def desired(items: Render) -> list[Desired]:
    return [Desired(ObjectKey.of(o), chart, o) for chart, o in items]


def violations(items: Render, namespace: str = NS) -> list[Violation]:
    return check(desired(items), namespace, CREDENTIALS, CARRIED)


ALLOWED: dict[str, Render] = {
    "configmap-in-the-namespace": render(("nova", obj("ConfigMap", "nova-bin", data={"a": "b"}))),
    "the-product-renders-the-cloud-namespace": render(("openstack-gitops", obj("Namespace", NS, None))),
    "ovn-controller-clusterrole-and-binding": render(*(("ovn", o) for o in OVN_CONTROLLER)),
    "nova-bootstrap-clusterrole-and-binding": render(
        ("nova", role("nova-bootstrap", NODE_READER, kind="ClusterRole")),
        ("nova", binding("nova-bootstrap", "ClusterRole", "nova-bootstrap", kind="ClusterRoleBinding"))),
    "entrypoint-role-and-binding": render(
        ("nova", role("nova-openstack-nova-api", ENTRYPOINT)),
        ("nova", binding("nova-openstack-nova-api", "Role", "nova-openstack-nova-api"))),
    "keystone-keys-role-writes-secrets-in-the-namespace": render(
        ("keystone", role("keystone-fernet-setup", rule([""], ["secrets"], ["get", "list", "create", "update",
                                                                             "patch"])))),
    "rolebinding-to-a-rendered-clusterrole": render(
        ("nova", role("nova-bootstrap", NODE_READER, kind="ClusterRole")),
        ("nova", binding("nova-reads-nodes", "ClusterRole", "nova-bootstrap"))),
    "rolebinding-subject-without-namespace": render(
        ("nova", role("r", rule([""], ["pods"], ["get"]))),
        ("nova", binding("r", "Role", "r", subjects=[{"kind": "ServiceAccount", "name": "r"}]))),
    "secret-data-with-the-charts-own-credentials": render(
        ("nova", secret("nova-db-admin", {"DB_CONNECTION": f"mysql+pymysql://root:{ROOT_PASSWORD}@mariadb/nova"})),
        ("nova", secret("nova-db-user", string_data={"password": NOVA_PASSWORD}))),
    "a-short-credential-is-not-scanned": render(("memcached", obj("ConfigMap", "c", data={"x": "abc1234"}))),
    "upstream-mariadb-crd": render(("mariadb", MARIADB_CRD)),
    "upstream-rabbitmq-erlang-cookie-env": render(("rabbitmq", obj(
        "StatefulSet", "rabbitmq-rabbitmq", api_version="apps/v1", spec={"template": {"spec": {"containers": [
            {"name": "rabbitmq", "env": [{"name": "RABBITMQ_ERLANG_COOKIE", "value": COOKIE}]}]}}}))),
    "upstream-rabbitmq-admin-uri-env": render(("rabbitmq", obj("Pod", "rabbitmq-test", spec={"containers": [
        {"name": "test", "env": [{"name": "RABBITMQ_ADMIN_CONNECTION",
                                  "value": f"rabbit://rabbitmq:{MQ_ADMIN}@rabbitmq:15672/"}]}]}))),
    "upstream-mariadb-sst-auth-in-mariadb-etc": render(("mariadb", mariadb_etc(BASE_CNF))),
    "upstream-mariadb-sst-auth-indented": render(("mariadb", mariadb_etc(f"[mysqld]\n  wsrep_sst_auth = sst:{SST}\n"))),
    "upstream-glance-swift-tmpurl-key-env": render(("glance", obj("Job", "glance-storage-init", api_version="batch/v1",
        spec={"template": {"spec": {"containers": [{"name": "glance-storage-init", "env": [
            {"name": "STORAGE_BACKEND", "value": "swift"}, {"name": "SWIFT_TMPURL_KEY", "value": TMPURL}]}]}}}))),
    "secret-referenced-not-copied": render(("nova", deployment("nova-api", env=[
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "nova-db-user", "key": "password"}}}]))),
}


@pytest.mark.parametrize("items", list(ALLOWED.values()), ids=list(ALLOWED))
def test_what_a_cloud_needs_is_allowed(items: Render) -> None:
    assert violations(items) == []


def _with_labels(o: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    out = copy.deepcopy(o)
    out["metadata"]["labels"] = labels
    return out


ROOT_B64_IN_TEXT = base64.b64encode(f"password={ROOT_PASSWORD}\n".encode()).decode()

# id -> (render, rule, words the violation text must contain)
REFUSED: dict[str, tuple[Render, Rule, str]] = {
    "configmap-in-another-namespace": (
        render(("nova", obj("ConfigMap", "x", "kube-system"))), Rule.NAMESPACE,
        "ConfigMap/kube-system/x (chart nova): is in namespace kube-system; namespaced objects may only be "
        "rendered into the cloud's namespace openstack"),
    "another-namespace": (
        render(("nova", obj("Namespace", "other", None))), Rule.CLUSTER_KIND, "a Namespace other than the cloud's"),
    "crd": (
        render(("mariadb", obj("CustomResourceDefinition", "x.example.com", None, "apiextensions.k8s.io/v1"))),
        Rule.CLUSTER_KIND, "CustomResourceDefinition x.example.com is not one the charts need"),
    "crd-not-on-the-list": (
        render(("mariadb", obj("CustomResourceDefinition", "certificates.cert-manager.io", None,
                               "apiextensions.k8s.io/v1"))), Rule.CLUSTER_KIND,
        "CustomResourceDefinition certificates.cert-manager.io is not one the charts need; "
        "CustomResourceDefinitions allowed: connections.mariadb.osh.openstack.org"),
    "crd-with-a-conversion-webhook": (
        render(("mariadb", {**MARIADB_CRD, "spec": {"conversion": {"strategy": "Webhook"}}})), Rule.CLUSTER_KIND,
        "has a Webhook conversion"),
    "priorityclass": (
        render(("nova", obj("PriorityClass", "top", None, "scheduling.k8s.io/v1", value=1_000_000_000))),
        Rule.CLUSTER_KIND, "PriorityClass is a cluster-scoped kind the reconciler does not apply; "
        "cluster-scoped kinds allowed: ClusterRole, ClusterRoleBinding, CustomResourceDefinition, Namespace"),
    "storageclass": (
        render(("glance", obj("StorageClass", "general", None, "storage.k8s.io/v1"))), Rule.CLUSTER_KIND,
        "StorageClass"),
    "webhook": (
        render(("nova", obj("MutatingWebhookConfiguration", "w", None, "admissionregistration.k8s.io/v1"))),
        Rule.CLUSTER_KIND, "MutatingWebhookConfiguration"),
    "cluster-scoped-kind-the-parser-gave-a-namespace": (
        render(("nova", obj("CertificateSigningRequest", "csr", NS, "certificates.k8s.io/v1"))),
        Rule.CLUSTER_KIND, "CertificateSigningRequest is a cluster-scoped kind"),
    "clusterrolebinding-to-cluster-admin": (
        render(("nova", binding("x", "ClusterRole", "cluster-admin", kind="ClusterRoleBinding"))), Rule.ROLE_REF,
        "ClusterRoleBinding/x (chart nova): binds ClusterRole cluster-admin, a built-in role; a binding may only "
        "reference a Role/ClusterRole rendered by the same cloud"),
    "clusterrolebinding-to-a-role-not-rendered": (
        render(("nova", binding("x", "ClusterRole", "some-operator", kind="ClusterRoleBinding"))), Rule.ROLE_REF,
        "binds ClusterRole some-operator, which the render does not contain"),
    "rolebinding-to-cluster-admin": (
        render(("nova", binding("x", "ClusterRole", "cluster-admin"))), Rule.ROLE_REF, "cluster-admin"),
    "rolebinding-to-admin": (render(("nova", binding("x", "ClusterRole", "admin"))), Rule.ROLE_REF, "admin"),
    "rolebinding-to-edit": (render(("nova", binding("x", "ClusterRole", "edit"))), Rule.ROLE_REF, "edit"),
    "rolebinding-to-a-system-role": (
        render(("nova", binding("x", "ClusterRole", "system:controller:token-cleaner"))), Rule.ROLE_REF,
        "system:controller:token-cleaner, a built-in role"),
    "rolebinding-to-a-role-not-rendered": (
        render(("nova", binding("x", "Role", "existing-role"))), Rule.ROLE_REF,
        "binds Role existing-role, which the render does not contain"),
    "clusterrolebinding-to-a-role": (
        render(("nova", role("r", NODE_READER)),
               ("nova", binding("x", "Role", "r", kind="ClusterRoleBinding"))), Rule.ROLE_REF,
        "a ClusterRoleBinding may only reference a ClusterRole"),
    "subject-is-a-group": (
        render(*(("ovn", o) for o in OVN_CONTROLLER[:1]),
               ("ovn", binding("all", "ClusterRole", "ovn-controller", kind="ClusterRoleBinding",
                               subjects=[{"kind": "Group", "name": "system:authenticated"}]))), Rule.SUBJECT,
        "binds Group system:authenticated; a binding may only bind ServiceAccounts of the cloud's namespace"),
    "subject-in-kube-system": (
        render(("nova", role("r", NODE_READER)),
               ("nova", binding("r", "Role", "r", subjects=[sa("default", "kube-system")]))), Rule.SUBJECT,
        "binds ServiceAccount default in namespace kube-system"),
    "subject-is-a-user": (
        render(("nova", role("r", NODE_READER)),
               ("nova", binding("r", "Role", "r", subjects=[{"kind": "User", "name": "alice"}]))), Rule.SUBJECT,
        "binds User alice"),
    "clusterrole-named-cluster-admin": (
        render(("nova", role("cluster-admin", NODE_READER, kind="ClusterRole"))), Rule.RESERVED_NAME,
        "cluster-admin is the name of a built-in"),
    "clusterrole-named-system": (
        render(("nova", role("system:node", NODE_READER, kind="ClusterRole"))), Rule.RESERVED_NAME, "system:node"),
    "clusterrolebinding-named-like-the-reconcilers": (
        render(("nova", role("n", NODE_READER, kind="ClusterRole")),
               ("nova", binding("openstack-gitops-reconciler", "ClusterRole", "n", kind="ClusterRoleBinding"))),
        Rule.RESERVED_NAME, "openstack-gitops*"),
    "role-wildcard-verbs": (
        render(("nova", role("r", rule([""], ["pods"], ["*"])))), Rule.ROLE_RULE, "rule 0 has a wildcard in verbs"),
    "role-wildcard-resources": (
        render(("nova", role("r", rule([""], ["*"], ["get"])))), Rule.ROLE_RULE, "wildcard in resources"),
    "role-wildcard-subresources": (
        render(("nova", role("r", rule(["apps"], ["*/scale"], ["get"])))), Rule.ROLE_RULE, "wildcard in resources"),
    "role-wildcard-groups": (
        render(("nova", role("r", rule(["*"], ["pods"], ["get"])))), Rule.ROLE_RULE, "wildcard in apiGroups"),
    "clusterrole-wildcard": (
        render(("nova", role("r", rule(["*"], ["*"], ["*"]), kind="ClusterRole"))), Rule.ROLE_RULE, "wildcard"),
    "role-escalate": (
        render(("nova", role("r", rule([RBAC_GROUP], ["roles"], ["escalate"])))), Rule.ROLE_RULE,
        "grants escalate; escalate, bind and impersonate are never granted"),
    "role-bind": (
        render(("nova", role("r", rule([RBAC_GROUP], ["clusterroles"], ["bind"])))), Rule.ROLE_RULE,
        "grants bind"),
    "role-impersonate": (
        render(("nova", role("r", rule([""], ["serviceaccounts"], ["impersonate"])))), Rule.ROLE_RULE,
        "grants impersonate"),
    "clusterrole-aggregation-rule": (
        render(("nova", {**role("r", kind="ClusterRole"), "aggregationRule": {"clusterRoleSelectors": [
            {"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-admin": "true"}}]}})), Rule.ROLE_RULE,
        "has an aggregationRule"),
    "clusterrole-aggregated-into-edit": (
        render(("nova", _with_labels(role("r", NODE_READER, kind="ClusterRole"),
                                     {"rbac.authorization.k8s.io/aggregate-to-edit": "true"}))), Rule.ROLE_RULE,
        "is labelled rbac.authorization.k8s.io/aggregate-to-edit"),
    "clusterrole-reads-secrets": (
        render(("nova", role("r", rule([""], ["secrets"], ["list"]), kind="ClusterRole"))), Rule.CLUSTER_GRANT,
        "rule 0 grants list on secrets cluster-wide; a ClusterRole may only grant nodes: get, list, patch"),
    "clusterrole-deletes-nodes": (
        render(("nova", role("r", rule([""], ["nodes"], ["delete"]), kind="ClusterRole"))), Rule.CLUSTER_GRANT,
        "grants delete on nodes"),
    "clusterrole-non-resource-urls": (
        render(("nova", role("r", {"nonResourceURLs": ["/metrics"], "verbs": ["get"]}, kind="ClusterRole"))),
        Rule.CLUSTER_GRANT, "grants nonResourceURLs"),
    "db-root-password-in-a-configmap": (
        render(("nova", obj("ConfigMap", "leak", data={"root": ROOT_PASSWORD}))), Rule.CREDENTIAL,
        "ConfigMap/openstack/leak (chart nova): holds the stored credential oslo_db.admin outside Secret data; "
        "a stored credential may appear only in the data of Secrets of a chart that carries it (mariadb, nova)"),
    "credential-inside-a-longer-string": (
        render(("nova", obj("ConfigMap", "leak", data={"conf": f"connection = x://root:{ROOT_PASSWORD}@db"}))),
        Rule.CREDENTIAL, "oslo_db.admin"),
    "credential-base64-in-a-configmap": (
        render(("nova", obj("ConfigMap", "leak", data={"b": ROOT_B64_IN_TEXT}))), Rule.CREDENTIAL, "oslo_db.admin"),
    "credential-in-binarydata": (
        render(("nova", obj("ConfigMap", "leak", binaryData={"b": base64.b64encode(
            ROOT_PASSWORD.encode()).decode()}))), Rule.CREDENTIAL, "oslo_db.admin"),
    "credential-in-an-annotation": (
        render(("nova", deployment("nova-api", annotations={"debug": NOVA_PASSWORD}))), Rule.CREDENTIAL,
        "Deployment/openstack/nova-api (chart nova): holds the stored credential oslo_db.nova outside Secret data"),
    "credential-as-an-env-value": (
        render(("nova", deployment("nova-api", env=[{"name": "DB_PASSWORD", "value": NOVA_PASSWORD}]))),
        Rule.CREDENTIAL, "oslo_db.nova outside Secret data"),
    "erlang-cookie-env-in-another-chart": (
        render(("nova", deployment("nova-api", env=[{"name": "RABBITMQ_ERLANG_COOKIE", "value": COOKIE}]))),
        Rule.CREDENTIAL, "oslo_messaging.erlang_cookie outside Secret data"),
    "erlang-cookie-in-another-env-var": (
        render(("rabbitmq", deployment("x", env=[{"name": "COOKIE_COPY", "value": COOKIE}]))),
        Rule.CREDENTIAL, "oslo_messaging.erlang_cookie outside Secret data"),
    "erlang-cookie-env-and-an-annotation": (
        render(("rabbitmq", deployment("x", env=[{"name": "RABBITMQ_ERLANG_COOKIE", "value": COOKIE}],
                                       annotations={"c": COOKIE}))),
        Rule.CREDENTIAL, "oslo_messaging.erlang_cookie outside Secret data"),
    "another-credential-in-the-excepted-env-var": (
        render(("rabbitmq", deployment("x", env=[{"name": "RABBITMQ_ERLANG_COOKIE", "value": ROOT_PASSWORD}]))),
        Rule.CREDENTIAL, "oslo_db.admin outside Secret data"),
    "sst-password-in-another-option-of-the-same-file": (
        render(("mariadb", mariadb_etc(BASE_CNF + f"[client]\npassword={SST}\n"))), Rule.CREDENTIAL,
        "ConfigMap/openstack/mariadb-etc (chart mariadb): holds the stored credential oslo_db.sst outside Secret data"),
    "sst-password-in-a-comment-after-the-option": (
        render(("mariadb", mariadb_etc(f"[mysqld]\nwsrep_sst_auth=sst:x # {SST}\n"))),
        Rule.CREDENTIAL, "oslo_db.sst outside Secret data"),
    "sst-password-glued-to-a-comment-after-the-option": (
        render(("mariadb", mariadb_etc(f"[mysqld]\nwsrep_sst_auth=sst:x#{SST}\n"))),
        Rule.CREDENTIAL, "oslo_db.sst outside Secret data"),
    "sst-password-in-another-key-of-mariadb-etc": (
        render(("mariadb", mariadb_etc(BASE_CNF, **{"99-extra.cnf": f"[mysqld]\nwsrep_sst_auth=sst:{SST}\n"}))),
        Rule.CREDENTIAL, "oslo_db.sst outside Secret data"),
    "sst-auth-in-another-configmap-of-mariadb": (
        render(("mariadb", mariadb_etc(BASE_CNF, name="mariadb-etc-copy"))), Rule.CREDENTIAL,
        "ConfigMap/openstack/mariadb-etc-copy (chart mariadb): holds the stored credential oslo_db.sst"),
    "sst-auth-in-a-configmap-named-mariadb-etc-of-another-chart": (
        render(("nova", mariadb_etc(BASE_CNF))), Rule.CREDENTIAL,
        "ConfigMap/openstack/mariadb-etc (chart nova): holds the stored credential oslo_db.sst"),
    "root-password-as-wsrep-sst-auth": (
        render(("mariadb", mariadb_etc(f"[mysqld]\nwsrep_sst_auth=root:{ROOT_PASSWORD}\n"))), Rule.CREDENTIAL,
        "oslo_db.admin outside Secret data"),
    "sst-auth-and-an-annotation-of-mariadb-etc": (
        render(("mariadb", {**mariadb_etc(BASE_CNF), "metadata": {"name": "mariadb-etc", "namespace": NS,
                                                                   "annotations": {"x": SST}}})),
        Rule.CREDENTIAL, "oslo_db.sst outside Secret data"),
    "sst-auth-in-a-secret-of-another-chart": (
        render(("nova", secret("nova-x", {"00-base.cnf": BASE_CNF}))), Rule.CREDENTIAL,
        "oslo_db.sst in its data, but the chart does not carry it"),
    "swift-tmpurl-key-in-another-env-var": (
        render(("glance", deployment("glance-api", env=[{"name": "TMPURL_COPY", "value": TMPURL}]))),
        Rule.CREDENTIAL, "glance.swift_tmpurl_key outside Secret data"),
    "swift-tmpurl-key-env-in-another-chart": (
        render(("nova", deployment("nova-api", env=[{"name": "SWIFT_TMPURL_KEY", "value": TMPURL}]))),
        Rule.CREDENTIAL, "glance.swift_tmpurl_key outside Secret data"),
    "credential-in-a-secret-annotation": (
        render(("nova", secret("nova-db-user", {"password": NOVA_PASSWORD}, annotations={"x": NOVA_PASSWORD}))),
        Rule.CREDENTIAL, "oslo_db.nova outside Secret data"),
    "credential-in-a-secret-of-a-chart-that-does-not-carry-it": (
        render(("memcached", secret("memcached-x", {"p": ROOT_PASSWORD}))), Rule.CREDENTIAL,
        "Secret/openstack/memcached-x (chart memcached): holds the stored credential oslo_db.admin in its data, "
        "but the chart does not carry it"),
    "credential-in-stringdata-of-a-chart-that-does-not-carry-it": (
        render(("mariadb", secret("mariadb-x", string_data={"p": NOVA_PASSWORD}))), Rule.CREDENTIAL,
        "oslo_db.nova in its data, but the chart does not carry it; a stored credential may appear only in the "
        "data of Secrets of a chart that carries it (nova)"),
}


@pytest.mark.parametrize(("items", "rule_broken", "words"), list(REFUSED.values()), ids=list(REFUSED))
def test_what_a_cloud_does_not_need_is_refused(items: Render, rule_broken: Rule, words: str) -> None:
    found = violations(items)
    assert found, "expected a violation"
    assert rule_broken in {v.rule for v in found}, [str(v) for v in found]
    text = "\n".join(str(v) for v in found)
    assert words in text
    assert ROOT_PASSWORD not in text and NOVA_PASSWORD not in text


@pytest.mark.parametrize("namespace", ["kube-system", "default", "kube-anything", "openstack-gitops"])
def test_a_cloud_is_never_rendered_into_a_system_namespace(namespace: str) -> None:
    items = render(("openstack-gitops", obj("Namespace", namespace, None)),
                   ("nova", obj("ConfigMap", "nova-bin", namespace)))
    (found,) = violations(items, namespace)
    assert found.rule is Rule.NAMESPACE
    assert str(found).startswith(f"Namespace/{namespace} (chart openstack-gitops): the cloud's namespace")


def test_the_issues_takeover_is_refused_with_one_reason_per_object() -> None:
    """overrides.<chart>.extraObjects: a ClusterRoleBinding to cluster-admin and a ConfigMap holding the
    DB root password."""
    items = render(
        ("nova", binding("pwn", "ClusterRole", "cluster-admin", kind="ClusterRoleBinding",
                         subjects=[sa("default")])),
        ("nova", obj("ConfigMap", "loot", data={"root": ROOT_PASSWORD})),
    )
    assert [(v.rule, v.object, v.chart) for v in violations(items)] == [
        (Rule.ROLE_REF, "ClusterRoleBinding/pwn", "nova"),
        (Rule.CREDENTIAL, "ConfigMap/openstack/loot", "nova"),
    ]


def test_violations_follow_render_order_and_each_credential_is_named_once_per_object() -> None:
    items = render(
        ("nova", obj("ConfigMap", "a", data={"x": ROOT_PASSWORD, "y": ROOT_PASSWORD, "z": NOVA_PASSWORD})),
        ("nova", obj("ConfigMap", "b", "elsewhere")),
    )
    assert [(v.object, v.rule) for v in violations(items)] == [
        ("ConfigMap/openstack/a", Rule.CREDENTIAL), ("ConfigMap/openstack/a", Rule.CREDENTIAL),
        ("ConfigMap/elsewhere/b", Rule.NAMESPACE)]
    assert {v.problem.split()[4] for v in violations(items)[:2]} == {"oslo_db.admin", "oslo_db.nova"}


def test_the_default_chart_map_is_the_catalogs() -> None:
    """Without an explicit map, a chart carries what catalog.chart_credentials says."""
    assert "oslo_db.admin" in chart_credentials("nova")
    assert "oslo_db.admin" not in chart_credentials("memcached")
    nova = secret("nova-db-admin", {"password": ROOT_PASSWORD})
    memcached = secret("memcached-x", {"password": ROOT_PASSWORD})
    assert check(desired(render(("nova", nova))), NS, CREDENTIALS) == []
    (found,) = check(desired(render(("memcached", memcached))), NS, CREDENTIALS)
    assert found.rule is Rule.CREDENTIAL


def test_a_chart_the_map_does_not_know_carries_nothing() -> None:
    (found,) = violations(render(("openstack-gitops", secret("x", {"p": NOVA_PASSWORD}))))
    assert found.rule is Rule.CREDENTIAL


def test_violations_are_frozen_values() -> None:
    (found,) = violations(render(("nova", obj("ConfigMap", "x", "other"))))
    with pytest.raises(AttributeError):
        found.chart = "keystone"  # type: ignore[misc]
    assert found == Violation(Rule.NAMESPACE, "ConfigMap/other/x", "nova", found.problem, found.allowed)


@pytest.mark.parametrize("prefix", ["", "x", "xy", "password="], ids=["aligned", "offset-1", "offset-2", "offset-0"])
def test_a_credential_base64_encoded_at_any_offset_is_found(prefix: str) -> None:
    encoded = base64.b64encode(f"{prefix}{ROOT_PASSWORD}\n".encode()).decode()
    (found,) = violations(render(("nova", obj("ConfigMap", "leak", data={"b": encoded}))))
    assert (found.rule, found.problem) == (Rule.CREDENTIAL, "holds the stored credential oslo_db.admin outside "
                                                            "Secret data")


@pytest.mark.parametrize("value", ["it's-a-Pa55word-with-quote", 'say-"Pa55word"-twice-now', "back\\slash-Pa55word",
                                   "both-'single'-and-\"double\"", "tab\there-and-ünïcode-Pa55"])
@pytest.mark.parametrize("context", ["alone", "next-to-a-single-quote", "next-to-a-double-quote"])
def test_a_credential_with_quotes_or_escapes_is_found(value: str, context: str) -> None:
    """The scan serializes with repr(): a credential is found whichever quoting repr picks around it."""
    text = {"alone": value, "next-to-a-single-quote": f"x'{value}", "next-to-a-double-quote": f'x"{value}'}[context]
    found = check(desired(render(("nova", obj("ConfigMap", "leak", data={"v": text})))), NS,
                  {"oslo_db.nova": value}, CARRIED)
    assert [v.rule for v in found] == [Rule.CREDENTIAL]
