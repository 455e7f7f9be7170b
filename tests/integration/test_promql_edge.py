"""The PromQL edge: Prometheus' own parser (Debian's promtool) answers which queries do not parse."""

from __future__ import annotations

import pytest

from reconciler.edges.promql import find_promtool, parse_errors

PROMTOOL = find_promtool()
pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)")


def test_promtool_names_each_query_that_does_not_parse() -> None:
    assert PROMTOOL is not None
    good = 'sum by (proxy) (haproxy_backend_current_sessions{proxy="backend"})'
    bad = "sum(rate(x[1m])"
    worse = "rate(x[1m]"
    errors = parse_errors([good, bad, worse, bad], PROMTOOL)
    assert errors is not None
    assert set(errors) == {bad, worse}
    assert "parse error" in errors[bad]


def test_nothing_to_check_runs_nothing() -> None:
    assert parse_errors([], "/nonexistent/promtool") == {}
    assert parse_errors(["up"], "/nonexistent/promtool") is None  # cannot run: the check is skipped
