"""Where a spec's charts come from: a directory of the config repo, a Helm repository or OCI.

Reads the checked-out config repo (Chart.yaml files); builds the references the Helm edge renders.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import yaml

from openstack_gitops.model.releases import RELEASES
from openstack_gitops.model.spec import ChartSourceType, Spec
from reconciler.edges.helm import ChartRef


def chart_dir(spec: Spec, root: Path) -> Path:
    return (root / spec.chart_source.location).resolve()


def chart_version(spec: Spec, chart: str) -> str:
    return spec.chart_versions.get(chart) or RELEASES[spec.release].chart_versions.get(chart, "")


def chart_refs(spec: Spec, root: Path) -> dict[str, ChartRef]:
    source = spec.chart_source
    refs = {}
    for chart in spec.charts:
        if source.type is ChartSourceType.DIRECTORY:
            refs[chart] = ChartRef(chart, "directory", str(chart_dir(spec, root) / chart), chart_version(spec, chart))
        else:
            refs[chart] = ChartRef(chart, source.type.value, source.location, chart_version(spec, chart))
    return refs


def available_charts(spec: Spec, root: Path) -> Mapping[str, str] | None:
    """Chart name -> version found in a directory source (None for remote sources: Helm checks those)."""
    if spec.chart_source.type is not ChartSourceType.DIRECTORY:
        return None
    found: dict[str, str] = {}
    base = chart_dir(spec, root)
    for chart_yaml in sorted(base.glob("*/Chart.yaml")):
        try:
            meta = yaml.safe_load(chart_yaml.read_text()) or {}
        except yaml.YAMLError:
            continue
        found[str(meta.get("name", chart_yaml.parent.name))] = str(meta.get("version", ""))
    return found
