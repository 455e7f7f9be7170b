"""The health watcher's command line refuses unusable settings before it touches anything (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from healthwatcher.cli import main


@pytest.mark.parametrize(("argv", "message"), [
    pytest.param(["--alertmanager-url", "alertmanager:9093"], "--alertmanager-url must be an http(s) URL",
                 id="alertmanager-not-a-url"),
    pytest.param(["--webhook-url", "ftp://hooks.example.com/x"], "--webhook-url must be an http(s) URL",
                 id="webhook-not-http"),
    pytest.param(["--webhook-url", "https://hooks.example.com/x", "--webhook-token-file", "/nonexistent/token"],
                 "--webhook-token-file: /nonexistent/token is not a readable file", id="token-file-missing"),
    pytest.param(["--alertmanager-token-file", "{token}"], "--alertmanager-token-file needs --alertmanager-url",
                 id="token-without-url"),
    pytest.param(["--lease-duration", "5", "--renew-deadline", "10"], "lease duration must be longer",
                 id="bad-lease-timings"),
])
def test_unusable_settings_exit_2(argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  restore_logging: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENSTACK_GITOPS_ALERTMANAGER_URL", raising=False)
    monkeypatch.delenv("OPENSTACK_GITOPS_WEBHOOK_URL", raising=False)
    token = tmp_path / "token"
    token.write_text("s3cret")
    assert main([a.replace("{token}", str(token)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "s3cret" not in err
