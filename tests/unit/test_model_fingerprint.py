"""Per-service fingerprints change exactly when that service's values change."""

from __future__ import annotations

from openstack_gitops.model import expand, fingerprint, service_fingerprints

from .model_support import fake_credentials, spec


def test_fingerprint_is_sha256_of_canonical_json_and_ignores_key_order() -> None:
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    assert len(fingerprint({})) == 64
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})


def test_an_override_changes_only_its_service_fingerprint() -> None:
    base = spec()
    changed = spec({"spec.overrides": {"nova": {"conf": {"nova": {"DEFAULT": {"cpu_allocation_ratio": 2.0}}}}}})
    before = service_fingerprints(expand(base, fake_credentials(base)))
    after = service_fingerprints(expand(changed, fake_credentials(changed)))
    assert {s for s in before if before[s] != after[s]} == {"compute"}


def test_every_enabled_service_has_a_fingerprint() -> None:
    s = spec({"spec.services.dashboard.enabled": False})
    assert set(service_fingerprints(expand(s, fake_credentials(s)))) == s.enabled_services
