"""Expansion: layer precedence, facts shared by every chart, determinism, backend switch."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from openstack_gitops.model import (
    APPLY_ORDER,
    LAYER_NAMES,
    MissingCredentials,
    SpecInvalid,
    autoscaled_deployments,
    canonical_json,
    expand,
    layered_values,
)
from openstack_gitops.model.catalog import API_ENDPOINTS, CHARTS, credential_paths
from openstack_gitops.model.spec import Spec
from openstack_gitops.model.tree import deep_merge

from .model_support import fake_credentials, spec


def values_of(s: Spec) -> dict[str, dict[str, Any]]:
    return expand(s, fake_credentials(s))


def at(values: dict[str, Any], dotted: str) -> Any:
    node: Any = values
    for key in dotted.split("."):
        node = node[key]
    return node


def leaves(tree: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from leaves(value, (*prefix, key))
    else:
        yield prefix, tree


# --- layering -------------------------------------------------------------------------------------


AUTOSCALE_KEYSTONE = {"keystone-api": {"minReplicas": 3, "maxReplicas": 9, "targetSessionsPerReplica": 10}}

# Each step adds one more layer's say on keystone's pod.replicas.api: (spec changes, the layer now
# deciding, its value). Every layer sets the leaf; the merged values must take the highest one's.
PRECEDENCE: tuple[tuple[dict[str, Any], str, int], ...] = (
    ({}, "release defaults", 1),
    ({"spec.size": "medium"}, "size preset", 2),
    ({"spec.size": "medium", "spec.autoscaling": AUTOSCALE_KEYSTONE}, "spec", 3),
    ({"spec.size": "medium", "spec.autoscaling": AUTOSCALE_KEYSTONE,
      "spec.overrides": {"keystone": {"pod": {"replicas": {"api": 4}}}}}, "overrides", 4),
)


def test_overrides_beat_the_spec_which_beats_the_size_preset_which_beats_release_defaults() -> None:
    full = spec(PRECEDENCE[-1][0])
    layers = layered_values(full, fake_credentials(full))["keystone"]
    # every layer sets the leaf, each to its own value, so only precedence can pick the winner
    assert {name: at(layers[name], "pod.replicas.api") for _, name, _ in PRECEDENCE} == {
        name: value for _, name, value in PRECEDENCE
    }
    for changes, deciding, value in PRECEDENCE:
        s = spec(changes)
        assert at(expand(s, fake_credentials(s))["keystone"], "pod.replicas.api") == value, deciding

LAST_SETTER: dict[str, tuple[dict[str, Any], str, int]] = {
    # layer -> (spec changes, keystone values path, value): that layer is the last one setting the path
    "release defaults": ({}, "pod.lifecycle.upgrades.deployments.rolling_update.max_surge", 3),
    "size preset": ({"spec.size": "medium"}, "pod.replicas.api", 2),
    "spec": ({"spec.size": "medium", "spec.autoscaling": AUTOSCALE_KEYSTONE}, "pod.replicas.api", 3),
    "overrides": (
        {
            "spec.size": "medium",
            "spec.autoscaling": AUTOSCALE_KEYSTONE,
            "spec.overrides": {"keystone": {"pod": {"replicas": {"api": 4}}}},
        },
        "pod.replicas.api",
        4,
    ),
}


def sets(values: dict[str, Any], dotted: str) -> bool:
    try:
        at(values, dotted)
    except (KeyError, TypeError):
        return False
    return True


@pytest.mark.parametrize("layer", LAYER_NAMES)
def test_a_value_set_in_a_later_layer_wins(layer: str) -> None:
    changes, path, value = LAST_SETTER[layer]
    s = spec(changes)
    layers = layered_values(s, fake_credentials(s))["keystone"]
    index = LAYER_NAMES.index(layer)
    assert at(layers[layer], path) == value
    assert not any(sets(layers[later], path) for later in LAYER_NAMES[index + 1 :])
    if index:
        assert any(sets(layers[earlier], path) for earlier in LAYER_NAMES[:index]), "an earlier layer is overruled"
    assert at(expand(s, fake_credentials(s))["keystone"], path) == value


def test_an_override_beats_every_other_layer_on_the_same_leaf() -> None:
    s = spec(
        {
            "spec.overrides": {
                "keystone": {"pod": {"lifecycle": {"upgrades": {"deployments": {"rolling_update": {"max_surge": 7}}}}}}
            }
        }
    )
    assert at(values_of(s)["keystone"], "pod.lifecycle.upgrades.deployments.rolling_update") == {
        "max_surge": 7,
        "max_unavailable": 1,
    }


def test_merged_values_are_the_layers_merged_in_order() -> None:
    s = spec({"spec.overrides": {"nova": {"conf": {"nova": {"keystone_authtoken": {"region_name": "Other"}}}}}})
    creds = fake_credentials(s)
    merged = expand(s, creds)
    for chart, layers in layered_values(s, creds).items():
        expected: dict[str, Any] = {}
        for name in LAYER_NAMES:
            expected = deep_merge(expected, layers[name])
        assert canonical_json(merged[chart]) == canonical_json(expected), chart
    assert at(merged["nova"], "conf.nova.keystone_authtoken.region_name") == "Other"


def test_every_leaf_comes_from_the_last_layer_that_sets_it() -> None:
    s = spec({"spec.size": "large", "spec.overrides": {"neutron": {"network": {"backend": ["ovn"]}}}})
    creds = fake_credentials(s)
    merged = expand(s, creds)
    for chart, layers in layered_values(s, creds).items():
        winner: dict[tuple[str, ...], Any] = {}
        for name in LAYER_NAMES:
            winner.update(dict(leaves(layers[name])))
        for path, value in winner.items():
            assert at(merged[chart], ".".join(path)) == value, (chart, path)


def test_overrides_replace_lists_instead_of_merging_them() -> None:
    s = spec({"spec.overrides": {"neutron": {"network": {"backend": ["ovn"]}}}})
    assert at(values_of(s)["neutron"], "network.backend") == ["ovn"]


# --- shared facts ---------------------------------------------------------------------------------


def test_every_credential_path_holds_its_stored_value() -> None:
    s = spec()
    creds = fake_credentials(s)
    v = expand(s, creds)
    for chart in v:
        for path, name in credential_paths(chart):
            assert at(v[chart], path) == creds[name], (chart, path)


def test_an_account_has_the_same_password_in_every_chart_that_names_it() -> None:
    """Grouped by what the server sees (database, broker or Keystone user name), never by values key:
    nova's `neutron` key and neutron's own are one Keystone user, nova's three databases one MariaDB user."""
    seen: dict[tuple[str, str], set[str]] = {}
    for values in openstack_charts(values_of(spec())).values():
        for key, endpoint in values["endpoints"].items():
            family = "oslo_db" if key.startswith("oslo_db") else key
            for account in endpoint.get("auth", {}).values() if isinstance(endpoint, dict) else ():
                if isinstance(account, dict) and "password" in account:
                    seen.setdefault((family, account["username"]), set()).add(account["password"])
    assert {k: v for k, v in seen.items() if len(v) != 1} == {}
    assert ("identity", "neutron") in seen and ("oslo_db", "nova") in seen


