"""The test charts mirror OpenStack-Helm: they render with the real helm, deterministically, and
produce the objects (kind/name/labels/annotations) the reconciler and the test bed rely on."""

from __future__ import annotations

import base64
import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from .chart_support import APP_CHARTS, CHARTS_DIR, LIBRARY_CHART, WORKERS, Rendered, RenderFn

WORKLOAD_KINDS = ("Deployment", "DaemonSet", "StatefulSet")
OPENSTACK_CHARTS = ("keystone", "glance", "cinder", "placement", "nova", "neutron", "horizon", "heat")
CONTROL_PLANE = {"openstack-control-plane": "enabled"}
COMPUTE = {"openstack-compute-node": "enabled"}
OVS = {"openvswitch": "enabled"}

# Objects each chart must render with its default values (kind, name).
EXPECTED: dict[str, list[tuple[str, str]]] = {
    "keystone": [
        ("Deployment", "keystone-api"),
        ("Service", "keystone-api"),
        ("Service", "keystone"),
        ("ConfigMap", "keystone-bin"),
        ("Secret", "keystone-etc"),
        ("Secret", "keystone-keystone-admin"),
        ("Secret", "keystone-db-admin"),
        ("Secret", "keystone-db-user"),
        ("Secret", "keystone-rabbitmq-admin"),
        ("Secret", "keystone-rabbitmq-user"),
        ("Job", "keystone-db-init"),
        ("Job", "keystone-db-sync"),
        ("Job", "keystone-bootstrap"),
        ("Job", "keystone-rabbit-init"),
        ("Job", "keystone-credential-setup"),
        ("Job", "keystone-fernet-setup"),
        ("CronJob", "keystone-fernet-rotate"),
        ("CronJob", "keystone-credential-rotate"),
        ("PodDisruptionBudget", "keystone-api"),
        ("ServiceAccount", "keystone-api"),
        ("ServiceAccount", "keystone-db-sync"),
        ("Role", "keystone-openstack-keystone-db-sync"),
        ("RoleBinding", "keystone-openstack-keystone-db-sync"),
    ],
    "glance": [
        ("Deployment", "glance-api"),
        ("Service", "glance-api"),
        ("Service", "glance"),
        ("Job", "glance-db-init"),
        ("Job", "glance-db-sync"),
        ("Job", "glance-ks-service"),
        ("Job", "glance-ks-user"),
        ("Job", "glance-ks-endpoints"),
        ("Job", "glance-rabbit-init"),
        ("Job", "glance-storage-init"),
        ("PodDisruptionBudget", "glance-api"),
    ],
    "placement": [
        ("Deployment", "placement-api"),
        ("Service", "placement-api"),
        ("Service", "placement"),
        ("Job", "placement-db-init"),
        ("Job", "placement-db-sync"),
        ("Job", "placement-ks-service"),
        ("Job", "placement-ks-user"),
        ("Job", "placement-ks-endpoints"),
    ],
    "nova": [
        ("Deployment", "nova-api-osapi"),
        ("Deployment", "nova-api-metadata"),
        ("Deployment", "nova-conductor"),
        ("Deployment", "nova-scheduler"),
        ("Deployment", "nova-novncproxy"),
        ("DaemonSet", "nova-compute-default"),
        ("Service", "nova-api"),
        ("Service", "nova-metadata"),
        ("Service", "nova-novncproxy"),
        ("Service", "nova"),
        ("Service", "metadata"),
        ("Service", "novncproxy"),
        ("Job", "nova-db-init"),
        ("Job", "nova-db-sync"),
        ("Job", "nova-rabbit-init"),
        ("Job", "nova-ks-service"),
        ("Job", "nova-ks-user"),
        ("Job", "nova-ks-endpoints"),
        ("Job", "nova-bootstrap"),
        ("Job", "nova-cell-setup"),
        ("CronJob", "nova-cell-setup"),
        ("CronJob", "nova-service-cleaner"),
        ("PodDisruptionBudget", "nova-api-osapi"),
        ("PodDisruptionBudget", "nova-api-metadata"),
    ],
    "neutron": [
        ("Deployment", "neutron-server"),
        ("Deployment", "neutron-rpc-server"),
        ("DaemonSet", "neutron-ovs-agent-default"),
        ("DaemonSet", "neutron-dhcp-agent-default"),
        ("DaemonSet", "neutron-l3-agent-default"),
        ("DaemonSet", "neutron-metadata-agent-default"),
        ("Service", "neutron-server"),
        ("Service", "neutron"),
        ("Job", "neutron-db-init"),
        ("Job", "neutron-db-sync"),
        ("Job", "neutron-rabbit-init"),
        ("Job", "neutron-ks-service"),
        ("Job", "neutron-ks-user"),
        ("Job", "neutron-ks-endpoints"),
        ("PodDisruptionBudget", "neutron-server"),
    ],
    "cinder": [
        ("Deployment", "cinder-api"),
        ("Deployment", "cinder-scheduler"),
        ("Deployment", "cinder-volume"),
        ("Deployment", "cinder-backup"),
        ("Service", "cinder-api"),
        ("Service", "cinder"),
        ("Job", "cinder-db-init"),
        ("Job", "cinder-db-sync"),
        ("Job", "cinder-ks-service"),
        ("Job", "cinder-ks-user"),
        ("Job", "cinder-ks-endpoints"),
        ("Job", "cinder-rabbit-init"),
        ("Job", "cinder-create-internal-tenant"),
        ("Job", "cinder-bootstrap"),
        ("PodDisruptionBudget", "cinder-api"),
    ],
    "heat": [
        ("Deployment", "heat-api"),
        ("Deployment", "heat-cfn"),
        ("Deployment", "heat-engine"),
        ("Service", "heat-api"),
        ("Service", "heat-cfn"),
        ("Service", "heat"),
        ("Service", "cloudformation"),
        ("Job", "heat-db-init"),
        ("Job", "heat-db-sync"),
        ("Job", "heat-ks-service"),
        ("Job", "heat-ks-user"),
        ("Job", "heat-ks-endpoints"),
        ("Job", "heat-rabbit-init"),
        ("Job", "heat-trusts"),
        ("Job", "heat-domain-ks-user"),
        ("CronJob", "heat-engine-cleaner"),
        ("PodDisruptionBudget", "heat-api"),
        ("PodDisruptionBudget", "heat-cfn"),
    ],
    "horizon": [
        ("Deployment", "horizon"),
        ("Service", "horizon-int"),
        ("Service", "horizon"),
        ("Job", "horizon-db-init"),
        ("Job", "horizon-db-sync"),
    ],
    "mariadb": [
        ("StatefulSet", "mariadb-server"),
        ("Service", "mariadb"),
        ("Service", "mariadb-discovery"),
        ("ConfigMap", "mariadb-bin"),
        ("ConfigMap", "mariadb-etc"),
        ("Secret", "mariadb-dbadmin-password"),
        ("PodDisruptionBudget", "mariadb-server"),
    ],
    "rabbitmq": [
        ("StatefulSet", "rabbitmq-rabbitmq"),
        ("Service", "rabbitmq"),
        ("Secret", "rabbitmq-admin-user"),
        ("Secret", "rabbitmq-erlang-cookie"),
        ("Job", "rabbitmq-cluster-wait"),
    ],
    "memcached": [("Deployment", "memcached-memcached"), ("Service", "memcached")],
    "libvirt": [("DaemonSet", "libvirt-libvirt-default")],
    "openvswitch": [("DaemonSet", "openvswitch")],
    "ovn": [
        ("StatefulSet", "ovn-ovsdb-nb"),
        ("StatefulSet", "ovn-ovsdb-sb"),
        ("Deployment", "ovn-northd"),
        ("DaemonSet", "ovn-controller"),
    ],
}

