"""Credentials: stable names, existing values reused, only the missing ones generated, and the table of
which values path of which chart carries which credential."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from openstack_gitops.model import complete, needed_credentials
from openstack_gitops.model.catalog import ALL_CHARTS, CHARTS, DbRole, chart_credentials, credential_paths
from openstack_gitops.model.credentials import TOKEN_BYTES, TOKEN_BYTES_OF, credentials_of, lost_credentials

from .model_support import spec


class CountingToken:
    """A fake token function: deterministic, and records each call."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, nbytes: int) -> str:
        self.calls.append(nbytes)
        return f"generated-{len(self.calls)}"


def test_names_are_stable_and_cover_every_account() -> None:
    names = needed_credentials(spec())
    for expected in (
        "oslo_db.admin",
        "oslo_db.nova",
        "oslo_db.keystone",
        "oslo_messaging.admin",
        "oslo_messaging.nova",
        "oslo_messaging.erlang_cookie",
        "identity.admin",
        "identity.nova",
        "identity.neutron",
        "oslo_cache.memcache_secret_key",
        "horizon.secret_key",
    ):
        assert expected in names
    assert list(names) == sorted(names)
    assert "oslo_messaging.placement" not in names  # placement does not use the broker


def test_only_enabled_services_need_credentials() -> None:
    names = needed_credentials(spec({"spec.services.dashboard.enabled": False}))
    assert "horizon.secret_key" not in names and "oslo_db.horizon" not in names


def test_a_fresh_cloud_generates_everything_through_the_injected_token() -> None:
    token = CountingToken()
    needed = needed_credentials(spec())
    result, generated = complete({}, needed, token)
    assert generated == needed
    assert set(result) == set(needed)
    assert token.calls == [TOKEN_BYTES_OF.get(name, TOKEN_BYTES) for name in needed]
    assert len(set(result.values())) == len(needed)


def test_heats_encryption_key_has_the_32_characters_heat_requires() -> None:
    """heat-engine refuses to start unless auth_encryption_key is 32 characters long."""
    key, _ = complete({}, ["heat.auth_encryption_key"], secrets.token_urlsafe)
    assert len(key["heat.auth_encryption_key"]) == 32


def test_existing_values_are_kept_and_only_missing_ones_generated() -> None:
    token = CountingToken()
    existing = {"oslo_db.admin": "root-pw", "identity.nova": "nova-pw"}
    result, generated = complete(existing, ["oslo_db.admin", "identity.nova", "identity.neutron"], token)
    assert result == {"oslo_db.admin": "root-pw", "identity.nova": "nova-pw", "identity.neutron": "generated-1"}
    assert generated == ("identity.neutron",)
    assert token.calls == [TOKEN_BYTES]


def test_nothing_is_generated_when_everything_exists() -> None:
    token = CountingToken()
    existing = {"a": "1", "b": "2"}
    assert complete(existing, ["a", "b"], token) == (existing, ())
    assert token.calls == []


def test_credentials_no_longer_needed_are_kept() -> None:
    """A service switched off and on again must find its old database password."""
    result, _ = complete({"oslo_db.horizon": "old"}, ["oslo_db.admin"], CountingToken())
    assert result["oslo_db.horizon"] == "old"


@pytest.mark.parametrize("empty", ["", None], ids=["empty-string", "none"])
def test_an_empty_stored_value_counts_as_missing(empty: str | None) -> None:
    result, generated = complete({"a": empty}, ["a"], CountingToken())  # type: ignore[dict-item]
    assert result == {"a": "generated-1"} and generated == ("a",)


def test_complete_does_not_mutate_its_input() -> None:
    existing = {"a": "1"}
    complete(existing, ["a", "b"], CountingToken())
    assert existing == {"a": "1"}


@pytest.mark.parametrize(
    ("case", "existing", "known", "cloud_exists", "lost"),
    [
        ("first-install", {}, None, False, ()),
        ("secret-deleted", {}, frozenset({"a", "b"}), True, ("a", "b")),
        ("secret-deleted-before-names-were-recorded", {}, None, True, ("a", "b", "c")),
        ("one-key-removed", {"a": "x", "c": "z"}, frozenset({"a", "b", "c"}), True, ("b",)),
        ("new-service-needs-a-new-one", {"a": "x", "b": "y"}, frozenset({"a", "b"}), True, ()),
        ("partial-store-before-names-were-recorded", {"a": "x"}, None, True, ()),
    ],
)
def test_lost_credentials(case: str, existing: dict[str, str], known: frozenset[str] | None, cloud_exists: bool,
                          lost: tuple[str, ...]) -> None:
    assert lost_credentials(existing, ("a", "b", "c"), known, cloud_exists) == lost


