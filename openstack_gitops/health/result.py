"""The outcome of a health rule."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    HEALTHY = "Healthy"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"

    @property
    def rank(self) -> int:
        return {State.DEGRADED: 0, State.PROGRESSING: 1, State.HEALTHY: 2}[self]


@dataclass(frozen=True)
class Health:
    state: State
    message: str

    @property
    def healthy(self) -> bool:
        return self.state is State.HEALTHY