# Workload -> node selector it must carry by default.
NODE_SELECTORS: dict[str, list[tuple[str, str, dict[str, str]]]] = {
    "nova": [
        ("DaemonSet", "nova-compute-default", COMPUTE),
        ("Deployment", "nova-api-osapi", CONTROL_PLANE),
        ("Deployment", "nova-conductor", CONTROL_PLANE),
    ],
    "neutron": [
        ("DaemonSet", "neutron-ovs-agent-default", OVS),
        ("DaemonSet", "neutron-dhcp-agent-default", CONTROL_PLANE),
        ("DaemonSet", "neutron-l3-agent-default", CONTROL_PLANE),
        ("DaemonSet", "neutron-metadata-agent-default", CONTROL_PLANE),
        ("Deployment", "neutron-server", CONTROL_PLANE),
    ],
    "libvirt": [("DaemonSet", "libvirt-libvirt-default", COMPUTE)],
    "openvswitch": [("DaemonSet", "openvswitch", OVS)],
    "ovn": [("DaemonSet", "ovn-controller", OVS), ("StatefulSet", "ovn-ovsdb-nb", CONTROL_PLANE)],
    "mariadb": [("StatefulSet", "mariadb-server", CONTROL_PLANE)],
    "keystone": [("Deployment", "keystone-api", CONTROL_PLANE)],
}


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


