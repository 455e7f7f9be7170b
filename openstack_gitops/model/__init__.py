"""The pure core of the reconciler: spec in, values per chart out.

No Kubernetes client, subprocess, Git, network, clock or randomness here; everything from the
outside world (existing credentials, available charts, running release, a token generator) is
passed in by the edge. Typical use:

    spec = load_spec(text, "openstack.yaml")            # raises SpecInvalid
    errors = validate(spec, available_charts, current)  # list[SpecError]
    creds, new = complete(existing, needed_credentials(spec), secrets.token_urlsafe)
    values = expand(spec, creds)                        # chart -> values
"""

from __future__ import annotations

from .catalog import APPLY_ORDER, AUTOSCALABLE, UPGRADE_ORDER, NetworkBackend, charts_for, upgrade_order
from .credentials import complete, needed_credentials
from .errors import MissingCredentials, SpecError, SpecInvalid
from .expand import LAYER_NAMES, LAYERS, autoscaled_deployments, expand, layered_values
from .fingerprint import canonical_json, fingerprint, service_fingerprints
from .loader import load_spec
from .presets import Size
from .releases import RELEASES, UpgradeKind, classify_upgrade
from .spec import (
    AutoscalingPolicy,
    ChartSource,
    ChartSourceType,
    HealthWatcherPolicy,
    NodeRoles,
    NodeSelector,
    ServiceSpec,
    Spec,
    WatchedWorkloadPolicy,
)
from .validate import validate

__all__ = [
    "APPLY_ORDER",
    "AUTOSCALABLE",
    "LAYERS",
    "LAYER_NAMES",
    "RELEASES",
    "UPGRADE_ORDER",
    "AutoscalingPolicy",
    "ChartSource",
    "ChartSourceType",
    "HealthWatcherPolicy",
    "MissingCredentials",
    "NetworkBackend",
    "NodeRoles",
    "NodeSelector",
    "ServiceSpec",
    "Size",
    "Spec",
    "SpecError",
    "SpecInvalid",
    "UpgradeKind",
    "WatchedWorkloadPolicy",
    "autoscaled_deployments",
    "canonical_json",
    "charts_for",
    "classify_upgrade",
    "complete",
    "expand",
    "fingerprint",
    "layered_values",
    "load_spec",
    "needed_credentials",
    "service_fingerprints",
    "upgrade_order",
    "validate",
]