def test_nova_and_neutron_share_the_neutron_service_password() -> None:
    v = values_of(spec())
    assert at(v["nova"], "endpoints.identity.auth.neutron.password") == at(
        v["neutron"], "endpoints.identity.auth.neutron.password"
    )
    assert at(v["nova"], "endpoints.identity.auth.placement.password") == at(
        v["placement"], "endpoints.identity.auth.placement.password"
    )


def test_the_database_admin_password_is_the_mariadb_root_password_everywhere() -> None:
    v = values_of(spec())
    root = at(v["mariadb"], "endpoints.oslo_db.auth.admin.password")
    for chart, values in v.items():
        if CHARTS[chart].db_user:
            assert at(values, "endpoints.oslo_db.auth.admin.password") == root, chart


def test_the_broker_admin_and_cookie_match_the_rabbitmq_chart() -> None:
    v = values_of(spec({"spec.size": "medium"}))
    admin = at(v["rabbitmq"], "endpoints.oslo_messaging.auth.user.password")
    replicas = at(v["rabbitmq"], "pod.replicas.server")
    assert replicas == 3
    for chart, values in v.items():
        if CHARTS[chart].vhost:
            assert at(values, "endpoints.oslo_messaging.auth.admin.password") == admin, chart
            assert at(values, "endpoints.oslo_messaging.statefulset.replicas") == replicas, chart
    assert at(v["rabbitmq"], "endpoints.oslo_messaging.auth.erlang_cookie")


