"""Typed errors of the model: every complaint names its file, line, field and what was expected.

Operators fix specs from these messages alone, so each one carries its location and the accepted
values instead of a bare "invalid".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class SpecError:
    """One problem in the operator's spec, located precisely enough to fix without guessing."""

    file: str
    line: int | None
    field: str
    message: str
    expected: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        text = f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        if self.expected:
            text += f" (expected {self.expected})"
        return text


class SpecInvalid(Exception):
    """The spec was refused; carries every problem found, not just the first."""

    def __init__(self, errors: Iterable[SpecError]) -> None:
        self.errors: tuple[SpecError, ...] = tuple(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


class MissingCredentials(Exception):
    """Expansion was asked to render without a credential it needs (the edge must complete them)."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names: tuple[str, ...] = tuple(sorted(names))
        super().__init__("missing credentials: " + ", ".join(self.names))
