"""What a render may ask the cluster for: the reconciler applies only what an OpenStack cloud needs.

Pure: rendered objects in, violations out. Whoever can push to the config repo controls every
rendered object (``overrides.<chart>`` reaches any template, ``extraObjects`` adds arbitrary
ones), so this is checked on the whole render before anything is written:

- namespaced objects live in the cloud's namespace, and that namespace is not a system one;
- cluster-scoped objects are only the kinds in ``CLUSTER_KINDS`` (the OpenStack-Helm charts
  render ClusterRoles and ClusterRoleBindings: ovn-controller, nova bootstrap and cell-setup),
  never named like a built-in or the product's own objects;
- a (Cluster)RoleBinding references a Role/ClusterRole rendered by the same cloud (never a
  built-in such as cluster-admin) and binds only ServiceAccounts of the cloud's namespace;
- no rule grants ``*`` or the ``escalate``/``bind``/``impersonate`` verbs, no ClusterRole
  aggregates or is aggregated, and a ClusterRole grants only ``CLUSTER_ROLE_GRANTS``;
- a stored credential appears only in the data of Secrets of a chart that carries it (and where
  ``ENV_EXCEPTIONS`` and ``CONFIG_EXCEPTIONS`` name an upstream chart that puts one elsewhere).

RBAC (manifests/rbac.yaml) is the second line: the apiserver refuses what the reconciler's
service account may not do even if a rule here were missing.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import contextlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from openstack_gitops.kube.objects import Manifest, ObjectKey
from openstack_gitops.model.catalog import CHARTS, chart_credentials
from reconciler.plan.diff import Desired

RBAC_GROUP = "rbac.authorization.k8s.io"

CRD_GROUP = "apiextensions.k8s.io"

# Cluster-scoped kinds a cloud may render, as (API group, kind). Anything cluster-scoped acts on
# every tenant of the cluster, so the list holds only what the charts need:
# - ClusterRole, ClusterRoleBinding: ovn (ovn-controller, ovn-controller-list-nodes-role-<ns>)
#   and nova (nova-bootstrap, nova-cell-setup) read/label Nodes;
# - CustomResourceDefinition: only the names in ALLOWED_CRDS;
# - Namespace: the product renders the cloud's own namespace (checked by name below).
# Refused on purpose: PriorityClass (a high value preempts other tenants' pods, globalDefault
# changes every new pod), StorageClass (a default class changes other tenants' volumes), webhooks,
# APIServices, PersistentVolumes, ...: no chart of an OpenStack cloud renders them.
CLUSTER_KINDS: frozenset[tuple[str, str]] = frozenset({
    (RBAC_GROUP, "ClusterRole"),
    (RBAC_GROUP, "ClusterRoleBinding"),
    (CRD_GROUP, "CustomResourceDefinition"),
    ("", "Namespace"),
})

# CustomResourceDefinitions a cloud may render, by name: those of upstream mariadb's database
# controller (`manifests.crds`, on by default). A CRD changes the API of the whole cluster (and
# one of the same name belongs to whoever installed it), so only these names, and never with a
# conversion webhook (the apiserver would send every object of the kind to it).
ALLOWED_CRDS: frozenset[str] = frozenset(
    f"{plural}.mariadb.osh.openstack.org" for plural in ("connections", "databases", "grants", "users"))

# Built-in cluster-scoped kinds. The render parser sets the release namespace on any kind it does
# not know as cluster-scoped, while the apiserver ignores that namespace: a kind listed here is
# cluster-scoped whatever its metadata says.
KNOWN_CLUSTER_SCOPED: frozenset[str] = frozenset({
    "APIService", "CSIDriver", "CSINode", "CertificateSigningRequest", "ClusterRole", "ClusterRoleBinding",
    "ClusterTrustBundle", "ComponentStatus", "CustomResourceDefinition", "DeviceClass", "FlowSchema",
    "IPAddress", "IngressClass", "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding",
    "MutatingWebhookConfiguration", "Namespace", "Node", "PersistentVolume", "PodSecurityPolicy",
    "PriorityClass", "PriorityLevelConfiguration", "RuntimeClass", "SelfSubjectAccessReview",
    "SelfSubjectReview", "SelfSubjectRulesReview", "ServiceCIDR", "StorageClass", "StorageVersion",
    "StorageVersionMigration", "SubjectAccessReview", "TokenReview", "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding", "ValidatingWebhookConfiguration", "VolumeAttachment",
    "VolumeAttributesClass", "VolumeSnapshotClass", "VolumeSnapshotContent",
})

# Namespaces a cloud may never be rendered into: the cluster's own and the reconciler's (a pod
# there could run as the reconciler's service account).
RESERVED_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease", "openstack-gitops"})
RESERVED_NAMESPACE_PREFIXES = ("kube-",)

# Names of built-in (or the product's own) cluster-scoped objects: applying an object of that
# name would take it over (server-side apply with forced ownership replaces a role's rules).
BUILTIN_ROLES = frozenset({"cluster-admin", "admin", "edit", "view"})
RESERVED_NAME_PREFIXES = ("system:", "openstack-gitops")

FORBIDDEN_VERBS = frozenset({"escalate", "bind", "impersonate"})

# What a rendered ClusterRole may grant, as (API group, resource) -> verbs. A ClusterRole bound by
# a ClusterRoleBinding holds cluster-wide, so only what the charts need: ovn-controller labels
# its Node, nova's bootstrap and cell-setup Jobs list the compute Nodes.
CLUSTER_ROLE_GRANTS: Mapping[tuple[str, str], frozenset[str]] = {
    ("", "nodes"): frozenset({"get", "list", "patch"}),
}

# Where upstream OpenStack-Helm puts a credential outside a Secret, allowed there and nowhere else:
# chart -> container env var -> credential names. rabbitmq sets the Erlang cookie as a plain env
# value of its StatefulSet (RABBITMQ_ERLANG_COOKIE) and the admin URI as one of its cluster-wait
# Job and test Pod (RABBITMQ_ADMIN_CONNECTION); anyone who can read those objects sees them.
ENV_EXCEPTIONS: Mapping[str, Mapping[str, frozenset[str]]] = {
    "rabbitmq": {
        "RABBITMQ_ERLANG_COOKIE": frozenset({"oslo_messaging.erlang_cookie"}),
        "RABBITMQ_ADMIN_CONNECTION": frozenset({"oslo_messaging.admin"}),
    },
    # glance-storage-init sets the Temp-URL key of glance's Swift account from a plain env value,
    # rendered only when an operator overrides glance's storage to swift (the product uses pvc).
    "glance": {"SWIFT_TMPURL_KEY": frozenset({"glance.swift_tmpurl_key"})},
}

# Where upstream OpenStack-Helm writes a credential into a ConfigMap, allowed there and nowhere else:
# (chart, ConfigMap, data key, option) -> credential names; only the value of that one option line
# of that one key is excused. mariadb writes the Galera SST user's `user:password` into its server
# config (mariadb-etc, 00-base.cnf: `wsrep_sst_auth=sst:<password>`), which every mariadb-server
# pod mounts; start.py creates that user for 127.0.0.1 only, for the donor's local mariabackup.
CONFIG_EXCEPTIONS: Mapping[tuple[str, str, str, str], frozenset[str]] = {
    ("mariadb", "mariadb-etc", "00-base.cnf", "wsrep_sst_auth"): frozenset({"oslo_db.sst"}),
}

AGGREGATE_LABEL_PREFIX = "rbac.authorization.k8s.io/aggregate-to-"
MIN_CREDENTIAL_LENGTH = 8  # shorter values would match by accident; generated ones have 43 characters


class Rule(StrEnum):
    """Which rule an object broke; stable words for logs, events and tests."""

    NAMESPACE = "namespace"  # a namespaced object outside the cloud's namespace (or a reserved one)
    CLUSTER_KIND = "cluster-kind"  # a cluster-scoped kind not in CLUSTER_KINDS
    RESERVED_NAME = "reserved-name"  # a cluster-scoped object named like a built-in
    ROLE_REF = "role-ref"  # a binding to a role the render does not contain, or to a built-in
    SUBJECT = "subject"  # a binding subject that is not a ServiceAccount of the cloud's namespace
    ROLE_RULE = "role-rule"  # wildcards, escalate/bind/impersonate, aggregation
    CLUSTER_GRANT = "cluster-grant"  # a ClusterRole granting more than CLUSTER_ROLE_GRANTS
    CREDENTIAL = "credential"  # a stored credential outside the Secrets of the charts that carry it


@dataclass(frozen=True)
class Violation:
    """One refused object: which, from which chart, what was wrong and what is allowed instead."""

    rule: Rule
    object: str  # Kind/namespace/name (Kind/name when cluster-scoped)
    chart: str
    problem: str
    allowed: str

    def __str__(self) -> str:
        return f"{self.object} (chart {self.chart}): {self.problem}; {self.allowed}"


def check(desired: Sequence[Desired], namespace: str, credentials: Mapping[str, str],
          charts_credentials: Mapping[str, Iterable[str]] | None = None) -> list[Violation]:
    """Every violation of the render, in render order; empty means the render may be applied.

    ``credentials`` maps credential names to their stored values; ``charts_credentials`` maps a
    chart to the credential names its values carry (default: ``catalog.chart_credentials``).
    """
    carried = _carried(charts_credentials)
    out: list[Violation] = []
    if _reserved_namespace(namespace):
        where = next((d for d in desired if d.key.kind == "Namespace" and d.key.name == namespace), None)
        out.append(Violation(Rule.NAMESPACE, f"Namespace/{namespace}", where.service if where else "-",
                             f"the cloud's namespace {namespace} is a system namespace",
                             "render a cloud into a namespace of its own (not default, kube-*, openstack-gitops)"))
    roles = {(d.key.kind, d.key.namespace if d.key.kind == "Role" else "", d.key.name)
             for d in desired if d.key.group == RBAC_GROUP and d.key.kind in ("Role", "ClusterRole")}
    for d in desired:
        out.extend(_scope(d, namespace))
        if d.key.group == RBAC_GROUP:
            if d.key.kind in ("RoleBinding", "ClusterRoleBinding"):
                out.extend(_binding(d, namespace, roles))
            elif d.key.kind in ("Role", "ClusterRole"):
                out.extend(_role(d))
    out.extend(_credentials(desired, credentials, carried))
    order = {str(d.key): i for i, d in enumerate(desired)}
    out.sort(key=lambda v: order.get(v.object, -1))  # stable: rules of one object keep their order
    return out


# -- scope ------------------------------------------------------------------------------------
def _cluster_scoped(key: ObjectKey) -> bool:
    return not key.namespace or key.kind in KNOWN_CLUSTER_SCOPED


def _reserved_namespace(name: str) -> bool:
    return name in RESERVED_NAMESPACES or name.startswith(RESERVED_NAMESPACE_PREFIXES)


def _reserved_name(name: str) -> bool:
    return name in BUILTIN_ROLES or name.startswith(RESERVED_NAME_PREFIXES)


def _scope(d: Desired, namespace: str) -> Iterator[Violation]:
    key = d.key
    if not _cluster_scoped(key):
        if key.namespace != namespace:
            yield _v(Rule.NAMESPACE, d, f"is in namespace {key.namespace}",
                     f"namespaced objects may only be rendered into the cloud's namespace {namespace}")
        return
    allowed = "cluster-scoped kinds allowed: " + ", ".join(sorted(k for _, k in CLUSTER_KINDS))
    if (key.group, key.kind) not in CLUSTER_KINDS:
        yield _v(Rule.CLUSTER_KIND, d, f"{key.kind} is a cluster-scoped kind the reconciler does not apply",
                 allowed)
    elif key.kind == "CustomResourceDefinition":
        if key.name not in ALLOWED_CRDS:
            yield _v(Rule.CLUSTER_KIND, d, f"CustomResourceDefinition {key.name} is not one the charts need",
                     "CustomResourceDefinitions allowed: " + ", ".join(sorted(ALLOWED_CRDS)))
        conversion = ((d.manifest.get("spec") or {}).get("conversion") or {}).get("strategy", "None")
        if conversion != "None":
            yield _v(Rule.CLUSTER_KIND, d, f"has a {conversion} conversion",
                     "CustomResourceDefinitions convert with strategy None (no webhook)")
    elif key.kind == "Namespace":  # the cloud's own is checked once, in check()
        if key.name != namespace:
            yield _v(Rule.CLUSTER_KIND, d, "a Namespace other than the cloud's",
                     f"the only Namespace a cloud renders is its own ({namespace})")
    elif _reserved_name(key.name):
        yield _v(Rule.RESERVED_NAME, d, f"{key.name} is the name of a built-in or of the product's own object",
                 "cluster-scoped objects may not be named cluster-admin, admin, edit, view, system:* "
                 "or openstack-gitops*")


# -- RBAC -------------------------------------------------------------------------------------
def _binding(d: Desired, namespace: str, roles: set[tuple[str, str, str]]) -> Iterator[Violation]:
    ref = d.manifest.get("roleRef") or {}
    kind, name = str(ref.get("kind", "")), str(ref.get("name", ""))
    allowed = "a binding may only reference a Role/ClusterRole rendered by the same cloud"
    if kind not in ("Role", "ClusterRole") or ref.get("apiGroup", RBAC_GROUP) != RBAC_GROUP:
        yield _v(Rule.ROLE_REF, d, f"roleRef is {kind or '?'} {name} in API group {ref.get('apiGroup')!r}",
                 allowed)
    elif d.key.kind == "ClusterRoleBinding" and kind == "Role":
        yield _v(Rule.ROLE_REF, d, f"binds Role {name}", "a ClusterRoleBinding may only reference a ClusterRole")
    elif kind == "ClusterRole" and _reserved_name(name):
        yield _v(Rule.ROLE_REF, d, f"binds ClusterRole {name}, a built-in role", allowed)
    elif (kind, d.key.namespace if kind == "Role" else "", name) not in roles:
        yield _v(Rule.ROLE_REF, d, f"binds {kind} {name}, which the render does not contain", allowed)
    subjects = d.manifest.get("subjects") or []
    for entry in subjects if isinstance(subjects, list) else [subjects]:
        subject = entry if isinstance(entry, Mapping) else {}
        s_kind, s_name = subject.get("kind"), subject.get("name")
        s_ns = subject.get("namespace") or (d.key.namespace if d.key.kind == "RoleBinding" else "")
        if s_kind != "ServiceAccount" or s_ns != namespace:
            where = f" in namespace {s_ns}" if s_ns else ""
            yield _v(Rule.SUBJECT, d, f"binds {s_kind} {s_name}{where}",
                     f"a binding may only bind ServiceAccounts of the cloud's namespace {namespace}")


def _role(d: Desired) -> Iterator[Violation]:
    meta = d.manifest.get("metadata") or {}
    if d.manifest.get("aggregationRule") is not None:
        yield _v(Rule.ROLE_RULE, d, "has an aggregationRule (it would collect the rules of other roles)",
                 "roles list their rules explicitly")
    aggregated = sorted(k for k in (meta.get("labels") or {}) if str(k).startswith(AGGREGATE_LABEL_PREFIX))
    if aggregated:
        yield _v(Rule.ROLE_RULE, d, f"is labelled {aggregated[0]} (its rules would join a built-in role)",
                 "roles are not aggregated into other roles")
    rules = d.manifest.get("rules") or []
    for index, rule in enumerate(rules if isinstance(rules, list) else [rules]):
        yield from _rule(d, index, rule if isinstance(rule, Mapping) else {})


def _rule(d: Desired, index: int, rule: Mapping[str, Any]) -> Iterator[Violation]:
    verbs, groups, resources = (_strings(rule.get(f)) for f in ("verbs", "apiGroups", "resources"))
    where = f"rule {index}"
    for field, values in (("verbs", verbs), ("apiGroups", groups), ("resources", resources),
                          ("nonResourceURLs", _strings(rule.get("nonResourceURLs")))):
        if any("*" in v for v in values):
            yield _v(Rule.ROLE_RULE, d, f"{where} has a wildcard in {field}",
                     "rules name their API groups, resources and verbs explicitly")
    bad = sorted(FORBIDDEN_VERBS.intersection(verbs))
    if bad:
        yield _v(Rule.ROLE_RULE, d, f"{where} grants {', '.join(bad)}",
                 "escalate, bind and impersonate are never granted (they bypass RBAC's escalation checks)")
    if d.key.kind != "ClusterRole":
        return
    if rule.get("nonResourceURLs"):
        yield _v(Rule.CLUSTER_GRANT, d, f"{where} grants nonResourceURLs", _cluster_grants())
    for group in groups:
        for resource in resources:
            extra = sorted(set(verbs) - CLUSTER_ROLE_GRANTS.get((group, resource), frozenset()))
            if extra:
                name = f"{group}/{resource}" if group else resource
                yield _v(Rule.CLUSTER_GRANT, d, f"{where} grants {', '.join(extra)} on {name} cluster-wide",
                         _cluster_grants())


def _cluster_grants() -> str:
    grants = "; ".join(f"{'/'.join(filter(None, gr))}: {', '.join(sorted(v))}"
                       for gr, v in sorted(CLUSTER_ROLE_GRANTS.items()))
    return f"a ClusterRole may only grant {grants}"


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


# -- credentials ------------------------------------------------------------------------------
def _carried(charts_credentials: Mapping[str, Iterable[str]] | None) -> dict[str, frozenset[str]]:
    if charts_credentials is None:
        return {chart: frozenset(chart_credentials(chart)) for chart in CHARTS}
    return {chart: frozenset(names) for chart, names in charts_credentials.items()}


def _needles(value: str) -> tuple[str, ...]:
    """The forms a credential takes inside ``_serialize``'s text: as is, escaped the way ``repr``
    escapes it in either quoting, and base64-encoded at any alignment (``b64enc`` of a string
    that contains the credential contains one of those three)."""
    forms = {value, repr(value + "'\"")[1:-4], repr(value + "'")[1:-2] if '"' not in value else value}
    raw = value.encode()
    for start in range(3):
        chunk = raw[start:start + 3 * ((len(raw) - start) // 3)]
        if len(chunk) >= 6:
            forms.add(base64.b64encode(chunk).decode())
    return tuple(sorted(forms))


def _serialize(value: Any) -> str:
    """One text holding every string of a manifest; ``repr`` is C-fast and takes any YAML scalar."""
    return repr(value)


def _secret_payload(manifest: Manifest) -> tuple[str, Manifest]:
    """(decoded data and stringData as one text, the Secret without them)."""
    parts: list[str] = []
    for field, encoded in (("data", True), ("stringData", False)):
        values = manifest.get(field)
        if not isinstance(values, Mapping):
            continue
        for name, value in values.items():
            text = str(value)
            if encoded:
                with contextlib.suppress(binascii.Error, ValueError):  # not base64: scanned as it is
                    text = base64.b64decode(text, validate=True).decode("utf-8", "replace")
            parts.append(f"{name}\0{text}")
    rest = {k: v for k, v in manifest.items() if k not in ("data", "stringData")}
    return "\0".join(parts), rest


class _Haystack:
    """Many texts joined into one, so each needle is one C-speed ``str.find`` over all of them
    (a compiled alternation of every needle is 30x slower in ``re``)."""

    def __init__(self) -> None:
        self._texts: list[str] = []
        self._owners: list[int] = []  # index into the render, per text
        self._starts: list[int] = []
        self._length = 0
        self._joined: str | None = None

    def add(self, owner: int, text: str) -> None:
        self._texts.append(text)
        self._owners.append(owner)
        self._starts.append(self._length)
        self._length += len(text) + 1

    def owners_of(self, needle: str) -> Iterator[int]:
        """Render index of every text that contains ``needle``, each once."""
        if self._joined is None:
            self._joined = "\0".join(self._texts)
        pos = self._joined.find(needle)
        while pos != -1:
            slot = bisect.bisect_right(self._starts, pos) - 1
            yield self._owners[slot]
            if slot + 1 == len(self._starts):
                return
            pos = self._joined.find(needle, self._starts[slot + 1])


def _credentials(desired: Sequence[Desired], credentials: Mapping[str, str],
                 carried: Mapping[str, frozenset[str]]) -> list[Violation]:
    """Where stored credentials appear: each manifest serialized once, Secret data decoded once,
    then one ``find`` per form of each credential over all of it (tens of ms for a whole cloud)."""
    needles = {name: _needles(value) for name, value in sorted(credentials.items())
               if isinstance(value, str) and len(value) >= MIN_CREDENTIAL_LENGTH}
    if not needles:
        return []
    public = _Haystack()  # everything but the data of Secrets: no credential may appear here
    payloads: dict[str, _Haystack] = {}  # chart -> the data of its Secrets: only what the chart carries
    for index, d in enumerate(desired):
        manifest = d.manifest
        if d.key.kind == "Secret" and d.key.group == "":
            payload, manifest = _secret_payload(manifest)
            payloads.setdefault(d.service, _Haystack()).add(index, payload)
        public.add(index, _serialize(manifest))
    found: dict[tuple[int, str], bool] = {}  # (render index, credential) -> only inside Secret data
    for name, forms in needles.items():
        for form in forms:
            for index in public.owners_of(form):
                found[(index, name)] = False
    for chart, haystack in payloads.items():
        for name in sorted(set(needles) - carried.get(chart, frozenset())):
            for form in needles[name]:
                for index in haystack.owners_of(form):
                    found.setdefault((index, name), True)
    out = []
    for (index, name), in_data in sorted(found.items()):
        d = desired[index]
        if not in_data and _only_where_excepted(d, name, needles[name]):
            continue
        holders = sorted(c for c, names in carried.items() if name in names)
        allowed = ("a stored credential may appear only in the data of Secrets of a chart that carries it ("
                   + (", ".join(holders) or "none") + ")")
        where = "in its data, but the chart does not carry it" if in_data else "outside Secret data"
        out.append(_v(Rule.CREDENTIAL, d, f"holds the stored credential {name} {where}", allowed))
    return out


def _only_where_excepted(d: Desired, name: str, forms: Sequence[str]) -> bool:
    """True when ``name`` appears in ``d`` only as the value of env vars ENV_EXCEPTIONS allows it in
    or of config options CONFIG_EXCEPTIONS allows it in."""
    env = {var for var, names in ENV_EXCEPTIONS.get(d.service, {}).items() if name in names}
    options = {(key, option) for (chart, config_map, key, option), names in CONFIG_EXCEPTIONS.items()
               if name in names and chart == d.service and d.key.kind == "ConfigMap" and d.key.group == ""
               and d.key.name == config_map}
    if not env and not options:
        return False
    manifest = d.manifest
    if d.key.kind == "Secret" and d.key.group == "":
        manifest = _secret_payload(manifest)[1]
    text = _serialize(_without_options(_without_env(manifest, env), options))
    return not any(form in text for form in forms)


def _without_options(manifest: Manifest, options: set[tuple[str, str]]) -> Manifest:
    """A copy of a ConfigMap where the option of each (data key, option) of ``options`` has no value
    (up to a space or an option-file comment: a comment after it is kept)."""
    data = manifest.get("data")
    if not options or not isinstance(data, Mapping):
        return manifest
    out = dict(data)
    for key, option in options:
        if isinstance(out.get(key), str):
            out[key] = re.sub(rf"(?m)^(\s*{re.escape(option)}\s*=\s*)[^\s#;]+", r"\1", out[key])
    return {**manifest, "data": out}


def _without_env(value: Any, names: set[str]) -> Any:
    """A copy of ``value`` where the container env vars in ``names`` have no value."""
    if isinstance(value, list):
        return [_without_env(v, names) for v in value]
    if not isinstance(value, Mapping):
        return value
    out = {}
    for key, item in value.items():
        if key == "env" and isinstance(item, list):
            out[key] = [{k: v for k, v in e.items() if k != "value"}
                        if isinstance(e, Mapping) and e.get("name") in names else e for e in item]
        else:
            out[key] = _without_env(item, names)
    return out


def _v(rule: Rule, d: Desired, problem: str, allowed: str) -> Violation:
    return Violation(rule, str(d.key), d.service, problem, allowed)