# --- the credential table: which values path of which chart carries which stored credential ------

METADATA = "neutron.metadata_proxy_shared_secret"


@pytest.mark.parametrize(
    ("chart", "path", "credential"),
    [
        # nova's three connections (configmap-etc, secret-db-cell0, job-db-init) are one MariaDB user
        ("nova", "endpoints.oslo_db.auth.nova.password", "oslo_db.nova"),
        ("nova", "endpoints.oslo_db_cell0.auth.nova.password", "oslo_db.nova"),
        ("nova", "endpoints.oslo_db_cell1.auth.nova.password", "oslo_db.nova"),
        ("nova", "endpoints.oslo_db_cell1.auth.admin.password", "oslo_db.admin"),
        ("mariadb", "endpoints.oslo_db.auth.admin.password", "oslo_db.admin"),
        ("mariadb", "endpoints.oslo_db.auth.audit.password", "oslo_db.audit"),
        ("mariadb", "endpoints.oslo_db.auth.exporter.password", "oslo_db.exporter"),
        ("rabbitmq", "endpoints.oslo_messaging.auth.user.password", "oslo_messaging.admin"),
        ("rabbitmq", "endpoints.oslo_messaging.auth.guest.password", "oslo_messaging.guest"),
        ("rabbitmq", "endpoints.oslo_messaging.auth.erlang_cookie", "oslo_messaging.erlang_cookie"),
        ("glance", "endpoints.oslo_messaging.auth.admin.password", "oslo_messaging.admin"),
        # [service_user] of nova and cinder: an account of each service's own
        ("nova", "endpoints.identity.auth.service.password", "identity.nova_service_user"),
        ("cinder", "endpoints.identity.auth.service.password", "identity.cinder_service_user"),
        # the same account under another chart's key is the same credential
        ("nova", "endpoints.identity.auth.neutron.password", "identity.neutron"),
        ("neutron", "endpoints.identity.auth.neutron.password", "identity.neutron"),
        ("cinder", "endpoints.identity.auth.nova.password", "identity.nova"),
        ("neutron", "endpoints.identity.auth.nova.password", "identity.nova"),
        ("cinder", "endpoints.identity.auth.glance.password", "identity.glance"),
        ("nova", "endpoints.identity.auth.ironic.password", "identity.ironic"),
        ("neutron", "endpoints.identity.auth.ironic.password", "identity.ironic"),
        ("heat", "endpoints.identity.auth.heat_trustee.password", "identity.heat_trustee"),
        ("heat", "endpoints.identity.auth.heat_stack_user.password", "identity.heat_stack_user"),
        ("keystone", "endpoints.identity.auth.test.password", "identity.keystone-test"),
        ("horizon", "endpoints.identity.auth.admin.password", "identity.admin"),
        # secrets outside endpoints
        ("nova", "conf.nova.neutron.metadata_proxy_shared_secret", METADATA),
        ("neutron", "conf.metadata_agent.DEFAULT.metadata_proxy_shared_secret", METADATA),
        ("neutron", "conf.ovn_metadata_agent.DEFAULT.metadata_proxy_shared_secret", METADATA),
        ("horizon", "conf.horizon.local_settings.config.horizon_secret_key", "horizon.secret_key"),
        ("heat", "conf.heat.DEFAULT.auth_encryption_key", "heat.auth_encryption_key"),
        ("cinder", "endpoints.oslo_cache.auth.memcache_secret_key", "oslo_cache.memcache_secret_key"),
        ("mariadb", "endpoints.oslo_db.auth.sst.password", "oslo_db.sst"),  # Galera SST: policy.CONFIG_EXCEPTIONS
    ],
    ids=str,
)
def test_a_values_path_carries_its_credential(chart: str, path: str, credential: str) -> None:
    assert dict(credential_paths(chart))[path] == credential