def pod_annotations(obj: dict[str, Any]) -> dict[str, str]:
    return obj["spec"]["template"]["metadata"].get("annotations") or {}


def secret_value(rendered: Rendered, name: str, key: str) -> str:
    return base64.b64decode(rendered.find("Secret", name)["data"][key]).decode()


def init_env(obj: dict[str, Any]) -> dict[str, str]:
    init = next(c for c in pod_spec(obj)["initContainers"] if c["name"] == "init")
    return {e["name"]: e.get("value", "") for e in init["env"]}


# ---------------------------------------------------------------------------------------------
# Chart metadata


def test_chart_yaml_shape() -> None:
    library = yaml.safe_load((CHARTS_DIR / LIBRARY_CHART / "Chart.yaml").read_text())
    assert library["type"] == "library"
    for chart in APP_CHARTS:
        meta = yaml.safe_load((CHARTS_DIR / chart / "Chart.yaml").read_text())
        assert meta["apiVersion"] == "v2"
        assert meta["name"] == chart
        assert meta.get("type", "application") == "application"
        assert re.fullmatch(r"\d+\.\d+\.\d+", str(meta["version"])), meta["version"]
        deps = {d["name"]: d for d in meta["dependencies"]}
        assert deps[LIBRARY_CHART]["repository"] == "file://../helm-toolkit"


def test_repository_holds_no_build_outputs() -> None:
    leftovers = [p for p in CHARTS_DIR.rglob("*") if p.name == "Chart.lock" or p.suffix == ".tgz"]
    leftovers += [p for p in CHARTS_DIR.glob("*/charts") if p.is_dir()]
    assert leftovers == []


def test_templates_use_only_deterministic_functions() -> None:
    forbidden = re.compile(r"\b(rand\w*|now|lookup|genCA|genPrivateKey|genSelfSignedCert|genSignedCert|uuidv4)\b")
    offenders = []
    for path in sorted(p for p in CHARTS_DIR.glob("*/templates/**/*") if p.is_file()):
        for expr in re.findall(r"\{\{(.*?)\}\}", path.read_text(), flags=re.S):
            if forbidden.search(expr.split("/*")[0]):
                offenders.append(f"{path.relative_to(CHARTS_DIR)}: {expr.strip()[:80]}")
    assert offenders == []


# ---------------------------------------------------------------------------------------------
# Default renders


