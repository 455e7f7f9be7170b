"""A process's RBAC as shipped in manifests/, installed on the test bed, and a client that talks as its
ServiceAccount (a real token): the RBAC tests of the autoscaler and the health watcher share it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config

from openstack_gitops.api import Process
from openstack_gitops.kube.client import Cluster
from openstack_gitops.kube.objects import ObjectKey
from testbed import bed, controlplane

REPO = Path(__file__).resolve().parents[2]
SA_NAMESPACE = "openstack-gitops"
KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")


def rbac_docs(manifest: str, cloud_namespace: str) -> list[dict[str, Any]]:
    """The RBAC objects of ``manifests/<manifest>``, the per-cloud RoleBinding moved to ``cloud_namespace``."""
    docs = [d for d in yaml.safe_load_all((REPO / "manifests" / manifest).read_text()) if d and d["kind"] in KINDS]
    for doc in docs:
        if doc["kind"] == "RoleBinding" and doc["metadata"]["namespace"] == "openstack":
            doc["metadata"]["namespace"] = cloud_namespace
    return docs


@contextmanager
def as_service_account(testbed: bed.TestBed, manifest: str, account: str, process: Process, cloud_namespace: str,
                       tmp_path: Path) -> Iterator[tuple[Cluster, Cluster]]:
    """(admin, the ServiceAccount ``account``) with the RBAC of ``manifests/<manifest>`` installed; what it
    created is removed afterwards (the cloud namespace's RoleBinding goes with the namespace)."""
    with testbed.api_client() as api:
        admin = Cluster(api, field_manager="test-admin")
        api.user_agent = "test-admin"
        admin.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SA_NAMESPACE}})
        docs = rbac_docs(manifest, cloud_namespace)
        created = [d for d in docs if not admin.exists(d["apiVersion"], ObjectKey.of(d))]
        for doc in docs:
            admin.apply(doc)
        token = client.CoreV1Api(api).create_namespaced_service_account_token(
            account, SA_NAMESPACE, {"spec": {"expirationSeconds": 3600}}).status.token
        kubeconfig = tmp_path / "kubeconfig"
        controlplane.write_kubeconfig(kubeconfig, testbed.control.server, testbed.control.pki.serving_cert, token,
                                      f"{account}-sa")
        sa_api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig))
        try:
            yield admin, Cluster(sa_api, process)
        finally:
            sa_api.close()
            for doc in reversed(created):
                if doc["kind"] != "RoleBinding" or doc["metadata"]["namespace"] != cloud_namespace:
                    admin.delete(doc["apiVersion"], ObjectKey.of(doc))
