"""Which cloud a reconciler manages, and the refusal to move or rename one by editing the spec.

A cloud is (name, namespace). Its databases live in PersistentVolumes of that namespace and its
credentials in a Secret there, so a changed ``spec.namespace`` or ``metadata.name`` does not move
a cloud: it would start a second, empty one with new credentials beside the first. Each
OpenStackDeployment resource records the config source that manages it; a source that already
manages an applied cloud elsewhere is refused, and the refusal is reported on that cloud.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import NamedTuple

from openstack_gitops.api import SOURCE_ANNOTATION
from openstack_gitops.kube.objects import Manifest


class CloudRef(NamedTuple):
    name: str
    namespace: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


def source_id(url: str, branch: str, spec_file: str) -> str:
    """A stable id of one config source (URL without credentials, branch, spec file). Pure."""
    return hashlib.sha256("\0".join((url, branch, spec_file)).encode()).hexdigest()[:16]


def _ref(cr: Manifest) -> CloudRef:
    meta = cr.get("metadata") or {}
    return CloudRef(str(meta.get("name", "")), str(meta.get("namespace", "")))


def _source(cr: Manifest) -> str:
    return str(((cr.get("metadata") or {}).get("annotations") or {}).get(SOURCE_ANNOTATION, ""))


def _applied(cr: Manifest) -> bool:
    return bool((cr.get("status") or {}).get("lastAppliedCommit"))


def other_homes(resources: Iterable[Manifest], ref: CloudRef, source: str) -> tuple[list[CloudRef], list[CloudRef]]:
    """Clouds of the same source under another (name, namespace): (applied ones, never-applied ones). Pure.

    An applied one means the spec tries to move or rename a running cloud. A never-applied one is
    what a first reconcile that failed left behind; it may go.
    """
    applied: list[CloudRef] = []
    stale: list[CloudRef] = []
    for cr in resources:
        if _source(cr) != source or _ref(cr) == ref:
            continue
        (applied if _applied(cr) else stale).append(_ref(cr))
    return sorted(applied), sorted(stale)


def refusal(ref: CloudRef, home: CloudRef) -> str:
    what = "spec.namespace" if home.name == ref.name else ("metadata.name" if home.namespace == ref.namespace
                                                           else "metadata.name and spec.namespace")
    return (f"{what} changed from {home} to {ref}, but this config source manages the running cloud {home}: "
            f"its databases and credentials stay in namespace {home.namespace}, so applying would start a second, "
            f"empty cloud beside it. Nothing was applied; revert the change. To really move a cloud, follow "
            f"README 'Moving a cloud to another namespace'")
