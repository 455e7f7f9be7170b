"""Per-service fingerprints: a change in a service's merged values changes its fingerprint.

Status records them so an operator (and the upgrade gate) can see which services a commit
touched without diffing values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openstack_gitops.canonical import canonical_hash, canonical_json

from .catalog import CHARTS

__all__ = ["canonical_json", "fingerprint", "service_fingerprints"]


def fingerprint(values: Any) -> str:
    """sha256 (hex) of the canonical JSON of `values`."""
    return canonical_hash(values)


def service_fingerprints(values_by_chart: Mapping[str, Any]) -> dict[str, str]:
    """service -> fingerprint of {chart: values} over that service's rendered charts."""
    by_service: dict[str, dict[str, Any]] = {}
    for chart, values in values_by_chart.items():
        by_service.setdefault(CHARTS[chart].service, {})[chart] = values
    return {service: fingerprint(charts) for service, charts in sorted(by_service.items())}
