"""Expand a Spec into one values document per chart, as a fixed stack of layers.

`LAYERS` is the single statement of precedence: release defaults, then the size preset, then
what the spec says, then the operator's raw overrides; a later layer wins (mappings merge,
lists are replaced). The computed layers leave out empty groups; the overrides stay verbatim.
Pure: the credentials come in as an argument, nothing is read or generated.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from . import endpoints
from .catalog import BACKEND_VALUES, CHARTS
from .credentials import needed_credentials
from .errors import MissingCredentials, SpecInvalid
from .presets import REPLICA_COMPONENTS, ComponentClass, replicas, resources, volume
from .releases import RELEASES, images
from .spec import Spec, autoscaled
from .tree import compact, merge_all, tree_of
from .validate import Inputs, known_release

Values = dict[str, Any]
Layer = Callable[[Spec, str, Mapping[str, str]], Values]

PULL_POLICY = "IfNotPresent"
DEPLOYMENT_UPGRADES = {
    "revision_history": 3,
    "pod_replacement_strategy": "RollingUpdate",
    "rolling_update": {"max_unavailable": 1, "max_surge": 3},
}
DAEMONSET_UPGRADE = {"enabled": True, "min_ready_seconds": 0, "max_unavailable": 1}


def release_defaults(spec: Spec, chart: str, _: Mapping[str, str]) -> Values:
    """What the release pins and what never varies: images, internal endpoints, rollout strategy,
    the chart's fixed settings (glance's storage)."""
    info = CHARTS[chart]
    values: Values = {
        **merge_all([info.settings]),
        "images": {"tags": images(spec.release, chart), "pull_policy": PULL_POLICY},
        "endpoints": endpoints.static_endpoints(chart),
        # every replicated component starts at the charts' own default of 1; the preset raises it
        "pod": {"replicas": {component: 1 for component in REPLICA_COMPONENTS.get(chart, {})}},
    }
    upgrades: Values = {}
    if info.deployment_upgrades and any(
        k is not ComponentClass.CLUSTER for k in REPLICA_COMPONENTS.get(chart, {}).values()
    ):
        upgrades["deployments"] = DEPLOYMENT_UPGRADES
    if info.daemonsets:
        upgrades["daemonsets"] = {
            "pod_replacement_strategy": "RollingUpdate",
            **{component: DAEMONSET_UPGRADE for component in info.daemonsets},
        }
    if upgrades:
        values["pod"]["lifecycle"] = {"upgrades": upgrades}
    return compact(values)


def size_preset(spec: Spec, chart: str, _: Mapping[str, str]) -> Values:
    """Replicas and resources of the chosen size; broker replica count shared with every client."""
    mq_replicas = replicas(spec.size, "rabbitmq")["server"]
    return compact(
        {
            "pod": {"replicas": replicas(spec.size, chart), "resources": resources(spec.size, chart)},
            "endpoints": endpoints.messaging_replicas(chart, mq_replicas),
            **volume(spec.size, chart),
        }
    )


def spec_facts(spec: Spec, chart: str, credentials: Mapping[str, str]) -> Values:
    """Everything derived from the spec: node labels, region, public names, accounts, backend."""
    info = CHARTS[chart]
    leaves: list[tuple[str | tuple[str, ...], Any]] = []
    for component, role in sorted(info.labels.items()):
        selector = spec.node_roles.selector(role)
        leaves.append((f"labels.{component}.node_selector_key", selector.key))
        leaves.append((f"labels.{component}.node_selector_value", selector.value))
    if info.conf_section:
        leaves += [(("conf", info.conf_section, *path), spec.region) for path in info.region_keys]
    leaves += endpoints.passwords(chart, credentials)
    leaves += sorted(info.account_names.items())
    leaves += [
        (("pod", "replicas", api.replicas_component), policy.min_replicas)
        for policy, api in autoscaled(spec)
        if api.chart == chart
    ]
    return compact(
        merge_all(
            [
                tree_of(leaves),
                {"endpoints": endpoints.public_hosts(chart, spec.public_domain)},
                {"endpoints": endpoints.accounts(chart, spec.region)},
                BACKEND_VALUES[spec.network_backend].get(chart, {}),
            ]
        )
    )


def raw_overrides(spec: Spec, chart: str, _: Mapping[str, str]) -> Values:
    """The operator's escape hatch, verbatim."""
    return merge_all([spec.overrides.get(chart, {})])


LAYERS: tuple[tuple[str, Layer], ...] = (
    ("release defaults", release_defaults),
    ("size preset", size_preset),
    ("spec", spec_facts),
    ("overrides", raw_overrides),
)
"""Precedence of values, lowest first. Code and tests both iterate this one sequence."""

LAYER_NAMES: tuple[str, ...] = tuple(name for name, _ in LAYERS)


def layered_values(spec: Spec, credentials: Mapping[str, str]) -> dict[str, dict[str, Values]]:
    """chart -> layer name -> that layer's values, before merging (for tests and `explain` output)."""
    _check_inputs(spec, credentials)
    return {chart: {name: layer(spec, chart, credentials) for name, layer in LAYERS} for chart in spec.charts}


def expand(spec: Spec, credentials: Mapping[str, str]) -> dict[str, Values]:
    """chart -> merged values for every chart of an enabled service. Pure and deterministic.

    Raises SpecInvalid for an unknown release and MissingCredentials when `credentials` lacks a
    needed entry (complete them first with `credentials.complete`).
    """
    return {
        chart: _sorted(merge_all(layers[name] for name in LAYER_NAMES))
        for chart, layers in layered_values(spec, credentials).items()
    }


def autoscaled_deployments(spec: Spec) -> frozenset[str]:
    """API Deployments whose replica count belongs to the autoscaler: apply must omit spec.replicas."""
    return frozenset(api.deployment for _, api in autoscaled(spec))


def _check_inputs(spec: Spec, credentials: Mapping[str, str]) -> None:
    if spec.release not in RELEASES:
        raise SpecInvalid(known_release(spec, Inputs()))
    missing = [name for name in needed_credentials(spec) if not credentials.get(name)]
    if missing:
        raise MissingCredentials(missing)


def _sorted(value: Any) -> Any:
    """Recursively key-sorted copy, so dumps of the values are stable byte for byte."""
    if isinstance(value, Mapping):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value