@pytest.mark.parametrize("chart", APP_CHARTS)
def test_default_render_parses(chart: str, default_renders: dict[str, Rendered]) -> None:
    rendered = default_renders[chart]
    assert rendered.docs, f"{chart} rendered nothing"
    seen: set[tuple[str, str]] = set()
    for doc in rendered.docs:
        assert doc.get("apiVersion") and doc.get("kind"), doc
        name = doc.get("metadata", {}).get("name")
        assert name and isinstance(name, str), doc
        key = (doc["kind"], name)
        assert key not in seen, f"{chart}: {key} rendered twice"
        seen.add(key)


@pytest.mark.parametrize("chart", APP_CHARTS)
def test_expected_objects(chart: str, default_renders: dict[str, Rendered]) -> None:
    rendered = default_renders[chart]
    missing = [k for k in EXPECTED[chart] if k[1] not in rendered.names(k[0])]
    assert missing == []


def test_rendering_is_byte_identical(render_chart: RenderFn, default_renders: dict[str, Rendered]) -> None:
    with ThreadPoolExecutor(WORKERS) as pool:
        again = dict(zip(APP_CHARTS, pool.map(render_chart, APP_CHARTS), strict=True))
    changed = [c for c in APP_CHARTS if again[c].text != default_renders[c].text]
    assert changed == []


@pytest.mark.parametrize("chart", sorted(NODE_SELECTORS))
def test_node_selectors(chart: str, default_renders: dict[str, Rendered]) -> None:
    for kind, name, selector in NODE_SELECTORS[chart]:
        assert pod_spec(default_renders[chart].find(kind, name))["nodeSelector"] == selector, name


@pytest.mark.parametrize("chart", APP_CHARTS)
def test_workloads_follow_osh_pod_conventions(chart: str, default_renders: dict[str, Rendered]) -> None:
    rendered = default_renders[chart]
    workloads = rendered.of_kind(*WORKLOAD_KINDS)
    assert workloads
    for obj in workloads:
        name = obj["metadata"]["name"]
        labels = obj["spec"]["template"]["metadata"]["labels"]
        assert {"release_group", "application", "component"} <= set(labels), name
        assert labels["release_group"] == chart
        assert obj["spec"]["selector"]["matchLabels"] == labels, name
        annotations = pod_annotations(obj)
        assert re.fullmatch(r"[0-9a-f]{64}", annotations["configmap-bin-hash"]), name
        spec = pod_spec(obj)
        init = spec["initContainers"][0]
        assert init["name"] == "init"
        assert init["image"] == "quay.io/airshipit/kubernetes-entrypoint:latest-ubuntu_jammy"
        assert init["command"] == ["kubernetes-entrypoint"]
        assert {"DEPENDENCY_SERVICE", "DEPENDENCY_JOBS", "DEPENDENCY_POD_JSON"} <= set(init_env(obj))
        assert spec["serviceAccountName"] in rendered.names("ServiceAccount")
        for container in spec["containers"]:
            assert container["image"] and container["command"], (name, container["name"])
            assert "resources" not in container, "pod.resources.enabled defaults to false"
            assert "readinessProbe" in container, (name, container["name"])
        assert "volumeClaimTemplates" not in obj["spec"], f"{name}: PVCs must be opt-in (kwok)"
        mounted = {v["name"] for v in spec.get("volumes", [])}
        for container in spec["containers"]:
            assert {m["name"] for m in container.get("volumeMounts", [])} <= mounted, name


@pytest.mark.parametrize("chart", OPENSTACK_CHARTS)
def test_service_charts_hash_their_config(chart: str, default_renders: dict[str, Rendered]) -> None:
    rendered = default_renders[chart]
    assert f"{chart}-etc" in rendered.names("Secret")
    assert f"{chart}-bin" in rendered.names("ConfigMap")
    for obj in rendered.of_kind(*WORKLOAD_KINDS):
        assert re.fullmatch(r"[0-9a-f]{64}", pod_annotations(obj)["configmap-etc-hash"])


