"""Check the parsed spec against openstackdeployment.schema.json and explain every violation.

jsonschema's own messages name schema internals; operators need the field, its line and what
would have been accepted, so each violation is translated into a SpecError here.
"""

from __future__ import annotations

import datetime
import difflib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml
from jsonschema import Draft202012Validator, FormatChecker, ValidationError

from .errors import SpecError
from .source import Document, Path, SourceMap

SCHEMA_FILE = "openstackdeployment.schema.json"
PLAIN_STRING = "yaml-plain-string"  # the schema's `format` of text a chart template writes unquoted

# Plain scalars that YAML readers other than PyYAML's take for something else than a string: go-yaml
# v2's YAML 1.1 booleans y/n, and numbers in Go's and YAML 1.2's syntax (1e3, 0o17, 0x1F, 0b1, 1_000).
_OTHER_BOOLEANS = frozenset({"y", "Y", "n", "N"})
_NUMBER = re.compile(
    r"[-+]?(0[xXoObB][0-9A-Fa-f_]+|[0-9][0-9_]*(\.[0-9_]*)?([eE][-+]?[0-9]+)?|\.[0-9]+([eE][-+]?[0-9]+)?)"
)

_TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "null": "nothing (null)",
}


@cache
def schema() -> Mapping[str, Any]:
    """The JSON Schema of the OpenStackDeployment file (shipped inside the package)."""
    text = resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    Draft202012Validator.check_schema(loaded)
    return loaded


def unquoted_reading(text: str) -> str | None:
    """What `text` is read as when a template writes it unquoted into YAML, in words ("the boolean
    true", "the number 1", "null", "a date"), or None when it stays the string `text`. Pure.

    Judged by PyYAML's safe loader (YAML 1.1: the reconciler parses every render with it) and, to
    be safe with any other reader of the manifests, by what go-yaml and YAML 1.2 read as booleans
    or numbers beyond it.
    """
    if text in _OTHER_BOOLEANS:
        return "a boolean"
    if _NUMBER.fullmatch(text):
        return "a number"
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return "malformed YAML"
    if isinstance(value, str) and value == text:
        return None
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, datetime.date):
        return "a date"
    return f"a {type(value).__name__}"


def _format_checker() -> FormatChecker:
    checker = FormatChecker(formats=())
    checker.checks(PLAIN_STRING)(lambda value: not isinstance(value, str) or unquoted_reading(value) is None)
    return checker


_FORMATS = _format_checker()


def check(document: Document) -> list[SpecError]:
    """Every schema violation of `document`, sorted by line; empty when it conforms."""
    validator = Draft202012Validator(schema(), format_checker=_FORMATS)
    found: dict[tuple[str, str], SpecError] = {}
    for error in validator.iter_errors(document.data):
        for spec_error in _explain(error, document.source):
            found.setdefault((spec_error.field, spec_error.message), spec_error)
    return sorted(found.values(), key=lambda e: (e.line or 0, e.field, e.message))


@dataclass(frozen=True)
class _Violation:
    """The parts of a jsonschema error the translation reads, with loose types pinned down."""

    path: Path
    keyword: str
    expected: Any  # the keyword's value in the schema (enum list, required names, ...)
    instance: Any
    subschema: Mapping[str, Any]
    message: str

    @classmethod
    def of(cls, error: ValidationError) -> _Violation:
        subschema = error.schema if isinstance(error.schema, Mapping) else {}
        return cls(
            tuple(error.absolute_path),
            str(error.validator),
            error.validator_value,
            error.instance,
            subschema,
            error.message,
        )


def _explain(error: ValidationError, source: SourceMap) -> Iterator[SpecError]:
    """Translate one jsonschema error into operator words; some yield one error per key."""
    v = _Violation.of(error)
    path, instance = v.path, v.instance
    if "propertyNames" in error.absolute_schema_path:
        yield from _explain_key(v, source)
    elif v.keyword == "required" and isinstance(instance, Mapping):
        for name in v.expected:
            if name not in instance:
                yield source.error((*path, name), f"missing required field '{name}'", _required_hint(v.subschema, name))
    elif v.keyword == "additionalProperties" and isinstance(instance, Mapping):
        allowed = sorted(v.subschema.get("properties", {}))
        for name in instance:
            if name not in allowed:
                yield source.error(
                    (*path, name), f"unknown field '{name}'{_did_you_mean(name, allowed)}", _one_of(allowed)
                )
    elif v.keyword == "enum":
        noun = v.subschema.get("title") or (str(path[-1]) if path else "value")
        yield source.error(
            path, f"unknown {noun} {_show(instance)}{_did_you_mean(instance, v.expected)}", _one_of(v.expected)
        )
    elif v.keyword == "const":
        yield source.error(path, f"unsupported value {_show(instance)}", _show(v.expected))
    elif v.keyword == "type":
        wanted = [str(w) for w in (v.expected if isinstance(v.expected, list) else [v.expected])]
        expected = " or ".join(_TYPE_WORDS.get(w, w) for w in wanted)
        if v.subschema.get("format") == PLAIN_STRING:
            expected = str(v.subschema.get("description", expected))  # quoting it would not do
        elif "string" in wanted and isinstance(instance, int | float) and not isinstance(instance, bool):
            expected += f', quoted: "{instance}"'
        yield source.error(path, f"wrong type: got {_describe(instance)}", expected)
    elif v.keyword == "format" and v.expected == PLAIN_STRING:
        yield source.error(path, _unquoted_problem("value", instance), str(v.subschema.get("description", "")))
    else:
        yield source.error(path, f"invalid value {_show(instance)}", str(v.subschema.get("description", v.message)))


def _explain_key(v: _Violation, source: SourceMap) -> Iterator[SpecError]:
    """A mapping key that the schema refuses (unknown chart name, malformed label key)."""
    key = str(v.instance)
    if v.keyword == "format" and v.expected == PLAIN_STRING:
        yield source.error((*v.path, key), _unquoted_problem("key", key), str(v.subschema.get("description", "")))
    elif v.keyword == "enum":
        noun = v.subschema.get("title", "key")
        yield source.error(
            (*v.path, key), f"unknown {noun} '{key}'{_did_you_mean(key, v.expected)}", _one_of(v.expected)
        )
    else:
        yield source.error((*v.path, key), f"invalid key '{key}'", str(v.subschema.get("description", v.message)))


def _unquoted_problem(noun: str, text: object) -> str:
    return f"{noun} {_show(text)} is read as {unquoted_reading(str(text))} when a chart template writes it unquoted"


def _one_of(choices: Any) -> str:
    return "one of: " + ", ".join(str(c) for c in choices)


def _required_hint(subschema: Mapping[str, Any], name: str) -> str:
    """What a missing field should look like, from the schema's own description when it has one."""
    prop = subschema.get("properties", {}).get(name, {})
    described = prop.get("description") if isinstance(prop, Mapping) else None
    return str(described or subschema.get("description") or f"'{name}' to be set")


def _did_you_mean(value: object, choices: Any) -> str:
    if not isinstance(value, str):
        return ""
    close = difflib.get_close_matches(value, [str(c) for c in choices], n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _show(value: object) -> str:
    return f"'{value}'" if isinstance(value, str) else json.dumps(value)


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the text '{value}'"
    if value is None:
        return "nothing (null)"
    return f"the number {value}"
