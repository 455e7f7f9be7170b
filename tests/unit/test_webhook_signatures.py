"""Webhook verification and push parsing are pure: each provider's rules as tables."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from reconciler.engine.webhook import (
    Provider,
    PushEvent,
    WebhookPayloadError,
    parse_push,
    verify_generic,
    verify_github,
    verify_gitlab,
    verify_request,
)

SECRET = b"s3cret-hook"
BODY = json.dumps({"ref": "refs/heads/main", "after": "a" * 40}).encode()
SHA_A = "a" * 40
SHA_B = "0123456789abcdef0123456789abcdef01234567"


def sign(body: bytes, secret: bytes = SECRET) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


HMAC_CASES = [
    pytest.param(SECRET, BODY, sign(BODY), True, id="valid"),
    pytest.param(SECRET, BODY, sign(BODY).upper().replace("SHA256=", "sha256="), True, id="valid-uppercase-hex"),
    pytest.param(SECRET, BODY, sign(BODY, b"other-secret"), False, id="wrong-secret"),
    pytest.param(SECRET, BODY + b" ", sign(BODY), False, id="body-changed"),
    pytest.param(SECRET, BODY, None, False, id="missing-header"),
    pytest.param(SECRET, BODY, "", False, id="empty-header"),
    pytest.param(SECRET, BODY, sign(BODY).removeprefix("sha256="), False, id="no-algorithm-prefix"),
    pytest.param(SECRET, BODY, "sha1=" + hmac.new(SECRET, BODY, hashlib.sha1).hexdigest(), False, id="sha1"),
    pytest.param(SECRET, BODY, "sha256=zz", False, id="malformed-hex"),
    pytest.param(SECRET, BODY, "sha256=" + "é" * 64, False, id="non-ascii"),
    pytest.param(b"", BODY, sign(BODY, b""), False, id="empty-secret-refused"),
]


@pytest.mark.parametrize(("secret", "body", "header", "ok"), HMAC_CASES)
def test_verify_github(secret: bytes, body: bytes, header: str | None, ok: bool) -> None:
    assert verify_github(secret, body, header) is ok


@pytest.mark.parametrize(("secret", "body", "header", "ok"), HMAC_CASES)
def test_verify_generic(secret: bytes, body: bytes, header: str | None, ok: bool) -> None:
    assert verify_generic(secret, body, header) is ok


@pytest.mark.parametrize(("secret", "header", "ok"), [
    pytest.param(SECRET, SECRET.decode(), True, id="valid"),
    pytest.param(SECRET, "wrong", False, id="wrong-secret"),
    pytest.param(SECRET, SECRET.decode() + "x", False, id="secret-prefix-only"),
    pytest.param(SECRET, None, False, id="missing-header"),
    pytest.param(SECRET, "", False, id="empty-header"),
    pytest.param(b"", "", False, id="empty-secret-refused"),
])
def test_verify_gitlab(secret: bytes, header: str | None, ok: bool) -> None:
    assert verify_gitlab(secret, header) is ok


@pytest.mark.parametrize(("provider", "headers", "ok"), [
    pytest.param("github", {"x-hub-signature-256": sign(BODY)}, True, id="github-header-any-case"),
    pytest.param("github", {"X-Signature-256": sign(BODY)}, False, id="github-needs-its-header"),
    pytest.param("gitlab", {"X-Gitlab-Token": SECRET.decode()}, True, id="gitlab"),
    pytest.param("gitlab", {"X-Hub-Signature-256": sign(BODY)}, False, id="gitlab-ignores-hmac-header"),
    pytest.param("generic", {"X-Signature-256": sign(BODY)}, True, id="generic"),
    pytest.param("generic", {"X-Gitlab-Token": SECRET.decode()}, False, id="generic-needs-hmac"),
])
def test_verify_request_uses_the_providers_header(provider: str, headers: dict[str, str], ok: bool) -> None:
    assert verify_request(provider, SECRET, headers, BODY) is ok


def payload(**fields: object) -> bytes:
    return json.dumps(fields).encode()


@pytest.mark.parametrize(("provider", "headers", "body", "expected"), [
    pytest.param("github", {"X-GitHub-Event": "push"}, payload(ref="refs/heads/main", after=SHA_B),
                 PushEvent(Provider.GITHUB, "main", SHA_B), id="github-push"),
    pytest.param("github", {"X-GitHub-Event": "push"}, payload(ref="refs/heads/feature/x", after=SHA_B),
                 PushEvent(Provider.GITHUB, "feature/x", SHA_B), id="github-other-branch-with-slash"),
    pytest.param("github", {"X-GitHub-Event": "push"}, payload(ref="refs/heads/main", after="0" * 40, deleted=True),
                 PushEvent(Provider.GITHUB, "main", None), id="github-branch-deleted"),
    pytest.param("github", {"X-GitHub-Event": "ping"}, payload(zen="Keep it logically awesome.", hook_id=1),
                 None, id="github-ping-ignored"),
    pytest.param("github", {"X-GitHub-Event": "issues"}, payload(action="opened"), None, id="github-other-event"),
    pytest.param("github", {"X-GitHub-Event": "push"}, payload(ref="refs/tags/v1", after=SHA_B),
                 None, id="github-tag-push"),
    pytest.param("gitlab", {"X-Gitlab-Event": "Push Hook"},
                 payload(object_kind="push", ref="refs/heads/main", before=SHA_A, after=SHA_B, checkout_sha=SHA_B),
                 PushEvent(Provider.GITLAB, "main", SHA_B), id="gitlab-push"),
    pytest.param("gitlab", {"X-Gitlab-Event": "Tag Push Hook"}, payload(object_kind="tag_push", ref="refs/tags/v1"),
                 None, id="gitlab-tag-push"),
    pytest.param("generic", {}, payload(ref="refs/heads/main", commit=SHA_B),
                 PushEvent(Provider.GENERIC, "main", SHA_B), id="generic-commit-field"),
    pytest.param("generic", {}, payload(ref="refs/heads/main"), PushEvent(Provider.GENERIC, "main", None),
                 id="generic-without-commit"),
    pytest.param("generic", {}, payload(ref="refs/heads/main", after="not-a-sha"),
                 PushEvent(Provider.GENERIC, "main", None), id="generic-junk-commit-dropped"),
])
def test_parse_push(provider: str, headers: dict[str, str], body: bytes, expected: PushEvent | None) -> None:
    assert parse_push(provider, headers, body) == expected


@pytest.mark.parametrize(("provider", "body"), [
    pytest.param("github", b"{not json", id="github-not-json"),
    pytest.param("gitlab", b"\xff\xfe", id="gitlab-not-utf8"),
    pytest.param("generic", b"[1, 2]", id="generic-not-an-object"),
    pytest.param("generic", payload(after=SHA_B), id="generic-no-ref"),
    pytest.param("github", payload(ref=7), id="github-ref-not-string"),
])
def test_parse_push_refuses_malformed_bodies(provider: str, body: bytes) -> None:
    with pytest.raises(WebhookPayloadError):
        parse_push(provider, {}, body)


def test_unknown_provider_is_an_error() -> None:
    with pytest.raises(ValueError, match="bitbucket"):
        parse_push("bitbucket", {}, BODY)
