"""Credentials: stable names, existing values reused, only the missing ones generated."""

from __future__ import annotations

import pytest

from openstack_gitops.model import complete, needed_credentials
from openstack_gitops.model.credentials import TOKEN_BYTES, lost_credentials

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
    assert token.calls == [TOKEN_BYTES] * len(needed)
    assert len(set(result.values())) == len(needed)


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
