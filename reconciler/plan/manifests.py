"""Rendered chart output -> validated manifests, each tagged with its chart and source template.

Pure. The whole render is parsed and checked before anything is planned, so a broken template
in one chart stops the reconcile before the first write.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import yaml

from openstack_gitops.kube.objects import Manifest, ObjectKey

CLUSTER_SCOPED_KINDS = frozenset({
    "Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "PriorityClass",
    "StorageClass", "PersistentVolume", "Node", "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration", "APIService", "IngressClass", "RuntimeClass", "CSIDriver",
    "VolumeSnapshotClass", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
})
# libyaml's parser when PyYAML was built with it (10x faster on big renders); same results.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SOURCE = re.compile(r"^# Source: (.+)$", re.MULTILINE)
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


@dataclass(frozen=True)
class RenderInvalid(Exception):
    chart: str
    template: str
    message: str

    def __str__(self) -> str:
        return f"chart {self.chart}: {self.template}: {self.message}"


def parse(chart: str, text: str, namespace: str) -> list[Manifest]:
    """Split ``helm template`` output into objects; set the release namespace on namespaced ones."""
    out: list[Manifest] = []
    seen: dict[ObjectKey, str] = {}
    for chunk in re.split(r"^---\s*$", text, flags=re.MULTILINE):
        source = _SOURCE.search(chunk)
        template = source.group(1) if source else "(unknown template)"
        try:
            doc = yaml.load(chunk, Loader=_LOADER)
        except yaml.YAMLError as exc:
            raise RenderInvalid(chart, template, f"rendered YAML does not parse: {exc}") from exc
        if doc is None:
            continue
        _check(chart, template, doc)
        meta = doc.setdefault("metadata", {})
        if doc["kind"] in CLUSTER_SCOPED_KINDS:
            meta.pop("namespace", None)
        elif not meta.get("namespace"):
            meta["namespace"] = namespace
        key = ObjectKey.of(doc)
        if key in seen:
            raise RenderInvalid(chart, template, f"{key} is rendered twice (also by {seen[key]})")
        seen[key] = template
        out.append(doc)
    return out


def _check(chart: str, template: str, doc: object) -> None:
    if not isinstance(doc, Mapping):
        raise RenderInvalid(chart, template, f"expected a Kubernetes object (a mapping), got {type(doc).__name__}")
    for field in ("apiVersion", "kind"):
        if not isinstance(doc.get(field), str) or not doc.get(field):
            raise RenderInvalid(chart, template, f"missing {field} (expected a non-empty string)")
    meta = doc.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    if not isinstance(name, str) or not _NAME.match(name) or len(name) > 253:
        raise RenderInvalid(chart, template, f"{doc['kind']}: metadata.name {name!r} is not a valid object name "
                            "(expected lower-case letters, digits, '-' and '.')")