@pytest.mark.parametrize("chart", [c for c in APP_CHARTS if any(k == "Job" for k, _ in EXPECTED[c])])
def test_jobs_carry_helm_hooks(chart: str, default_renders: dict[str, Rendered]) -> None:
    jobs = default_renders[chart].of_kind("Job")
    assert jobs
    for job in jobs:
        annotations = job["metadata"]["annotations"]
        assert annotations["helm.sh/hook"] == "post-install,post-upgrade", job["metadata"]["name"]
        assert re.fullmatch(r"-?\d+", annotations["helm.sh/hook-weight"])
        assert pod_spec(job)["restartPolicy"] == "OnFailure"


def test_helm3_hook_off_drops_hook_annotations(render_chart: RenderFn) -> None:
    rendered = render_chart("nova", {"helm3_hook": False})
    jobs = rendered.of_kind("Job")
    assert len(jobs) == 8
    assert all("helm.sh/hook" not in job["metadata"]["annotations"] for job in jobs)


# ---------------------------------------------------------------------------------------------
# Values drive the output


def test_conf_change_rolls_the_deployment(render_chart: RenderFn, default_renders: dict[str, Rendered]) -> None:
    before = pod_annotations(default_renders["keystone"].find("Deployment", "keystone-api"))
    changed = render_chart("keystone", {"conf": {"keystone": {"DEFAULT": {"debug": True}}}})
    after = pod_annotations(changed.find("Deployment", "keystone-api"))
    assert after["configmap-etc-hash"] != before["configmap-etc-hash"]
    assert after["configmap-bin-hash"] == before["configmap-bin-hash"]
    assert "debug = true" in secret_value(changed, "keystone-etc", "keystone.conf").splitlines()


def test_password_change_rolls_every_nova_workload(
    render_chart: RenderFn, default_renders: dict[str, Rendered]
) -> None:
    changed = render_chart("nova", {"endpoints": {"oslo_db": {"auth": {"nova": {"password": "s3cret"}}}}})
    for obj in default_renders["nova"].of_kind(*WORKLOAD_KINDS):
        new = changed.find(obj["kind"], obj["metadata"]["name"])
        assert pod_annotations(new)["configmap-etc-hash"] != pod_annotations(obj)["configmap-etc-hash"]
    assert "s3cret@" in secret_value(changed, "nova-db-user", "DB_CONNECTION")


def test_endpoint_uris(default_renders: dict[str, Rendered]) -> None:
    keystone = default_renders["keystone"]
    assert (
        secret_value(keystone, "keystone-db-user", "DB_CONNECTION")
        == "mysql+pymysql://keystone:password@mariadb.openstack.svc.cluster.local:3306/keystone"
    )
    assert (
        secret_value(keystone, "keystone-keystone-admin", "OS_AUTH_URL")
        == "http://keystone-api.openstack.svc.cluster.local:5000/v3"
    )
    conf = secret_value(default_renders["nova"], "nova-etc", "nova.conf")
    assert "connection = mysql+pymysql://nova:password@mariadb.openstack.svc.cluster.local:3306/nova_api" in conf
    rabbit0 = "rabbitmq-rabbitmq-0.rabbitmq.openstack.svc.cluster.local:5672"
    assert f"transport_url = rabbit://nova:password@{rabbit0}," in conf
    assert "memcached_servers = memcached.openstack.svc.cluster.local:11211" in conf
    assert "region_name = RegionOne" in conf


def test_public_hostname_and_region(render_chart: RenderFn) -> None:
    rendered = render_chart(
        "glance",
        {
            "endpoints": {
                "image": {"host_fqdn_override": {"public": {"host": "glance.cloud.example"}}},
                "identity": {"auth": {"glance": {"region_name": "RegionTwo"}}},
            }
        },
    )
    job = rendered.find("Job", "glance-ks-endpoints")
    urls = {
        c["name"]: next(e["value"] for e in c["env"] if e["name"] == "OS_SERVICE_ENDPOINT")
        for c in pod_spec(job)["containers"]
    }
    assert urls["image-ks-endpoints-public"] == "http://glance.cloud.example:80"
    assert urls["image-ks-endpoints-internal"] == "http://glance-api.openstack.svc.cluster.local:9292"
    conf = secret_value(rendered, "glance-etc", "glance-api.conf")
    assert "region_name = RegionTwo" in conf
    assert "public_endpoint = http://glance.cloud.example:80" in conf


