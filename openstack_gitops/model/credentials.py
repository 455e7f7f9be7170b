"""Which secrets a spec needs, and how to complete a stored set without touching existing ones.

Names are stable (`oslo_db.nova`, `identity.admin`, ...) because they key the Secret the edge
keeps: a regenerated password would lock every service out of its database. Randomness comes
only from the injected `token` function (the edge passes `secrets.token_urlsafe`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType

from .catalog import chart_credentials
from .spec import Spec

TOKEN_BYTES = 32  # entropy per generated credential: 256 bits, 43 URL-safe characters

TOKEN_BYTES_OF: Mapping[str, int] = MappingProxyType(
    {
        "heat.auth_encryption_key": 24,  # heat refuses a key that is not exactly 32 characters
    }
)
"""Credentials whose reader wants another length: name -> random bytes (URL-safe base64, 4 characters
per 3 bytes)."""

Token = Callable[[int], str]


def needed_credentials(spec: Spec) -> tuple[str, ...]:
    """Sorted names of every credential the enabled charts of `spec` carry."""
    return credentials_of(spec.charts)


def credentials_of(charts: Iterable[str]) -> tuple[str, ...]:
    """Sorted names of every credential the given charts carry."""
    return tuple(sorted({name for chart in charts for name in chart_credentials(chart)}))


def complete(
    existing: Mapping[str, str], needed: Iterable[str], token: Token
) -> tuple[dict[str, str], tuple[str, ...]]:
    """Reuse every existing value; generate only the missing needed ones with `token(TOKEN_BYTES)`
    (or the length `TOKEN_BYTES_OF` names).

    Returns (all credentials, names newly generated). Existing credentials no longer needed are
    kept: a service switched off and on again must find its old database password.
    """
    result = dict(sorted(existing.items()))
    generated: list[str] = []
    for name in sorted(set(needed)):
        if not result.get(name):
            result[name] = token(TOKEN_BYTES_OF.get(name, TOKEN_BYTES))
            generated.append(name)
    return dict(sorted(result.items())), tuple(generated)


def lost_credentials(
    existing: Mapping[str, str], needed: Iterable[str], known: frozenset[str] | None, cloud_exists: bool
) -> tuple[str, ...]:
    """Needed credentials that the cloud had and the stored set no longer has. Pure.

    Generating a new value for one of these would lock its service out of its database, so the
    reconcile stops instead. `known` is the recorded set of generated names (None before the
    first record: then only a wholly missing store counts as lost).
    """
    if not cloud_exists:
        return ()
    missing = {name for name in needed if not existing.get(name)}
    if known is None:
        return tuple(sorted(missing)) if not existing else ()
    return tuple(sorted(missing & known))
