"""Contract between the expansion and the real charts: every value the expansion sets is one the
chart reads, and the values that matter take effect when the real helm renders them.

1. Keys: for the template spec and every example, each leaf path the expansion computes for a chart
   (release defaults, size preset and spec layers; the operator's `overrides` are the operator's
   business) must exist in that chart's values.yaml in the unmodified upstream OpenStack-Helm
   charts, or be read by its full path in one of the chart's own templates (`.Values.<path>`:
   memcached's StatefulSet reads `pod.resources.server`, cinder-backup `pod.resources.backup`,
   neutron-rpc-server `pod.resources.rpc_server`, none of them declared in values.yaml), and must
   not replace a mapping there. A misspelled or non-OSH key is silently ignored by
   Helm, so only this test notices. An account or password (`endpoints.*.auth.*`) is never excused:
   one the chart lacks is a credential nothing reads.
2. Effects: nova, neutron and libvirt rendered with the expanded values show the preset's
   resources, the network role's node selector, the backend's vswitch dependency and router plugin.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from openstack_gitops.model import LAYER_NAMES, Size, Spec, expand, layered_values, load_spec, validate
from openstack_gitops.model.catalog import API_ENDPOINTS, AUTHTOKEN_REGION, CHARTS, NetworkBackend, NodeRole
from openstack_gitops.model.presets import REPLICA_COMPONENTS, RESOURCES
from openstack_gitops.model.tree import merge_all

from ..unit.model_support import fake_credentials
from .chart_support import SPEC_FILES, Rendered, RenderFn

SPEC_IDS = [path.stem for path in SPEC_FILES]
OPERATOR_LAYER = "overrides"

KeyPath = tuple[str, ...]
ANY_CHART = "*"

# Subtrees not held to the chart's defaults: (chart or "*", path prefix) -> why. Keep it short;
# test_every_exemption_is_still_needed fails once an entry no longer excuses anything.
EXEMPT: Mapping[tuple[str, KeyPath], str] = {
    # Every OpenStack chart receives every API's endpoint (catalog.API_ENDPOINTS), so toggling one
    # service never rolls the others; helm-toolkit's endpoint lookups read any group, and the
    # public host, port and scheme are ones OSH leaves out (host_fqdn_override.public ships
    # commented out). The unit tests pin the endpoint shapes.
    **{(ANY_CHART, ("endpoints", api.service_type)): "same API endpoints for every chart" for api in API_ENDPOINTS},
    # The region of each config section the chart leaves out of its defaults
    # (catalog.ChartInfo.region_keys); its INI file takes any option under conf.<section>. glance
    # and heat are not listed: their configmap-etc templates read keystone_authtoken.region_name.
    **{
        (chart, ("conf", info.conf_section, *path)): "region the chart fills in, absent from its defaults"
        for chart, info in CHARTS.items()
        if info.conf_section
        for path in info.region_keys
        if not (chart in ("glance", "heat") and path == AUTHTOKEN_REGION)
    },
    # An oslo.config option the chart leaves to heat's built-in default, a string every deployment
    # shares; heat reads any [DEFAULT] option of conf.heat.
    ("heat", ("conf", "heat", "DEFAULT", "auth_encryption_key")): "heat option the chart does not set",
    # helm-toolkit's Deployment upgrade snippet reads rolling_update.max_surge; memcached's values
    # declare only max_unavailable (without it the chart renders an empty maxSurge).
    ("memcached", ("pod", "lifecycle", "upgrades", "deployments", "rolling_update", "max_surge")): (
        "read by helm-toolkit's upgrade snippet"
    ),
}

# What neutron's `[DEFAULT] service_plugins` must be per backend (CONTRACT.md "Backend switch").
ROUTER_PLUGIN = {NetworkBackend.OPENVSWITCH: "router", NetworkBackend.OVN: "ovn-router"}
# The pod labels of the vswitch agent libvirt waits for on its node, per backend.
VSWITCH_AGENT = {
    NetworkBackend.OPENVSWITCH: {"application": "neutron", "component": "neutron-ovs-agent"},
    NetworkBackend.OVN: {"application": "ovn", "component": "ovn-controller"},
}

_MISSING = object()


def load(path: Path) -> Spec:
    spec = load_spec(path.read_text(), path.name)
    assert validate(spec) == [], path.name
    return spec


def computed_values(spec: Spec) -> dict[str, dict[str, Any]]:
    """chart -> the expansion's values without the operator's raw overrides."""
    layers = layered_values(spec, fake_credentials(spec))
    return {chart: merge_all(v[name] for name in LAYER_NAMES if name != OPERATOR_LAYER) for chart, v in layers.items()}


@pytest.fixture(scope="module")
def template_reads(charts_root: Path) -> Callable[[str, KeyPath], bool]:
    """template_reads(chart, path): one of the chart's own templates reads `.Values.<path>` whole
    (`mismatches` asks for the first key of a leaf's path that values.yaml lacks)."""
    cache: dict[str, str] = {}

    def reads(chart: str, path: KeyPath) -> bool:
        if chart not in cache:
            files = sorted((charts_root / chart / "templates").rglob("*"))
            cache[chart] = "\n".join(f.read_text() for f in files if f.is_file())
        return re.search(rf"\.Values\.{re.escape('.'.join(path))}(?![\w.])", cache[chart]) is not None

    return reads


@pytest.fixture(scope="module")
def chart_defaults(charts_root: Path) -> Callable[[str], dict[str, Any]]:
    """chart_defaults(chart): the real chart's values.yaml."""
    cache: dict[str, dict[str, Any]] = {}

    def get(chart: str) -> dict[str, Any]:
        if chart not in cache:
            cache[chart] = yaml.safe_load((charts_root / chart / "values.yaml").read_text())
        return cache[chart]

    return get


def leaves(tree: Mapping[str, Any], prefix: KeyPath = ()) -> Iterator[tuple[KeyPath, Any]]:
    """(path, value) of every leaf; an empty mapping is a leaf too (it still creates the key)."""
    for key, value in tree.items():
        if isinstance(value, Mapping) and value:
            yield from leaves(value, (*prefix, key))
        else:
            yield (*prefix, key), value


def lookup(tree: Any, path: KeyPath) -> Any:
    for key in path:
        if not isinstance(tree, Mapping) or key not in tree:
            return _MISSING
        tree = tree[key]
    return tree


def exemption(chart: str, path: KeyPath) -> tuple[str, KeyPath] | None:
    if path[:1] == ("endpoints",) and path[2:3] == ("auth",):
        return None  # accounts and passwords are never excused
    for owner, prefix in EXEMPT:
        if owner in (ANY_CHART, chart) and path[: len(prefix)] == prefix:
            return owner, prefix
    return None


def mismatches(
    chart: str,
    values: Mapping[str, Any],
    defaults: Mapping[str, Any],
    template_reads: Callable[[str, KeyPath], bool] = lambda chart, path: False,
) -> Iterator[tuple[KeyPath, str]]:
    """Leaves the chart neither declares nor reads in a template (or that would replace one of its
    mappings), with why."""
    for path, _ in leaves(values):
        default = lookup(defaults, path)
        if default is _MISSING:
            undeclared = next(path[:n] for n in range(1, len(path) + 1) if lookup(defaults, path[:n]) is _MISSING)
            if not template_reads(chart, undeclared):
                yield path, "not in the chart's values.yaml, and no template of it reads it"
        elif isinstance(default, Mapping) and default:
            yield path, "replaces a mapping of the chart's values.yaml"


@pytest.fixture(scope="module")
def specs() -> dict[str, Spec]:
    return {path.stem: load(path) for path in SPEC_FILES}


# ---------------------------------------------------------------------------------------------
# 1. Keys


@pytest.mark.parametrize("spec_id", SPEC_IDS)
def test_every_value_the_expansion_sets_is_a_key_of_the_chart(
    spec_id: str,
    specs: dict[str, Spec],
    chart_defaults: Callable[[str], dict[str, Any]],
    template_reads: Callable[[str, KeyPath], bool],
) -> None:
    problems = [
        f"{chart}: {'.'.join(path)}: {why}"
        for chart, values in computed_values(specs[spec_id]).items()
        for path, why in mismatches(chart, values, chart_defaults(chart), template_reads)
        if exemption(chart, path) is None
    ]
    assert problems == [], "\n".join(problems)


def test_every_exemption_is_still_needed(
    specs: dict[str, Spec],
    chart_defaults: Callable[[str], dict[str, Any]],
    template_reads: Callable[[str, KeyPath], bool],
) -> None:
    used = {
        exemption(chart, path)
        for spec in specs.values()
        for chart, values in computed_values(spec).items()
        for path, _ in mismatches(chart, values, chart_defaults(chart), template_reads)
    }
    assert set(EXEMPT) - used == set()


def test_an_account_the_chart_lacks_is_never_excused() -> None:
    assert exemption("nova", ("endpoints", "identity", "auth", "nova_neutron", "password")) is None
    assert exemption("nova", ("endpoints", "identity", "hosts", "public")) is not None


def test_the_specs_cover_both_backends_and_every_size(specs: dict[str, Spec]) -> None:
    assert {s.network_backend for s in specs.values()} == set(NetworkBackend)
    assert {s.size for s in specs.values()} == set(Size)


# ---------------------------------------------------------------------------------------------
# 2. Effects, through the real helm


@pytest.fixture(scope="module")
def rendered(render_chart: RenderFn, specs: dict[str, Spec]) -> Callable[[str, str], Rendered]:
    """rendered(spec_id, chart): the chart rendered with the full expansion (overrides included)."""
    cache: dict[tuple[str, str], Rendered] = {}
    expanded: dict[str, dict[str, dict[str, Any]]] = {}

    def render(spec_id: str, chart: str) -> Rendered:
        if spec_id not in expanded:
            spec = specs[spec_id]
            expanded[spec_id] = expand(spec, fake_credentials(spec))
        if (spec_id, chart) not in cache:
            cache[spec_id, chart] = render_chart(chart, expanded[spec_id][chart])
        return cache[spec_id, chart]

    return render


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = obj["spec"]["template"]["spec"]
    return result


def container(obj: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in pod_spec(obj)["containers"] if c["name"] == name)


def pod_dependencies(obj: dict[str, Any]) -> list[dict[str, Any]]:
    init = next(c for c in pod_spec(obj)["initContainers"] if c["name"] == "init")
    env = {e["name"]: e.get("value", "") for e in init["env"]}
    deps: list[dict[str, Any]] = json.loads(env["DEPENDENCY_POD_JSON"] or "[]")
    return deps


def ini_option(rendered: Rendered, secret: str, key: str, section: str, option: str) -> str | None:
    text = base64.b64decode(rendered.find("Secret", secret)["data"][key]).decode()
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
        elif current == section and "=" in line:
            name, _, value = line.partition("=")
            if name.strip() == option:
                return value.strip()
    return None


@pytest.mark.parametrize("spec_id", SPEC_IDS)
def test_nova_api_gets_the_resources_of_its_size_preset(
    spec_id: str, specs: dict[str, Spec], rendered: Callable[[str, str], Rendered]
) -> None:
    spec = specs[spec_id]
    values = expand(spec, fake_credentials(spec))["nova"]
    assert values["pod"]["resources"]["enabled"] is True
    preset = RESOURCES[spec.size][REPLICA_COMPONENTS["nova"]["osapi"]].values()
    osapi = rendered(spec_id, "nova").find("Deployment", "nova-api-osapi")
    assert container(osapi, "nova-osapi")["resources"] == preset


@pytest.mark.parametrize("spec_id", SPEC_IDS)
def test_neutron_follows_the_network_backend(
    spec_id: str, specs: dict[str, Spec], rendered: Callable[[str, str], Rendered]
) -> None:
    spec = specs[spec_id]
    neutron = rendered(spec_id, "neutron")
    plugins = ini_option(neutron, "neutron-etc", "neutron.conf", "DEFAULT", "service_plugins")
    assert plugins == ROUTER_PLUGIN[spec.network_backend]
    if spec.network_backend is NetworkBackend.OVN:
        network = spec.node_roles.selector(NodeRole.NETWORK)
        agent = neutron.find("DaemonSet", "neutron-ovn-metadata-agent-default")
        assert pod_spec(agent)["nodeSelector"] == {network.key: network.value}


@pytest.mark.parametrize("spec_id", SPEC_IDS)
def test_libvirt_waits_for_the_vswitch_agent_of_the_backend(
    spec_id: str, specs: dict[str, Spec], rendered: Callable[[str, str], Rendered]
) -> None:
    backend = specs[spec_id].network_backend
    libvirt = rendered(spec_id, "libvirt").find("DaemonSet", "libvirt-libvirt-default")
    waits_for = [dep["labels"] for dep in pod_dependencies(libvirt)]
    assert VSWITCH_AGENT[backend] in waits_for
    others = [labels for other, labels in VSWITCH_AGENT.items() if other is not backend]
    assert not [labels for labels in others if labels in waits_for]


# pod.resources keys a chart's template reads although its values.yaml does not declare them:
# (chart, key) -> (kind, name) of the workload whose containers read them.
UNDECLARED_RESOURCE_KEYS: Mapping[tuple[str, str], tuple[str, str]] = {
    ("memcached", "server"): ("StatefulSet", "memcached-memcached"),
    ("cinder", "backup"): ("Deployment", "cinder-backup"),
    ("neutron", "rpc_server"): ("Deployment", "neutron-rpc-server"),
}


@pytest.mark.parametrize(("where", "workload"), list(UNDECLARED_RESOURCE_KEYS.items()), ids=str)
def test_the_preset_sizes_workloads_whose_resource_key_values_yaml_does_not_declare(
    where: tuple[str, str], workload: tuple[str, str], specs: dict[str, Spec], rendered: Callable[[str, str], Rendered]
) -> None:
    chart, key = where
    spec = specs["large-cloud"]
    preset = RESOURCES[spec.size][REPLICA_COMPONENTS[chart][key]].values()
    assert expand(spec, fake_credentials(spec))[chart]["pod"]["resources"][key] == preset
    for c in pod_spec(rendered("large-cloud", chart).find(*workload))["containers"]:
        assert c["resources"] == preset, c["name"]


def test_memcached_reads_no_resources_under_the_key_its_values_yaml_declares(render_chart: RenderFn) -> None:
    """values.yaml declares pod.resources.memcached; the StatefulSet reads pod.resources.server."""
    limits = {"requests": {"cpu": "7m", "memory": "7Mi"}, "limits": {"cpu": "77m", "memory": "77Mi"}}
    statefulset = render_chart("memcached", {"pod": {"resources": {"enabled": True, "memcached": limits}}}).find(
        "StatefulSet", "memcached-memcached")
    assert container(statefulset, "memcached")["resources"] != limits
