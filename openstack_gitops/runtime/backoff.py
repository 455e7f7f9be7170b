"""Waiting well: exponential back-off with full jitter, and the one deadline-polling loop."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass
class Backoff:
    """Exponential back-off with full jitter, reset by a success."""

    base: float = 5.0
    cap: float = 300.0
    failures: int = 0

    def next_delay(self) -> float:
        self.failures += 1
        return random.uniform(self.base, min(self.cap, self.base * 2 ** self.failures))

    def reset(self) -> None:
        self.failures = 0


def poll_until(check: Callable[[], T | None], timeout: float, interval: float, what: str,
               sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> T:
    """Call ``check`` until it returns a value (not None); raise TimeoutError naming ``what`` after ``timeout``.

    The one deadline loop of the product: waits for a deletion, a CRD, a healthy service.
    """
    deadline = clock() + timeout
    while True:
        value = check()
        if value is not None:
            return value
        if clock() > deadline:
            raise TimeoutError(f"{what}: not done after {timeout:.0f}s")
        sleep(interval)
