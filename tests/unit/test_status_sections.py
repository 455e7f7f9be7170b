"""The reconciler's status writes leave the autoscaler's section alone: not compared, not sent."""

from __future__ import annotations

from reconciler.engine.status import _comparable


def test_the_autoscalers_section_is_no_reason_for_the_reconciler_to_write() -> None:
    mine = {"state": "Ready", "health": "9/9", "conditions": []}
    live = {**mine, "autoscaler": {"targets": {"keystone-api": {"replicas": 4}}}}
    assert _comparable(live) == _comparable(mine)
    assert "autoscaler" not in _comparable(live)