def openstack_charts(v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {chart: values for chart, values in v.items() if CHARTS[chart].openstack}


@pytest.mark.parametrize(
    "group",
    ["oslo_cache", "identity", *(api.service_type for api in API_ENDPOINTS if api.service_type != "identity")],
)
def test_endpoint_locations_are_identical_in_every_openstack_chart(group: str) -> None:
    v = openstack_charts(values_of(spec({"spec.region": "RegionTwo", "spec.publicDomain": "os.example.org"})))
    shapes = {
        chart: canonical_json({k: val for k, val in values["endpoints"][group].items() if k != "auth"})
        for chart, values in v.items()
    }
    assert len(set(shapes.values())) == 1, shapes


def test_public_hosts_are_service_dot_public_domain() -> None:
    v = values_of(spec({"spec.publicDomain": "os.example.org"}))
    assert at(v["glance"], "endpoints.identity.host_fqdn_override.public.host") == "keystone.os.example.org"
    assert at(v["keystone"], "endpoints.image.host_fqdn_override.public.host") == "glance.os.example.org"
    assert at(v["nova"], "endpoints.compute.host_fqdn_override.public.host") == "nova.os.example.org"


def test_the_region_reaches_every_account_and_config_file() -> None:
    v = openstack_charts(values_of(spec({"spec.region": "RegionTwo"})))
    for chart, values in v.items():
        for user, account in values["endpoints"]["identity"]["auth"].items():
            assert account["region_name"] == "RegionTwo", (chart, user)
        for path in CHARTS[chart].region_keys:
            assert at(values, ".".join(("conf", chart, *path))) == "RegionTwo", (chart, path)


def test_node_roles_become_node_selectors() -> None:
    v = values_of(spec({"spec.nodeRoles": {"compute": {"example.com/hypervisor": "hypervisor"}}}))
    assert at(v["nova"], "labels.agent.compute") == {
        "node_selector_key": "example.com/hypervisor",
        "node_selector_value": "hypervisor",
    }
    assert at(v["libvirt"], "labels.agent.libvirt.node_selector_key") == "example.com/hypervisor"
    assert at(v["nova"], "labels.osapi.node_selector_key") == "openstack-control-plane"
    assert at(v["openvswitch"], "labels.ovs.node_selector_key") == "openvswitch"


def test_images_come_from_the_release_table() -> None:
    v = values_of(spec({"spec.release": "2025.2"}))
    assert at(v["keystone"], "images.tags.keystone_api") == "quay.io/airshipit/keystone:2025.2-ubuntu_noble"
    assert at(v["nova"], "images.tags.nova_compute") == "quay.io/airshipit/nova:2025.2-ubuntu_noble"
    assert (
        at(spec_values("2025.1")["glance"], "images.tags.glance_api") == "quay.io/airshipit/glance:2025.1-ubuntu_noble"
    )


def spec_values(release: str) -> dict[str, dict[str, Any]]:
    return values_of(spec({"spec.release": release}))


# --- shape and determinism ------------------------------------------------------------------------


def test_expansion_is_deterministic() -> None:
    s = spec({"spec.size": "medium", "spec.overrides": {"nova": {"conf": {"nova": {"DEFAULT": {"x": 1}}}}}})
    first = json.dumps(expand(s, fake_credentials(s)), sort_keys=True)
    second = json.dumps(
        expand(
            spec({"spec.size": "medium", "spec.overrides": {"nova": {"conf": {"nova": {"DEFAULT": {"x": 1}}}}}}),
            fake_credentials(s),
        ),
        sort_keys=True,
    )
    assert first == second


def test_values_are_plain_json_with_sorted_keys() -> None:
    for chart, values in values_of(spec()).items():
        assert json.loads(json.dumps(values)) == values, chart
        text = json.dumps(values)
        assert text == json.dumps(values, sort_keys=True), f"{chart}: keys are sorted"


def test_expansion_does_not_mutate_the_spec_overrides() -> None:
    s = spec({"spec.overrides": {"nova": {"conf": {"nova": {"DEFAULT": {"x": 1}}}}}})
    v = values_of(s)
    v["nova"]["conf"]["nova"]["DEFAULT"]["x"] = 2
    assert s.overrides["nova"]["conf"]["nova"]["DEFAULT"]["x"] == 1


@pytest.mark.parametrize(
    ("backend", "present", "absent"),
    [
        pytest.param("openvswitch", "openvswitch", "ovn", id="openvswitch"),
        pytest.param("ovn", "ovn", "openvswitch", id="ovn"),
    ],
)
def test_the_network_backend_picks_its_chart_and_neutron_agents(backend: str, present: str, absent: str) -> None:
    v = values_of(spec({"spec.networking": {"backend": backend}}))
    assert present in v and absent not in v
    assert at(v["neutron"], "network.backend") == [backend]
    assert at(v["nova"], "network.backend") == [backend]
    manifests = at(v["neutron"], "manifests")
    assert manifests["daemonset_ovs_agent"] is (backend == "openvswitch")
    assert manifests["daemonset_ovn_metadata_agent"] is (backend == "ovn")
    drivers = at(v["neutron"], "conf.plugins.ml2_conf.ml2.mechanism_drivers")
    assert drivers == ("ovn" if backend == "ovn" else "openvswitch,l2population")


def test_only_charts_of_enabled_services_are_expanded_in_apply_order() -> None:
    v = values_of(spec({"spec.services.dashboard.enabled": False, "spec.services.orchestration.enabled": False}))
    assert set(v) == set(CHARTS) - {"horizon", "heat", "ovn"}  # dashboard, orchestration off; openvswitch backend
    assert list(v) == sorted(v, key=APPLY_ORDER.index)


def test_autoscaled_deployments_are_exposed_for_the_apply_engine() -> None:
    policies = {
        "keystone-api": {"minReplicas": 2, "maxReplicas": 4, "targetSessionsPerReplica": 5},
        "horizon": {"minReplicas": 1, "maxReplicas": 4, "targetSessionsPerReplica": 5},
    }
    assert autoscaled_deployments(spec({"spec.autoscaling": policies})) == {"keystone-api", "horizon"}
    assert autoscaled_deployments(spec()) == frozenset()


def test_missing_credentials_are_refused_by_name() -> None:
    s = spec()
    creds = fake_credentials(s)
    del creds["identity.neutron"]
    with pytest.raises(MissingCredentials) as caught:
        expand(s, creds)
    assert caught.value.names == ("identity.neutron",)


def test_an_unknown_release_is_refused_with_the_spec_error() -> None:
    s = spec({"spec.release": "2023.1"})
    with pytest.raises(SpecInvalid, match=r"unknown release '2023\.1'"):
        expand(s, fake_credentials(s))