@pytest.mark.parametrize(
    ("chart", "path"),
    [
        ("keystone", "endpoints.oslo_cache.auth.memcache_secret_key"),  # keystone and horizon do not read it
        ("horizon", "endpoints.oslo_messaging.auth.admin.password"),  # horizon has no broker
        ("placement", "endpoints.oslo_messaging.auth.admin.password"),
        ("nova", "endpoints.oslo_db_api.auth.nova.password"),  # the mirror charts' key, not the real chart's
        ("memcached", "endpoints.oslo_cache.auth.memcache_secret_key"),
    ],
    ids=str,
)
def test_a_values_path_the_chart_does_not_read_carries_nothing(chart: str, path: str) -> None:
    assert path not in dict(credential_paths(chart))


@pytest.mark.parametrize(
    ("role", "endpoint", "schema"),
    [
        (DbRole.API, "oslo_db", "nova_api"),
        (DbRole.CELL0, "oslo_db_cell0", "nova_cell0"),
        (DbRole.CELL1, "oslo_db_cell1", "nova"),
    ],
    ids=str,
)
def test_nova_databases_are_the_real_charts_three_connections(role: DbRole, endpoint: str, schema: str) -> None:
    by_role = {db.role: db for db in CHARTS["nova"].databases}
    assert (by_role[role].endpoint, by_role[role].name) == (endpoint, schema)


def test_every_chart_table_is_consistent() -> None:
    schemas: dict[str, str] = {}
    accounts: dict[str, set[str]] = {}
    for chart, info in CHARTS.items():
        paths = [path for path, _ in credential_paths(chart)]
        assert len(paths) == len(set(paths)), chart  # one credential per values path
        assert chart_credentials(chart) == tuple(sorted({name for _, name in credential_paths(chart)}))
        for db in info.databases:
            assert schemas.setdefault(db.name, chart) == chart, f"{db.name} of {chart} and {schemas[db.name]}"
        keys = [account.key for account in info.accounts]
        assert len(keys) == len(set(keys)), chart
        for account in info.accounts:
            accounts.setdefault(account.username, set()).add(account.credential)
    assert {user: names for user, names in accounts.items() if len(names) != 1} == {}


# Every name a cloud stored before the real charts: none may be renamed (a renamed credential of a
# running cloud would read as lost, and regenerating it would lock its service out).
NAMES_BEFORE_REAL_CHARTS = (
    "horizon.secret_key", "identity.admin", "identity.cinder", "identity.glance", "identity.heat",
    "identity.heat_stack_user", "identity.heat_trustee", "identity.neutron", "identity.nova", "identity.placement",
    "oslo_cache.memcache_secret_key", "oslo_db.admin", "oslo_db.cinder", "oslo_db.glance", "oslo_db.heat",
    "oslo_db.horizon", "oslo_db.keystone", "oslo_db.neutron", "oslo_db.nova", "oslo_db.placement",
    "oslo_messaging.admin", "oslo_messaging.cinder", "oslo_messaging.erlang_cookie", "oslo_messaging.glance",
    "oslo_messaging.heat", "oslo_messaging.keystone", "oslo_messaging.neutron", "oslo_messaging.nova",
)


def test_no_stored_name_was_renamed() -> None:
    assert set(NAMES_BEFORE_REAL_CHARTS) <= set(needed_credentials(spec()))


def test_new_credentials_of_a_running_cloud_are_generated_not_lost() -> None:
    """A cloud that recorded the names before gets the new ones generated on its next reconcile."""
    known = frozenset(NAMES_BEFORE_REAL_CHARTS)
    existing = {name: "stored" for name in known}
    needed = needed_credentials(spec())
    assert lost_credentials(existing, needed, known, cloud_exists=True) == ()
    result, generated = complete(existing, needed, CountingToken())
    assert set(generated) == set(needed) - known and {result[name] for name in known} == {"stored"}


def test_the_template_readme_names_every_stored_credential() -> None:
    """config-repo-template/README.md "Credentials" lists each credential by its key in the Secret,
    or by its pattern (`oslo_db.<chart>`, `identity.<chart>-test`) when it is one per chart."""
    readme = (Path(__file__).resolve().parents[2] / "config-repo-template" / "README.md").read_text()
    section = readme.split("## Credentials", 1)[1].split("\n## ", 1)[0]
    missing = []
    for name in credentials_of(ALL_CHARTS):
        family, _, rest = name.partition(".")
        per_chart = rest in ALL_CHARTS and f"`{family}.<chart>`" in section
        test_user = rest.removesuffix("-test") in ALL_CHARTS and f"`{family}.<chart>-test`" in section
        if f"`{name}`" not in section and not per_chart and not test_user:
            missing.append(name)
    assert missing == []
