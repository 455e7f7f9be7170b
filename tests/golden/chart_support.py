"""Shared by the chart render tests: chart list, paths and the parsed-render helper."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHARTS_DIR = REPO_ROOT / "config-repo-template" / "charts"
NAMESPACE = "openstack"
KUBE_VERSION = "v1.36.3"
LIBRARY_CHART = "helm-toolkit"
APP_CHARTS = (
    "mariadb",
    "rabbitmq",
    "memcached",
    "keystone",
    "glance",
    "cinder",
    "placement",
    "nova",
    "neutron",
    "horizon",
    "heat",
    "libvirt",
    "openvswitch",
    "ovn",
)
WORKERS = max(2, min(8, (os.cpu_count() or 2) * 2))


@dataclass(frozen=True)
class Rendered:
    """One `helm template` output: the raw text and its parsed documents."""

    text: str
    docs: tuple[dict[str, Any], ...]

    def find(self, kind: str, name: str) -> dict[str, Any]:
        for doc in self.docs:
            if doc["kind"] == kind and doc["metadata"]["name"] == name:
                return doc
        raise AssertionError(f"{kind}/{name} not rendered; have {sorted(self.names(kind))}")

    def names(self, kind: str) -> set[str]:
        return {d["metadata"]["name"] for d in self.docs if d["kind"] == kind}

    def of_kind(self, *kinds: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] in kinds]


RenderFn = Callable[..., Rendered]


def parse_docs(text: str) -> tuple[dict[str, Any], ...]:
    return tuple(d for d in yaml.safe_load_all(text) if d)
