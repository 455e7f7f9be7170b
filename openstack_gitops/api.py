"""The OpenStackDeployment resource and the names every process agrees on.

The resource's identity and CRD, the labels and annotations the product stamps, and the field
manager and user agent of each process (so the apiserver's audit log tells the three apart).
The resource's spec publishes what the autoscaler and the health watcher need: they read their
policies from the cluster and never need Git. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from openstack_gitops import __version__
from openstack_gitops.kube.objects import Manifest
from openstack_gitops.model.spec import (
    AutoscalingPolicy,
    HealthWatcherPolicy,
    Spec,
    autoscaling_policy,
    policy_document,
    watcher_document,
    watcher_policy,
)

GROUP = "openstack-gitops.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "OpenStackDeployment"
PLURAL = "openstackdeployments"

# labels on every object the reconciler applies
OWNER_LABEL = f"{GROUP}/deployment"
SERVICE_LABEL = f"{GROUP}/service"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
# annotations
HASH_ANNOTATION = f"{GROUP}/applied-hash"
PRUNE_ANNOTATION = f"{GROUP}/prune"  # "disabled" keeps an object when it leaves Git
SPEC_HASH_ANNOTATION = f"{GROUP}/spec-hash"
SOURCE_ANNOTATION = f"{GROUP}/source"  # which config source manages a cloud
REGENERATE_ANNOTATION = f"{GROUP}/regenerate-credentials"  # "true": the operator accepts new credentials
HOOK_REVISION_ANNOTATION = f"{GROUP}/chart-revision"  # on a Helm hook object: the chart render it ran for
# "paused" on an autoscaled Deployment: the autoscaler leaves that one alone; on the OpenStackDeployment: all of them
AUTOSCALING_ANNOTATION = f"{GROUP}/autoscaling"
AUTOSCALING_PAUSED = "paused"
AUTOSCALER_STATUS = "autoscaler"  # status.autoscaler: written by the autoscaler alone
HEALTH_WATCHER_STATUS = "healthWatcher"  # status.healthWatcher: written by the health watcher alone


class Process(StrEnum):
    RECONCILER = "reconciler"
    AUTOSCALER = "autoscaler"
    HEALTH_WATCHER = "health-watcher"

    @property
    def field_manager(self) -> str:
        """The server-side-apply field manager (the reconciler's is the product's name, as it always was)."""
        return "openstack-gitops" if self is Process.RECONCILER else f"openstack-gitops-{self.value}"

    @property
    def user_agent(self) -> str:
        return f"openstack-gitops-{self.value}/{__version__}"


FIELD_MANAGER = Process.RECONCILER.field_manager  # the value of MANAGED_BY_LABEL on what the reconciler applies


def crd() -> Manifest:
    """The CustomResourceDefinition of OpenStackDeployment (also written to manifests/crd.yaml)."""
    columns = [
        {"name": "Release", "type": "string", "jsonPath": ".status.release"},
        {"name": "Commit", "type": "string", "jsonPath": ".status.observedCommitShort"},
        {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type=='Ready')].status"},
        {"name": "Reason", "type": "string", "jsonPath": ".status.conditions[?(@.type=='Ready')].reason"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    schema = {"type": "object", "properties": {
        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {"group": GROUP, "scope": "Namespaced",
                 "names": {"kind": KIND, "plural": PLURAL, "singular": "openstackdeployment",
                           "shortNames": ["osdpl"], "listKind": f"{KIND}List"},
                 "versions": [{"name": VERSION, "served": True, "storage": True,
                               "subresources": {"status": {}}, "additionalPrinterColumns": columns,
                               "schema": {"openAPIV3Schema": schema}}]},
    }


def spec_document(spec: Spec) -> dict[str, Any]:
    """What the resource publishes of the spec: a readable summary (no overrides: they may be
    large) and the policies the autoscaler and the health watcher act on, in the spec file's words."""
    return {"release": spec.release, "size": spec.size.value, "region": spec.region,
            "publicDomain": spec.public_domain, "namespace": spec.namespace,
            "networking": {"backend": spec.network_backend.value},
            "services": sorted(spec.enabled_services),
            "autoscaling": {p.deployment: policy_document(p) for p in spec.autoscaling},
            "healthWatcher": watcher_document(spec.health_watcher)}


def autoscaling_policies(document: Mapping[str, Any]) -> tuple[AutoscalingPolicy, ...]:
    """The autoscaling policies a resource's spec publishes (what :func:`spec_document` wrote)."""
    return tuple(autoscaling_policy(name, p) for name, p in sorted((document.get("autoscaling") or {}).items()))


def health_watcher_policy(document: Mapping[str, Any]) -> HealthWatcherPolicy:
    """The health-watcher policy a resource's spec publishes (what :func:`spec_document` wrote); each
    field it lacks takes its default, as an older reconciler's resource publishes fewer."""
    return watcher_policy(document.get("healthWatcher") or {})
