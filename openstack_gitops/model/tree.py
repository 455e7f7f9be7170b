"""Plain nested-dict helpers shared by the expansion: deep merge, path assignment and pruning.

Values are plain JSON data (dict, list, str, int, float, bool, None); these helpers never mutate
their inputs, so layers can be built independently and merged in one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """Merge `top` over `base`: mappings merge key by key, everything else (lists too) is replaced."""
    merged: dict[str, Any] = _plain(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = _plain(value)
    return merged


def merge_all(layers: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Merge layers in order; the later layer wins."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = deep_merge(merged, layer)
    return merged


def nest(path: str | tuple[str, ...], value: Any) -> dict[str, Any]:
    """`nest("a.b", 1) == {"a": {"b": 1}}`: a one-leaf tree (dotted strings split on dots)."""
    keys = tuple(path.split(".")) if isinstance(path, str) else path
    tree: Any = value
    for key in reversed(keys):
        tree = {key: tree}
    result: dict[str, Any] = tree
    return result


def tree_of(leaves: Iterable[tuple[str | tuple[str, ...], Any]]) -> dict[str, Any]:
    """Build one tree from (path, value) pairs."""
    return merge_all(nest(path, value) for path, value in leaves)


def compact(tree: Mapping[str, Any]) -> dict[str, Any]:
    """`tree` without empty mappings, recursively: a group a layer has nothing to say about is left out
    instead of creating a key the chart may not have (e.g. `pod.replicas` of a DaemonSet-only chart)."""
    result: dict[str, Any] = {}
    for key, value in tree.items():
        kept = compact(value) if isinstance(value, Mapping) else value
        if kept != {}:
            result[key] = kept
    return result


def _plain(value: Any) -> Any:
    """A fresh deep copy as plain dicts and lists (read-only mappings of the frozen spec included)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
