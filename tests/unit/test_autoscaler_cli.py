"""The autoscaler's command line refuses unusable settings before it touches anything (exit 2)."""

from __future__ import annotations

import pytest

from autoscaler.cli import main


@pytest.mark.parametrize(("argv", "message"), [
    pytest.param([], "needs --prometheus-url", id="no-prometheus"),
    pytest.param(["--prometheus-url", "prometheus:9090"], "must be an http(s) URL", id="not-a-url"),
    pytest.param(["--prometheus-url", "http://p", "--prometheus-username-file", "u"], "needs both",
                 id="half-basic-auth"),
    pytest.param(["--prometheus-url", "http://p", "--lease-duration", "5", "--renew-deadline", "10"],
                 "lease duration must be longer", id="bad-lease-timings"),
])
def test_unusable_settings_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str],
                                  restore_logging: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENSTACK_GITOPS_PROMETHEUS_URL", raising=False)
    assert main(argv) == 2
    assert message in capsys.readouterr().err
