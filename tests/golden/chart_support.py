"""Shared by the golden render tests: the real charts, the render settings and the parsed renders.

The charts are always the unmodified upstream OpenStack-Helm charts that `testbed.charts` finds;
they are rendered through the reconciler's own Helm edge (which vendors ``file://../helm-toolkit``
into a private copy per render) and pipeline.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from openstack_gitops.model.spec import Spec
from reconciler.plan.diff import Desired
from testbed.charts import BESIDE_CHECKOUT, upstream_charts
from testbed.errors import TestbedError

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "config-repo-template" / "openstack.yaml"
EXAMPLES = TEMPLATE.parent / "examples"
SPEC_FILES: tuple[Path, ...] = (TEMPLATE, *sorted(EXAMPLES.glob("*.yaml")))
NAMESPACE = "openstack"
KUBE_VERSION = "v1.36.3"
WORKERS = max(2, min(8, (os.cpu_count() or 2) * 2))


def _charts_dir() -> Path:
    try:
        return upstream_charts(clone=False)
    except TestbedError:
        return BESIDE_CHECKOUT  # the `charts_root` fixture clones or explains; imports stay side-effect free


CHARTS_DIR = _charts_dir()
"""The upstream charts, when already on this machine; tests that render use the `charts_root` fixture."""


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


@dataclass(frozen=True)
class Cloud:
    """One spec file rendered as the reconciler renders it, with freshly generated credentials."""

    spec: Spec
    credentials: Mapping[str, str]
    values: Mapping[str, Mapping[str, Any]]  # chart -> the expansion's values
    renders: Mapping[str, Rendered]  # chart -> Helm's output, parsed
    desired: tuple[Desired, ...]  # what the reconciler would apply: parsed, stamped, with the Namespace


CloudFn = Callable[[Path], Cloud]


_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_docs(text: str) -> tuple[dict[str, Any], ...]:
    return tuple(d for d in yaml.load_all(text, Loader=_LOADER) if d)
