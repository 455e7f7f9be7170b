"""Credentials never reach a log line, whatever the formatter."""

from __future__ import annotations

import json

import pytest

from reconciler import logs


@pytest.mark.parametrize("json_lines", [False, True], ids=["text", "json"])
def test_registered_credentials_are_scrubbed(json_lines: bool, capsys: pytest.CaptureFixture[str]) -> None:
    secret = "s3cr3t-value-generated-123"
    logs.redact(secret)
    logs.setup(json_lines=json_lines)
    log = logs.get("test")
    log.error("connecting with %s", secret, extra={"url": f"mysql://root:{secret}@db"})
    try:
        raise RuntimeError(f"failed with {secret}")
    except RuntimeError:
        log.exception("boom")
    err = capsys.readouterr().err
    assert secret not in err
    assert "***" in err
    if json_lines:
        first = json.loads(err.splitlines()[0])
        assert first["url"] == "mysql://root:***@db" and first["level"] == "error"