def test_dependencies_reach_the_init_container(default_renders: dict[str, Rendered]) -> None:
    env = init_env(default_renders["nova"].find("DaemonSet", "nova-compute-default"))
    assert env["DEPENDENCY_JOBS"] == "nova-db-sync,nova-rabbit-init"
    assert "openstack:nova-api" in env["DEPENDENCY_SERVICE"].split(",")
    pods = yaml.safe_load(env["DEPENDENCY_POD_JSON"])
    assert {"labels": {"application": "libvirt", "component": "libvirt"}, "requireSameNode": True} in pods
    assert any(p["labels"]["component"] == "neutron-ovs-agent" for p in pods)
    api = init_env(default_renders["keystone"].find("Deployment", "keystone-api"))
    assert api["DEPENDENCY_JOBS"] == "keystone-db-sync,keystone-credential-setup,keystone-fernet-setup"


@pytest.mark.parametrize(
    ("backend", "present", "absent"),
    [
        (
            "openvswitch",
            {
                "neutron-ovs-agent-default",
                "neutron-dhcp-agent-default",
                "neutron-l3-agent-default",
                "neutron-metadata-agent-default",
            },
            {"neutron-ovn-metadata-agent-default"},
        ),
        (
            "ovn",
            {"neutron-ovn-metadata-agent-default"},
            {
                "neutron-ovs-agent-default",
                "neutron-dhcp-agent-default",
                "neutron-l3-agent-default",
                "neutron-metadata-agent-default",
            },
        ),
    ],
)
def test_neutron_network_backend(render_chart: RenderFn, backend: str, present: set[str], absent: set[str]) -> None:
    values: dict[str, Any] = {"network": {"backend": [backend]}}
    if backend == "ovn":
        values["conf"] = {"plugins": {"ml2_conf": {"ml2": {"mechanism_drivers": "ovn"}}}}
    rendered = render_chart("neutron", values)
    daemonsets = rendered.names("DaemonSet")
    assert present <= daemonsets
    assert not absent & daemonsets
    assert "neutron-server" in rendered.names("Deployment")
    ml2 = secret_value(rendered, "neutron-etc", "ml2_conf.ini")
    if backend == "ovn":
        ds = rendered.find("DaemonSet", "neutron-ovn-metadata-agent-default")
        assert pod_spec(ds)["nodeSelector"] == OVS  # OSH: labels.ovs
        assert "mechanism_drivers = ovn" in ml2
        assert "ovn_nb_connection = tcp:ovn-ovsdb-nb.openstack.svc.cluster.local:6641" in ml2
        server_deps = init_env(rendered.find("Deployment", "neutron-server"))["DEPENDENCY_SERVICE"]
        assert "openstack:ovn-ovsdb-sb" in server_deps
    else:
        assert "mechanism_drivers = openvswitch,l2population" in ml2


