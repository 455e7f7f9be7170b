"""The webhook server over real HTTP: signed pushes for the followed branch trigger, everything else does not."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from openstack_gitops.runtime import logs
from reconciler.engine.webhook import MAX_BODY, Provider, PushEvent, WebhookServer

SECRET = b"hook-secret-0d9f"
SHA = "0123456789abcdef0123456789abcdef01234567"


class Hook:
    def __init__(self, server: WebhookServer, calls: list[PushEvent]) -> None:
        self.server = server
        self.calls = calls

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.server.port}{path}", data=body, method="POST",
                                         headers={"Content-Type": "application/json", **headers})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            with error:
                return error.code, json.loads(error.read())


@pytest.fixture
def hook() -> Iterator[Hook]:
    calls: list[PushEvent] = []
    server = WebhookServer("127.0.0.1", 0, SECRET, "main", calls.append)
    server.start()
    try:
        yield Hook(server, calls)
    finally:
        server.stop()


def push(branch: str = "main", **extra: Any) -> bytes:
    return json.dumps({"ref": f"refs/heads/{branch}", "after": SHA, **extra}).encode()


def sign(body: bytes, secret: bytes = SECRET) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def test_signed_github_push_for_branch_is_accepted(hook: Hook) -> None:
    body = push()
    status, answer = hook.post("/hooks/github", body, {"X-GitHub-Event": "push", "X-Hub-Signature-256": sign(body)})
    assert (status, answer["status"]) == (202, "accepted")
    assert hook.calls == [PushEvent(Provider.GITHUB, "main", SHA)]
    assert hook.server.port > 0


@pytest.mark.parametrize("headers", [
    pytest.param({"X-Hub-Signature-256": sign(push(), b"wrong-secret")}, id="wrong-secret"),
    pytest.param({"X-Hub-Signature-256": sign(push(branch="other"))}, id="signature-of-another-body"),
    pytest.param({}, id="missing"),
    pytest.param({"X-Hub-Signature-256": "sha256=nothex"}, id="malformed"),
])
def test_bad_github_signature_is_401_and_never_triggers(hook: Hook, headers: dict[str, str],
                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    status, answer = hook.post("/hooks/github", push(), {"X-GitHub-Event": "push", **headers})
    assert status == 401
    assert hook.calls == []
    assert SECRET.decode() not in json.dumps(answer) + caplog.text


def test_github_ping_is_ignored(hook: Hook) -> None:
    body = json.dumps({"zen": "Design for failure.", "hook_id": 7}).encode()
    status, answer = hook.post("/hooks/github", body, {"X-GitHub-Event": "ping", "X-Hub-Signature-256": sign(body)})
    assert (status, answer["status"]) == (200, "ignored")
    assert hook.calls == []


def test_gitlab_token(hook: Hook, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    body = json.dumps({"object_kind": "push", "ref": "refs/heads/main", "checkout_sha": SHA, "after": SHA}).encode()
    status, _ = hook.post("/hooks/gitlab", body, {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "nope"})
    assert (status, hook.calls) == (401, [])
    status, _ = hook.post("/hooks/gitlab", body, {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": SECRET.decode()})
    assert status == 202
    assert hook.calls == [PushEvent(Provider.GITLAB, "main", SHA)]
    assert SECRET.decode() not in caplog.text


def test_generic_hmac(hook: Hook) -> None:
    body = push()
    status, _ = hook.post("/hooks/generic", body, {"X-Hub-Signature-256": sign(body)})
    assert (status, hook.calls) == (401, [])
    status, answer = hook.post("/hooks/generic", body, {"X-Signature-256": sign(body)})
    assert (status, answer["commit"]) == (202, SHA)
    assert hook.calls == [PushEvent(Provider.GENERIC, "main", SHA)]


def test_push_to_other_branch_is_ignored(hook: Hook) -> None:
    body = push(branch="feature")
    status, answer = hook.post("/hooks/github", body, {"X-GitHub-Event": "push", "X-Hub-Signature-256": sign(body)})
    assert (status, answer["status"]) == (200, "ignored")
    assert hook.calls == []


def test_signed_malformed_json_is_400(hook: Hook) -> None:
    body = b'{"ref": "refs/heads/main",'
    status, _ = hook.post("/hooks/generic", body, {"X-Signature-256": sign(body)})
    assert (status, hook.calls) == (400, [])


def test_oversized_body_is_413(hook: Hook) -> None:
    body = push(padding="x" * 4 * MAX_BODY)  # bigger than loopback buffers: the client must still read the 413
    status, answer = hook.post("/hooks/generic", body, {"X-Signature-256": sign(body)})
    assert (status, answer["status"]) == (413, "rejected")
    assert hook.calls == []
    # The connection handling survived: the next request is served.
    small = push()
    assert hook.post("/hooks/generic", small, {"X-Signature-256": sign(small)})[0] == 202


def test_unknown_path_is_404(hook: Hook) -> None:
    body = push()
    status, _ = hook.post("/hooks/bitbucket", body, {"X-Signature-256": sign(body)})
    assert (status, hook.calls) == (404, [])


def test_failing_on_push_answers_500_and_server_keeps_serving() -> None:
    def explode(_event: PushEvent) -> None:
        raise RuntimeError("queue closed")

    with WebhookServer("127.0.0.1", 0, SECRET, "main", explode) as server:
        hook = Hook(server, [])
        body = push()
        assert hook.post("/hooks/generic", body, {"X-Signature-256": sign(body)})[0] == 500
        assert hook.post("/hooks/generic", body, {"X-Signature-256": "sha256=00"})[0] == 401


def test_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="secret"):
        WebhookServer("127.0.0.1", 0, b"", "main", lambda _e: None)


def json_lines(err: str) -> list[dict[str, Any]]:
    """Every stderr line must be a JSON object (a plain-text line means a logger outside the tree)."""
    return [json.loads(line) for line in err.splitlines() if line.strip()]


@pytest.mark.usefixtures("restore_logging")
def test_webhook_logs_through_the_configured_json_tree(hook: Hook, capsys: pytest.CaptureFixture[str]) -> None:
    logs.setup(json_lines=True)  # as `--log-json` does; here, so that it writes to the captured stderr
    body = push()
    assert hook.post("/hooks/github", body, {"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=00"})[0] == 401
    assert hook.post("/hooks/github", body, {"X-GitHub-Event": "push", "X-Hub-Signature-256": sign(body)})[0] == 202
    lines = json_lines(capsys.readouterr().err)
    rejected = [line for line in lines if "rejected" in line["msg"]]
    assert [(r["level"], r["logger"]) for r in rejected] == [("warning", "openstack_gitops.webhook")], lines
    received = [line for line in lines if "push to main" in line["msg"]]
    assert [(r["level"], r["logger"]) for r in received] == [("info", "openstack_gitops.webhook")], lines
    assert SHA in received[0]["msg"]
    assert SECRET.decode() not in json.dumps(lines)
