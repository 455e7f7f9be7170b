"""The test bed's build says plainly what is missing."""

from __future__ import annotations

import pytest

from testbed import build
from testbed.errors import TestbedError
from testbed.process import EPHEMERAL_PORTS, free_port


def test_missing_go_toolchain_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENSTACK_GITOPS_GO", "/nonexistent/go")
    with pytest.raises(TestbedError) as err:
        build.build_all(log=lambda _m: None)
    text = str(err.value)
    assert text.startswith("build: the Go toolchain was not found (/nonexistent/go)")
    assert "install Go" in text


def test_free_ports_are_outside_the_ephemeral_range_and_never_handed_out_twice() -> None:
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    assert all(not EPHEMERAL_PORTS[0] <= port <= EPHEMERAL_PORTS[1] for port in ports)
