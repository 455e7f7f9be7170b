"""Shared readers for workload status fields."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def spec_status(obj: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    return obj.get("spec") or {}, obj.get("status") or {}


def observed(obj: Mapping[str, Any]) -> bool:
    """The controller has seen the latest spec (observedGeneration >= generation)."""
    generation = (obj.get("metadata") or {}).get("generation") or 0
    return int((obj.get("status") or {}).get("observedGeneration") or 0) >= int(generation)


def condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return None
