"""Apply order as a ranked table: cluster-scoped prerequisites first, then kinds within a service.

Pure data plus two small functions. Deletes run the same table in reverse.
"""

from __future__ import annotations

from collections.abc import Sequence

from openstack_gitops.kube.objects import ObjectKey

# Stage 1: applied (and waited for) before anything else, so later objects can be dry-run.
PREREQUISITE_KINDS = ("CustomResourceDefinition", "Namespace")

# Within a service, objects are applied in these groups, one group after the other: identities
# and configuration before the workloads that mount them, Jobs last (they wait on the rest).
KIND_GROUPS: tuple[tuple[str, ...], ...] = (
    ("CustomResourceDefinition", "Namespace"),
    ("PriorityClass", "StorageClass", "ClusterRole", "ClusterRoleBinding"),
    ("ServiceAccount", "Secret", "ConfigMap", "Role", "RoleBinding", "LimitRange", "ResourceQuota"),
    ("Service", "Endpoints", "PersistentVolumeClaim", "PodDisruptionBudget", "NetworkPolicy", "Ingress"),
    ("StatefulSet", "Deployment", "DaemonSet", "ReplicaSet", "Pod"),
    ("Job", "CronJob"),
)
_LAST = len(KIND_GROUPS)


def kind_rank(kind: str) -> int:
    """The group index of a kind; unknown kinds (custom resources) go after the workloads."""
    for rank, group in enumerate(KIND_GROUPS):
        if kind in group:
            return rank
    return _LAST


def service_rank(service: str, service_order: Sequence[str]) -> int:
    return service_order.index(service) if service in service_order else len(service_order)


def sort_key(key: ObjectKey, service: str, service_order: Sequence[str]) -> tuple[int, int, int, ObjectKey]:
    prerequisite = 0 if key.kind in PREREQUISITE_KINDS else 1
    return (prerequisite, service_rank(service, service_order), kind_rank(key.kind), key)
