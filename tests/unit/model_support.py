"""Builders for model tests: a valid spec document, edited by dotted paths, loaded like the real one."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from openstack_gitops.model import Spec, load_spec, needed_credentials

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "config-repo-template" / "openstack.yaml"

DELETE = object()  # marks a path to remove

SERVICES = (
    "identity",
    "image",
    "placement",
    "compute",
    "networking",
    "block-storage",
    "dashboard",
    "orchestration",
    "mariadb",
    "rabbitmq",
    "memcached",
)

BASE: dict[str, Any] = {
    "apiVersion": "openstack-gitops.io/v1alpha1",
    "kind": "OpenStackDeployment",
    "metadata": {"name": "cloud"},
    "spec": {
        "release": "2025.1",
        "size": "small",
        "region": "RegionOne",
        "publicDomain": "cloud.example.com",
        "services": {name: {"enabled": True} for name in SERVICES},
    },
}

FAKE_CREDENTIALS_TOKEN = "fake"


def document(changes: dict[str, Any] | None = None) -> dict[str, Any]:
    """BASE with `changes` applied: {"spec.size": "large", "spec.region": DELETE, ...}."""
    doc = copy.deepcopy(BASE)
    for dotted, value in (changes or {}).items():
        *parents, last = dotted.split(".")
        node = doc
        for key in parents:
            node = node.setdefault(key, {})
        if value is DELETE:
            node.pop(last, None)
        else:
            node[last] = value
    return doc


def text(changes: dict[str, Any] | None = None) -> str:
    """The YAML text of `document(changes)`."""
    return yaml.safe_dump(document(changes), sort_keys=False)


def spec(changes: dict[str, Any] | None = None) -> Spec:
    """A loaded Spec of `document(changes)`."""
    return load_spec(text(changes), "openstack.yaml")


def fake_credentials(spec_: Spec) -> dict[str, str]:
    """Deterministic, distinct credentials: each value names its credential."""
    return {name: f"{FAKE_CREDENTIALS_TOKEN}-{name}" for name in needed_credentials(spec_)}
