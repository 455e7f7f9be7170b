"""The real OpenStack-Helm charts, rendered with the expansion's values, do what the spec says.

Every spec of config-repo-template is expanded and rendered from the unmodified upstream charts
once per session (conftest `real_cloud`, the reconciler's own pipeline and Helm edge). These tests
read those renders: they parse and repeat byte for byte, every container runs an image of the
release table, every pod lands on the nodes of its role, the network backend switches the agents,
and replicas, resources and rollout settings come from the size preset. Helm test Pods are left
out: the reconciler never runs them.

Where a real chart does not follow the expansion, the object is named in a small table with the
reason (`SELECTOR_GAPS`, `NOT_SCALED`); a table entry that no longer excuses anything fails.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from openstack_gitops.model.catalog import BACKEND_CHARTS, CHARTS, NetworkBackend, guarded
from openstack_gitops.model.expand import DEPLOYMENT_UPGRADES, autoscaled_deployments
from openstack_gitops.model.presets import (
    AGENT_COMPONENTS,
    REPLICA_COMPONENTS,
    RESOURCE_KEYS,
    ComponentClass,
    replicas,
)
from openstack_gitops.model.releases import images
from reconciler.edges.helm import ChartRef, Helm

from .chart_support import EXAMPLES, KUBE_VERSION, NAMESPACE, SPEC_FILES, TEMPLATE, Cloud, CloudFn

SPEC_IDS = [p.stem for p in SPEC_FILES]
OPENSTACK_CHARTS = ("keystone", "glance", "cinder", "placement", "nova", "neutron", "horizon", "heat")
POD_KINDS = ("Deployment", "DaemonSet", "StatefulSet", "Job", "CronJob", "Pod")
WORKLOAD_KINDS = ("Deployment", "DaemonSet", "StatefulSet")
LARGE_CLOUD = EXAMPLES / "large-cloud.yaml"  # custom node labels, size large, OVN
OVN_BACKEND = EXAMPLES / "ovn-backend.yaml"
RELEASE_TAG = re.compile(r":(\d{4}\.\d)-ubuntu_")  # quay.io/airshipit/<project>:<release>-ubuntu_<series>

ObjectId = tuple[str, str, str]  # chart, kind, name

# (chart, kind, name) -> why its pods do not follow the spec's nodeRoles.
SELECTOR_GAPS: dict[ObjectId, str] = {}

# Service type -> why its public endpoint in Keystone is not under spec.publicDomain.
PUBLIC_GAPS: dict[str, str] = {}
PUBLIC_SUFFIX = "-ks-endpoints-public"

# Replicated workloads: (chart, pod.replicas component) -> (kind, name). Must cover presets.REPLICA_COMPONENTS.
REPLICATED: dict[tuple[str, str], tuple[str, str]] = {
    ("mariadb", "server"): ("StatefulSet", "mariadb-server"),
    ("rabbitmq", "server"): ("StatefulSet", "rabbitmq-rabbitmq"),
    ("memcached", "server"): ("StatefulSet", "memcached-memcached"),
    ("keystone", "api"): ("Deployment", "keystone-api"),
    ("glance", "api"): ("Deployment", "glance-api"),
    ("placement", "api"): ("Deployment", "placement-api"),
    ("nova", "osapi"): ("Deployment", "nova-api-osapi"),
    ("nova", "api_metadata"): ("Deployment", "nova-api-metadata"),
    ("nova", "novncproxy"): ("Deployment", "nova-novncproxy"),
    ("nova", "conductor"): ("Deployment", "nova-conductor"),
    ("nova", "scheduler"): ("Deployment", "nova-scheduler"),
    ("neutron", "server"): ("Deployment", "neutron-server"),
    ("neutron", "rpc_server"): ("Deployment", "neutron-rpc-server"),
    ("ovn", "ovn_ovsdb_nb"): ("StatefulSet", "ovn-ovsdb-nb"),
    ("ovn", "ovn_ovsdb_sb"): ("StatefulSet", "ovn-ovsdb-sb"),
    ("ovn", "ovn_northd"): ("Deployment", "ovn-northd"),
    ("cinder", "api"): ("Deployment", "cinder-api"),
    ("cinder", "scheduler"): ("Deployment", "cinder-scheduler"),
    ("cinder", "volume"): ("Deployment", "cinder-volume"),
    ("cinder", "backup"): ("Deployment", "cinder-backup"),
    ("heat", "api"): ("Deployment", "heat-api"),
    ("heat", "cfn"): ("Deployment", "heat-cfn"),
    ("heat", "engine"): ("Deployment", "heat-engine"),
    ("horizon", "server"): ("Deployment", "horizon"),
}

# DaemonSet containers: (chart, pod.resources path) -> (DaemonSet, container). Must cover presets.AGENT_COMPONENTS.
AGENTS: dict[tuple[str, str], tuple[str, str]] = {
    ("nova", "compute"): ("nova-compute-default", "nova-compute"),
    ("libvirt", "libvirt"): ("libvirt-libvirt-default", "libvirt"),
    ("neutron", "agent.dhcp"): ("neutron-dhcp-agent-default", "neutron-dhcp-agent"),
    ("neutron", "agent.l3"): ("neutron-l3-agent-default", "neutron-l3-agent"),
    ("neutron", "agent.metadata"): ("neutron-metadata-agent-default", "neutron-metadata-agent"),
    ("neutron", "agent.ovs"): ("neutron-ovs-agent-default", "neutron-ovs-agent"),
    ("neutron", "agent.ovn_metadata"): ("neutron-ovn-metadata-agent-default", "neutron-ovn-metadata-agent"),
    ("neutron", "netns_cleanup_cron"): ("neutron-netns-cleanup-cron-default", "neutron-netns-cleanup-cron"),
    ("openvswitch", "ovs.db"): ("openvswitch", "openvswitch-db"),
    ("openvswitch", "ovs.vswitchd"): ("openvswitch", "openvswitch-vswitchd"),
    ("ovn", "ovn_controller"): ("ovn-controller-default", "controller"),
}

# Workloads the size preset does not size -> why.
NOT_SCALED: dict[ObjectId, str] = {
    ("mariadb", "Deployment", "mariadb-controller"): "the chart's leader-elected Galera controller: one replica by "
    "design; its resources stay the chart's",
}

# Neutron agents per backend: only these run next to neutron-server.
BACKEND_AGENTS = {
    NetworkBackend.OPENVSWITCH: {
        "neutron-ovs-agent-default",
        "neutron-dhcp-agent-default",
        "neutron-l3-agent-default",
        "neutron-metadata-agent-default",
    },
    NetworkBackend.OVN: {"neutron-ovn-metadata-agent-default"},
}
MECHANISM_DRIVERS = {NetworkBackend.OPENVSWITCH: "openvswitch,l2population", NetworkBackend.OVN: "ovn"}


def is_helm_test(doc: dict[str, Any]) -> bool:
    hook = (doc["metadata"].get("annotations") or {}).get("helm.sh/hook", "")
    return bool({"test", "test-success"} & set(hook.split(",")))


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    if doc["kind"] == "Pod":
        return dict(doc["spec"])
    if doc["kind"] == "CronJob":
        return dict(doc["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    return dict(doc["spec"]["template"]["spec"])


def pod_bearing(cloud: Cloud) -> Iterator[tuple[str, dict[str, Any]]]:
    """(chart, object) of every object that runs pods, Helm test Pods left out."""
    for chart, rendered in cloud.renders.items():
        for doc in rendered.of_kind(*POD_KINDS):
            if not is_helm_test(doc):
                yield chart, doc


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(doc)
    return [*spec.get("initContainers", []), *spec["containers"]]


def secret_text(cloud: Cloud, chart: str, name: str, key: str) -> str:
    return base64.b64decode(cloud.renders[chart].find("Secret", name)["data"][key]).decode()


def get(tree: Mapping[str, Any], dotted: str) -> Any:
    for key in dotted.split("."):
        tree = tree[key]
    return tree


# ---------------------------------------------------------------------------------------------
# The renders themselves


@pytest.mark.parametrize("spec_file", SPEC_FILES, ids=SPEC_IDS)
def test_every_chart_renders_distinct_named_objects(real_cloud: CloudFn, spec_file: Path) -> None:
    cloud = real_cloud(spec_file)
    assert set(cloud.renders) == set(cloud.spec.charts)
    seen: dict[tuple[str, str, str], str] = {}
    for chart, rendered in cloud.renders.items():
        assert rendered.docs, f"{chart} rendered nothing"
        for doc in rendered.docs:
            assert doc.get("apiVersion") and doc.get("kind"), (chart, doc)
            name = doc.get("metadata", {}).get("name")
            assert name and isinstance(name, str), (chart, doc)
            key = (doc["kind"], doc["metadata"].get("namespace", ""), name)
            assert key not in seen, f"{key} rendered by {seen[key]} and {chart}"
            seen[key] = chart


def test_rendering_again_gives_the_same_bytes(real_cloud: CloudFn, helm_binary: Path, charts_root: Path,
                                              tmp_path: Path) -> None:
    """Unchanged values mean unchanged objects: no chart draws anything random where the expansion sets it."""
    cloud = real_cloud(TEMPLATE)
    with Helm(str(helm_binary), tmp_path) as fresh:  # a second edge: nothing comes from the first one's cache
        changed = [chart for chart, rendered in cloud.renders.items()
                   if fresh.render(chart, ChartRef(chart, "directory", str(charts_root / chart)), NAMESPACE,
                                   cloud.values[chart], KUBE_VERSION) != rendered.text]
    assert changed == []


# ---------------------------------------------------------------------------------------------
# Images


@pytest.mark.parametrize("spec_file", SPEC_FILES, ids=SPEC_IDS)
def test_every_container_runs_an_image_of_the_release_table(real_cloud: CloudFn, spec_file: Path) -> None:
    cloud = real_cloud(spec_file)
    overridden = {chart: set(get(values, "images.tags").values()) for chart, values in cloud.spec.overrides.items()
                  if "tags" in values.get("images", {})}
    strangers = []
    for chart, doc in pod_bearing(cloud):
        allowed = set(images(cloud.spec.release, chart).values()) | overridden.get(chart, set())
        strangers += [f"{chart} {doc['kind']}/{doc['metadata']['name']} {c['name']}: {c['image']}"
                      for c in containers(doc) if c["image"] not in allowed]
    assert strangers == []


@pytest.mark.parametrize("spec_file", SPEC_FILES, ids=SPEC_IDS)
def test_no_container_runs_another_release(real_cloud: CloudFn, spec_file: Path) -> None:
    """The charts default to the newest release's images: a spec on an older release must not run
    any of them (an image key left to the chart default would, and an upgrade would skip it)."""
    cloud = real_cloud(spec_file)
    other = [f"{chart} {doc['metadata']['name']} {c['name']}: {c['image']}" for chart, doc in pod_bearing(cloud)
             for c in containers(doc) if (m := RELEASE_TAG.search(c["image"])) and m.group(1) != cloud.spec.release]
    assert other == []


# ---------------------------------------------------------------------------------------------
# Node roles


def test_every_pod_runs_on_the_nodes_of_its_role(real_cloud: CloudFn) -> None:
    """large-cloud labels its nodes its own way: no chart default selector may survive, and every
    value is a string (an unquoted `true` would be a boolean the API server refuses)."""
    cloud = real_cloud(LARGE_CLOUD)
    roles = cloud.spec.node_roles
    allowed = [{s.key: s.value} for s in (roles.control_plane, roles.compute, roles.network)]
    wrong = []
    for chart, doc in pod_bearing(cloud):
        selector = pod_spec(doc).get("nodeSelector")
        if (chart, doc["kind"], doc["metadata"]["name"]) not in SELECTOR_GAPS and selector not in allowed:
            wrong.append(f"{chart} {doc['kind']}/{doc['metadata']['name']}: {selector}")
    assert wrong == []


@pytest.mark.parametrize(
    ("spec_file", "chart", "kind", "name", "role"),
    [
        pytest.param(LARGE_CLOUD, "nova", "DaemonSet", "nova-compute-default", "compute", id="nova-compute"),
        pytest.param(LARGE_CLOUD, "libvirt", "DaemonSet", "libvirt-libvirt-default", "compute", id="libvirt"),
        pytest.param(LARGE_CLOUD, "ovn", "DaemonSet", "ovn-controller-default", "network", id="ovn-controller"),
        pytest.param(LARGE_CLOUD, "neutron", "DaemonSet", "neutron-ovn-metadata-agent-default", "network",
                     id="ovn-metadata-agent"),
        pytest.param(LARGE_CLOUD, "mariadb", "StatefulSet", "mariadb-server", "control_plane", id="mariadb"),
        pytest.param(LARGE_CLOUD, "keystone", "Deployment", "keystone-api", "control_plane", id="keystone-api"),
        pytest.param(TEMPLATE, "openvswitch", "DaemonSet", "openvswitch", "network", id="openvswitch"),
        pytest.param(TEMPLATE, "neutron", "DaemonSet", "neutron-l3-agent-default", "network", id="l3-agent"),
        pytest.param(TEMPLATE, "neutron", "DaemonSet", "neutron-ovs-agent-default", "network", id="ovs-agent"),
        pytest.param(LARGE_CLOUD, "neutron", "DaemonSet", "neutron-netns-cleanup-cron-default", "network",
                     id="netns-cleanup-cron"),
        pytest.param(LARGE_CLOUD, "rabbitmq", "Job", "rabbitmq-cluster-wait", "control_plane",
                     id="rabbitmq-cluster-wait"),
    ],
)
def test_a_component_runs_on_its_role(real_cloud: CloudFn, spec_file: Path, chart: str, kind: str, name: str,
                                      role: str) -> None:
    cloud = real_cloud(spec_file)
    selector = getattr(cloud.spec.node_roles, role)
    assert pod_spec(cloud.renders[chart].find(kind, name))["nodeSelector"] == {selector.key: selector.value}


def test_every_selector_gap_is_still_a_gap(real_cloud: CloudFn) -> None:
    cloud = real_cloud(LARGE_CLOUD)
    roles = cloud.spec.node_roles
    allowed = [{s.key: s.value} for s in (roles.control_plane, roles.compute, roles.network)]
    for chart, kind, name in SELECTOR_GAPS:
        assert pod_spec(cloud.renders[chart].find(kind, name)).get("nodeSelector") not in allowed, (
            f"{chart} {kind}/{name} follows nodeRoles now: remove it from SELECTOR_GAPS")


# ---------------------------------------------------------------------------------------------
# Network backend


@pytest.mark.parametrize(("spec_file", "backend"), [(TEMPLATE, NetworkBackend.OPENVSWITCH),
                                                    (OVN_BACKEND, NetworkBackend.OVN)], ids=["openvswitch", "ovn"])
def test_the_network_backend_picks_the_switch_chart_and_the_agents(real_cloud: CloudFn, spec_file: Path,
                                                                   backend: NetworkBackend) -> None:
    cloud = real_cloud(spec_file)
    assert cloud.spec.network_backend is backend
    other = next(b for b in NetworkBackend if b is not backend)
    assert BACKEND_CHARTS[backend] in cloud.renders and BACKEND_CHARTS[other] not in cloud.renders
    agents = {n for n in cloud.renders["neutron"].names("DaemonSet") if n in set().union(*BACKEND_AGENTS.values())}
    assert agents == BACKEND_AGENTS[backend]
    ml2 = secret_text(cloud, "neutron", "neutron-etc", "ml2_conf.ini").splitlines()
    assert f"mechanism_drivers = {MECHANISM_DRIVERS[backend]}" in ml2


@pytest.mark.parametrize("spec_file", SPEC_FILES, ids=SPEC_IDS)
def test_the_health_watcher_guards_rendered_workloads(real_cloud: CloudFn, spec_file: Path) -> None:
    """Its default workloads (model.catalog.guarded) and every workload a spec adds, by kind and name."""
    cloud = real_cloud(spec_file)
    rendered = {(d["kind"], d["metadata"]["name"]) for r in cloud.renders.values() for d in r.docs}
    named = {(g.kind, g.name) for g in guarded(cloud.spec.network_backend)}
    named |= {(w.kind, w.name) for w in cloud.spec.health_watcher.workloads if w.kind is not None}
    assert sorted(named - rendered) == []


# ---------------------------------------------------------------------------------------------
# Size preset: replicas, resources, rollout


def test_the_workload_tables_cover_the_presets() -> None:
    assert set(REPLICATED) == {(chart, c) for chart, comps in REPLICA_COMPONENTS.items() for c in comps}
    assert set(AGENTS) == {(chart, c) for chart, comps in AGENT_COMPONENTS.items() for c in comps}


@pytest.mark.parametrize("spec_file", SPEC_FILES, ids=SPEC_IDS)
def test_replicas_and_resources_come_from_the_expansion(real_cloud: CloudFn, spec_file: Path) -> None:
    cloud = real_cloud(spec_file)
    sized: set[ObjectId] = set()
    for (chart, component), (kind, name) in REPLICATED.items():
        if chart not in cloud.renders:
            continue
        values = cloud.values[chart]["pod"]
        workload = cloud.renders[chart].find(kind, name)
        assert workload["spec"]["replicas"] == values["replicas"][component], (chart, name)
        expected = values["resources"][RESOURCE_KEYS.get(chart, {}).get(component, component)]
        for container in pod_spec(workload)["containers"]:
            assert container["resources"] == expected, (chart, name, container["name"])
        sized.add((chart, kind, name))
    for (chart, path), (name, container_name) in AGENTS.items():
        if chart not in cloud.renders or name not in cloud.renders[chart].names("DaemonSet"):
            continue  # an agent of the other network backend
        daemonset = cloud.renders[chart].find("DaemonSet", name)
        container = next(c for c in pod_spec(daemonset)["containers"] if c["name"] == container_name)
        assert container["resources"] == get(cloud.values[chart]["pod"]["resources"], path), (chart, name)
        sized.add((chart, "DaemonSet", name))
    workloads = {(chart, d["kind"], d["metadata"]["name"]) for chart, r in cloud.renders.items()
                 for d in r.of_kind(*WORKLOAD_KINDS)}
    assert workloads - sized - set(NOT_SCALED) == set(), "workloads neither sized by the preset nor in NOT_SCALED"
    assert sized & set(NOT_SCALED) == set(), "sized by the preset now: remove from NOT_SCALED"


def test_replicas_follow_the_size_preset_where_the_spec_does_not_override_them(real_cloud: CloudFn) -> None:
    for spec_file in (TEMPLATE, LARGE_CLOUD):
        cloud = real_cloud(spec_file)
        for (chart, component), (kind, name) in REPLICATED.items():
            overridden = component in cloud.spec.overrides.get(chart, {}).get("pod", {}).get("replicas", {})
            if chart in cloud.renders and not overridden and name not in autoscaled_deployments(cloud.spec):
                replicas_now = cloud.renders[chart].find(kind, name)["spec"]["replicas"]
                assert replicas_now == replicas(cloud.spec.size, chart)[component], (spec_file.stem, name)


@pytest.mark.parametrize("spec_file", SPEC_FILES, ids=SPEC_IDS)
def test_openstack_deployments_and_daemonsets_roll_one_pod_at_a_time(real_cloud: CloudFn, spec_file: Path) -> None:
    cloud = real_cloud(spec_file)
    rolling = get(DEPLOYMENT_UPGRADES, "rolling_update")
    strategy = {"type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": rolling["max_unavailable"], "maxSurge": rolling["max_surge"]}}
    for (chart, component), (kind, name) in REPLICATED.items():
        if chart in OPENSTACK_CHARTS and kind == "Deployment" and chart in cloud.renders:
            assert REPLICA_COMPONENTS[chart][component] is not ComponentClass.CLUSTER
            assert cloud.renders[chart].find(kind, name)["spec"]["strategy"] == strategy, name
    one_at_a_time = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}
    for chart, info in CHARTS.items():
        if chart in cloud.renders and info.daemonsets:
            for daemonset in cloud.renders[chart].of_kind("DaemonSet"):
                # none rendered (the ovn chart) means the API server's default, which is the same
                assert daemonset["spec"].get("updateStrategy", one_at_a_time) == one_at_a_time, chart


# ---------------------------------------------------------------------------------------------
# What the spec names reaches the services


def public_endpoints(cloud: Cloud) -> dict[str, str]:
    """Service type -> the public URL its ks-endpoints Job registers in Keystone."""
    found = {}
    for chart in OPENSTACK_CHARTS:
        for job in cloud.renders[chart].of_kind("Job"):
            for container in pod_spec(job)["containers"]:
                if container["name"].endswith(PUBLIC_SUFFIX):
                    env = {e["name"]: e.get("value") for e in container["env"]}
                    found[container["name"].removesuffix(PUBLIC_SUFFIX)] = env["OS_SERVICE_ENDPOINT"]
    return found


def test_public_endpoints_are_registered_under_the_public_domain(real_cloud: CloudFn) -> None:
    cloud = real_cloud(LARGE_CLOUD)
    public = public_endpoints(cloud)
    assert {"image", "compute", "network", "volumev3", "orchestration", "cloudformation", "placement"} <= set(public)
    outside = {service: url for service, url in public.items() if service not in PUBLIC_GAPS
               and not (urlsplit(url).hostname or "").endswith(f".{cloud.spec.public_domain}")}
    assert outside == {}
    for service in PUBLIC_GAPS:
        assert not (urlsplit(public[service]).hostname or "").endswith(f".{cloud.spec.public_domain}"), (
            f"{service} is public now: remove it from PUBLIC_GAPS")


def test_heat_gives_instances_the_public_cloudformation_url(real_cloud: CloudFn) -> None:
    """Instances call heat-cfn back (metadata, wait conditions) from outside the cluster."""
    cloud = real_cloud(LARGE_CLOUD)
    conf = dict(line.split(" = ", 1) for line in secret_text(cloud, "heat", "heat-etc", "heat.conf").splitlines()
                if " = " in line)
    domain = cloud.spec.public_domain
    assert conf["heat_metadata_server_url"] == f"https://cloudformation.{domain}"
    assert conf["heat_waitcondition_server_url"] == f"https://cloudformation.{domain}/v1/waitcondition"


def test_a_config_change_rolls_the_pods_through_the_config_hash(real_cloud: CloudFn, render_chart: Any) -> None:
    cloud = real_cloud(TEMPLATE)
    values = dict(cloud.values["keystone"])
    values["conf"] = {**values.get("conf", {}), "logging": {"logger_root": {"level": "DEBUG"}}}
    before = cloud.renders["keystone"].find("Deployment", "keystone-api")["spec"]["template"]["metadata"]
    after = render_chart("keystone", values).find("Deployment", "keystone-api")["spec"]["template"]["metadata"]
    assert after["annotations"]["configmap-etc-hash"] != before["annotations"]["configmap-etc-hash"]
    assert after["annotations"]["configmap-bin-hash"] == before["annotations"]["configmap-bin-hash"]
