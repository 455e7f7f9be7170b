"""The front door: spec text in, a Spec (or every reason it was refused) out."""

from __future__ import annotations

from .errors import SpecInvalid
from .schema import check
from .source import parse
from .spec import Spec, build


def load_spec(text: str, filename: str) -> Spec:
    """Parse, check against the schema and build; raise SpecInvalid listing ALL problems found.

    Meaning checks (dependencies, release path, charts) are separate: `validate(spec, ...)`.
    """
    document = parse(text, filename)
    errors = check(document)
    if errors:
        raise SpecInvalid(errors)
    return build(document)