def test_replicas_resources_and_upgrades(render_chart: RenderFn) -> None:
    rendered = render_chart(
        "nova",
        {
            "pod": {
                "replicas": {"osapi": 3, "conductor": 2},
                "resources": {"enabled": True},
                "lifecycle": {"upgrades": {"deployments": {"rolling_update": {"max_unavailable": 2}}}},
            }
        },
    )
    osapi = rendered.find("Deployment", "nova-api-osapi")
    assert osapi["spec"]["replicas"] == 3
    assert rendered.find("Deployment", "nova-conductor")["spec"]["replicas"] == 2
    assert osapi["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 2, "maxSurge": 3},
    }
    container = pod_spec(osapi)["containers"][0]
    assert container["resources"]["limits"] == {"cpu": "2000m", "memory": "1024Mi"}
    compute = rendered.find("DaemonSet", "nova-compute-default")
    assert compute["spec"]["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}
    db_sync = pod_spec(rendered.find("Job", "nova-db-sync"))["containers"][0]
    assert "resources" in db_sync


def test_image_override(render_chart: RenderFn) -> None:
    tag = "registry.example/keystone:2025.2-ubuntu_noble"
    rendered = render_chart("keystone", {"images": {"tags": {"keystone_api": tag}}})
    assert pod_spec(rendered.find("Deployment", "keystone-api"))["containers"][0]["image"] == tag


def test_manifest_switch_drops_object(render_chart: RenderFn) -> None:
    rendered = render_chart("nova", {"manifests": {"cron_job_cell_setup": False, "deployment_novncproxy": False}})
    assert "nova-cell-setup" not in rendered.names("CronJob")
    assert "nova-cell-setup" in rendered.names("Job")
    assert "nova-novncproxy" not in rendered.names("Deployment")


def test_infra_defaults_and_volumes(render_chart: RenderFn, default_renders: dict[str, Rendered]) -> None:
    mariadb = default_renders["mariadb"].find("StatefulSet", "mariadb-server")
    assert mariadb["spec"]["replicas"] == 3
    assert mariadb["spec"]["serviceName"] == "mariadb-discovery"
    assert default_renders["mariadb"].find("Service", "mariadb-discovery")["spec"]["clusterIP"] == "None"
    with_pvc = render_chart("mariadb", {"volume": {"enabled": True}, "pod": {"replicas": {"server": 1}}})
    sts = with_pvc.find("StatefulSet", "mariadb-server")
    assert sts["spec"]["replicas"] == 1
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "5Gi"

    rabbit = default_renders["rabbitmq"]
    discovery = {n for n in rabbit.names("Service") if n.startswith("rabbitmq-dsv-")}
    assert len(discovery) == 1
    assert rabbit.find("StatefulSet", "rabbitmq-rabbitmq")["spec"]["serviceName"] == discovery.pop()
    assert secret_value(rabbit, "rabbitmq-erlang-cookie", "erlang_cookie") == "openstack-cookie"


def test_charts_render_the_expansion_golden_values(render_chart: RenderFn) -> None:
    """The values the reconciler's expansion produces for the template spec render cleanly."""
    fixture = Path(__file__).resolve().parent / "fixtures" / "expand-template.json"
    if not fixture.exists():
        pytest.skip("no expansion golden fixture")
    charts: dict[str, Any] = json.loads(fixture.read_text())["charts"]
    unknown = set(charts) - set(APP_CHARTS)
    assert unknown == set(), f"expansion targets charts that do not exist: {unknown}"
    with ThreadPoolExecutor(WORKERS) as pool:
        rendered = dict(zip(charts, pool.map(render_chart, charts, charts.values()), strict=True))
    for chart, result in rendered.items():
        workloads = {(d["kind"], d["metadata"]["name"]) for d in result.of_kind(*WORKLOAD_KINDS)}
        assert workloads, chart
        for kind, name in EXPECTED[chart]:
            backend_dependent = kind == "DaemonSet" and name.startswith("neutron-")
            if kind in WORKLOAD_KINDS and not backend_dependent:
                assert (kind, name) in workloads, (chart, kind, name)
    neutron = rendered.get("neutron")
    if neutron is not None:
        backend = charts["neutron"].get("network", {}).get("backend", ["openvswitch"])
        agents = {n for n in neutron.names("DaemonSet") if n.startswith("neutron-")}
        if backend == ["ovn"]:
            assert agents == {"neutron-ovn-metadata-agent-default"}
        else:
            assert "neutron-ovs-agent-default" in agents
