"""Parse the spec's YAML text and remember where every field sits, so errors can name a line.

Pure: text in, data plus a line index out. The loader is PyYAML's safe loader without the
timestamp rule, because values must stay plain JSON (a date in an override would not serialize).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import yaml

from .errors import SpecError, SpecInvalid

Key = str | int
Path = tuple[Key, ...]


def format_path(path: Path) -> str:
    """Render a path the way operators read it: `spec.services.compute.enabled`, `list[0]`."""
    text = ""
    for key in path:
        if isinstance(key, int):
            text += f"[{key}]"
        else:
            text += f".{key}" if text else key
    return text


@dataclass(frozen=True)
class SourceMap:
    """Line numbers (1-based) of every key in one spec file, looked up by path."""

    file: str
    lines: Mapping[Path, int] = field(default_factory=lambda: MappingProxyType({}))

    def line(self, path: Path) -> int | None:
        """Line of `path`, or of its nearest existing ancestor (a missing field points at its parent)."""
        for end in range(len(path), -1, -1):
            found = self.lines.get(path[:end])
            if found is not None:
                return found
        return None

    def error(self, path: Path, message: str, expected: str = "") -> SpecError:
        """A SpecError located at `path` in this file."""
        return SpecError(self.file, self.line(path), format_path(path), message, expected)


@dataclass(frozen=True)
class Document:
    """A parsed spec file: its plain data and where each field came from."""

    data: Any
    source: SourceMap


class _Loader(yaml.SafeLoader):
    """Safe loader that keeps timestamps as strings (JSON has no date type)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse(text: str, filename: str) -> Document:
    """Parse one YAML document; any syntax problem becomes a located SpecError."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "unreadable"
        raise SpecInvalid(
            [SpecError(filename, line, "", f"malformed YAML: {problem}", "a valid YAML document")]
        ) from exc
    except yaml.YAMLError as exc:
        raise SpecInvalid([SpecError(filename, None, "", f"malformed YAML: {exc}", "a valid YAML document")]) from exc
    finally:
        loader.dispose()
    if node is None:
        raise SpecInvalid([SpecError(filename, 1, "", "the file is empty", "an OpenStackDeployment document")])
    lines: dict[Path, int] = {}
    errors = list(_index(node, (), filename, lines))
    source = SourceMap(filename, MappingProxyType(lines))
    errors.extend(_plain_data_errors(data, (), source))
    if errors:
        raise SpecInvalid(errors)
    return Document(data, source)


def _index(node: yaml.Node, path: Path, filename: str, lines: dict[Path, int]) -> Iterator[SpecError]:
    """Record the line of every key under `node`; yield duplicate keys (YAML would silently keep the last)."""
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = (*path, key)
            if key in seen:
                yield SpecError(
                    filename,
                    key_node.start_mark.line + 1,
                    format_path(child),
                    f"duplicate key '{key}'",
                    "each key at most once per mapping",
                )
                continue
            seen.add(key)
            lines[child] = key_node.start_mark.line + 1
            yield from _index(value_node, child, filename, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _index(item, (*path, index), filename, lines)


def _plain_data_errors(data: Any, path: Path, source: SourceMap) -> Iterator[SpecError]:
    """Yield what JSON (and so Helm values) cannot hold: non-string keys, NaN and infinities."""
    if isinstance(data, dict):
        for key, value in data.items():
            if not isinstance(key, str):
                yield source.error((*path, str(key)), f"key {key!r} is not a string", "a string key (put it in quotes)")
                continue
            yield from _plain_data_errors(value, (*path, key), source)
    elif isinstance(data, list):
        for index, item in enumerate(data):
            yield from _plain_data_errors(item, (*path, index), source)
    elif isinstance(data, float) and not math.isfinite(data):
        yield source.error(path, f"{data} is not a finite number", "a finite number")
    elif not isinstance(data, str | int | float | bool | None):
        yield source.error(path, f"a YAML {type(data).__name__} is not plain data", "a mapping, list, string or number")
