"""Building the Spec: defaults fill omitted fields, closed sets become enums, the template loads."""

from __future__ import annotations

from openstack_gitops.model import (
    ChartSource,
    ChartSourceType,
    HealthWatcherPolicy,
    NetworkBackend,
    NodeSelector,
    Size,
    load_spec,
    validate,
)
from openstack_gitops.model.spec import DEFAULTS

from .model_support import SERVICES, TEMPLATE, spec


def test_omitted_fields_take_the_documented_defaults() -> None:
    s = spec()
    assert s.region == DEFAULTS[("region",)] == "RegionOne"
    assert s.namespace == "openstack"
    assert s.network_backend is NetworkBackend.OPENVSWITCH
    assert s.node_roles.control_plane == NodeSelector("openstack-control-plane", "enabled")
    assert s.node_roles.compute == NodeSelector("openstack-compute-node", "enabled")
    assert s.node_roles.network == NodeSelector("openvswitch", "enabled")
    assert s.chart_source == ChartSource(ChartSourceType.HELM, "https://tarballs.opendev.org/openstack/openstack-helm")
    assert s.health_watcher == HealthWatcherPolicy(enabled=True, max_restarts_per_hour=10)
    assert s.autoscaling == () and dict(s.overrides) == {} and dict(s.chart_versions) == {}


def test_closed_sets_are_enums() -> None:
    s = spec({"spec.size": "large", "spec.networking": {"backend": "ovn"}})
    assert s.size is Size.LARGE
    assert s.network_backend is NetworkBackend.OVN


def test_chart_source_location_follows_its_type() -> None:
    s = spec({"spec.charts": {"source": {"type": "oci", "url": "oci://registry.example.com/osh"}}})
    assert s.chart_source == ChartSource(ChartSourceType.OCI, "oci://registry.example.com/osh")


def test_a_role_with_a_custom_label_replaces_the_default_label() -> None:
    s = spec({"spec.nodeRoles": {"compute": {"example.com/hypervisor": "enabled"}}})
    assert s.node_roles.compute == NodeSelector("example.com/hypervisor", "enabled")
    assert s.node_roles.control_plane == NodeSelector("openstack-control-plane", "enabled")


def test_enabled_services_and_charts() -> None:
    s = spec({"spec.services.dashboard.enabled": False})
    assert "dashboard" not in s.enabled_services
    assert "horizon" not in s.charts
    assert s.charts[:3] == ("rabbitmq", "mariadb", "memcached")


def test_autoscaling_policy_is_read_with_defaults() -> None:
    s = spec({"spec.autoscaling": {"glance-api": {"minReplicas": 1, "maxReplicas": 4, "targetSessionsPerReplica": 20}}})
    policy = s.policy("glance-api")
    assert policy is not None
    assert (policy.min_replicas, policy.max_replicas, policy.target_sessions_per_replica) == (1, 4, 20.0)
    assert policy.scale_down_stabilization_seconds == 300
    assert s.policy("keystone-api") is None


def test_the_template_spec_loads_and_validates() -> None:
    s = load_spec(TEMPLATE.read_text(), "openstack.yaml")
    assert validate(s) == []
    assert s.release == "2025.2"
    assert s.enabled_services == frozenset(SERVICES)


def test_the_examples_load_and_validate() -> None:
    examples = sorted((TEMPLATE.parent / "examples").glob("*.yaml"))
    assert examples, "config-repo-template/examples/ holds example specs"
    for path in examples:
        assert validate(load_spec(path.read_text(), path.name)) == [], path.name
