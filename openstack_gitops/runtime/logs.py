"""Structured logging (text or JSON lines) that never prints a credential.

Every generated credential is registered with ``redact``; ``scrub`` removes it from any text we
report (log lines, and what the engine puts into status and Events), not only verbatim but in the
encodings a chart or the apiserver can give it: base64 (both alphabets, padded or not, alone or
inside a larger encoded string such as ``user:password`` or a whole config file), URL-encoding,
JSON/Go string escaping and YAML single quoting. A careless f-string or a failing template that
prints ``.Values...password | b64enc`` cannot leak one.
"""

from __future__ import annotations

import base64
import json
import logging
import string
import sys
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Any

REDACTED = "***"
MIN_SECRET = 8  # shorter values are ignored: they would match ordinary words
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
_B64_CORE = frozenset(string.ascii_letters + string.digits)
_B64_STD = _B64_CORE | {"+", "/"}
_B64_URL = _B64_CORE | {"-", "_"}


@dataclass(frozen=True)
class _Patterns:
    """What scrub looks for, computed once per redact() so scrub itself only does substring searches.

    ``literals``: the secret and its escaped forms, longest first. ``base64``: per secret and per byte
    alignment, the base64 characters that encode only bytes of the secret; any base64 text that encodes
    a string containing the secret contains one of them, whatever surrounds the secret. Each comes with
    the alphabet of the run it sits in, so the whole run (with whatever else it encodes) is replaced.
    """

    literals: tuple[str, ...] = ()
    base64: tuple[tuple[str, frozenset[str]], ...] = ()


class _Registry:
    """The registered secrets; ``patterns`` is replaced whole, never mutated, so scrub reads it without the lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.secrets: set[str] = set()
        self.patterns = _Patterns()


_REGISTRY = _Registry()


def _literal_forms(secret: str) -> set[str]:
    """The secret as URL-encoding (sprig urlquery, Go url.PathEscape, Python quote), JSON or Go %q escaping
    (sprig quote, toJson, apiserver messages) and YAML single quoting would print it."""
    forms = {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret, safe=""),
             urllib.parse.quote(secret, safe="/"), urllib.parse.quote(secret, safe="/:@&=+$,;"),
             json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1], secret.replace("'", "''")}
    return {form for form in forms if len(form) >= MIN_SECRET}


def _base64_cores(secret: str) -> set[tuple[str, frozenset[str]]]:
    """For each of the 3 offsets the secret can start at within a 3-byte base64 group, the whole groups
    that encode its bytes only, in the standard and the URL-safe alphabet."""
    raw = secret.encode()
    cores = set()
    for start in range(3):
        body = raw[start: start + (len(raw) - start) // 3 * 3]
        if len(body) < 6:  # at least 8 characters of base64, as for a raw secret
            continue
        std, url = base64.b64encode(body).decode(), base64.urlsafe_b64encode(body).decode()
        if std == url:  # neither '+/' nor '-_' in it: the run around it may use either alphabet
            cores.add((std, _B64_STD | _B64_URL))
        else:
            cores.update({(std, _B64_STD), (url, _B64_URL)})
    return cores


def redact(*values: str) -> None:
    """Never log these values (credentials); short values are ignored to avoid false positives."""
    registry = _REGISTRY
    with registry.lock:
        new = {v for v in values if v and len(v) >= MIN_SECRET} - registry.secrets
        if not new:
            return
        registry.secrets.update(new)
        literals = {form for secret in registry.secrets for form in _literal_forms(secret)}
        cores = {core for secret in registry.secrets for core in _base64_cores(secret)}
        registry.patterns = _Patterns(tuple(sorted(literals, key=len, reverse=True)),
                                      tuple(sorted(cores, key=lambda c: len(c[0]), reverse=True)))


def scrub(text: str) -> str:
    """``text`` with every registered secret, in any form listed above, replaced by ``***``.

    Costs one substring search per pattern (2-8 per secret); nothing at all when none is registered.
    """
    if len(text) < MIN_SECRET:  # every pattern is at least this long (most log fields are shorter)
        return text
    patterns = _REGISTRY.patterns
    for literal in patterns.literals:
        if literal in text:
            text = text.replace(literal, REDACTED)
    for core, alphabet in patterns.base64:
        if core in text:
            text = _replace_runs(text, core, alphabet)
    return text


def _replace_runs(text: str, core: str, alphabet: frozenset[str]) -> str:
    """Replace every base64 run (with its '=' padding) that contains ``core``."""
    out = []
    done = 0
    at = text.find(core)
    while at >= 0:
        start, end = at, at + len(core)
        while start > done and text[start - 1] in alphabet:
            start -= 1
        while end < len(text) and text[end] in alphabet:
            end += 1
        while end < len(text) and text[end] == "=":
            end += 1
        out += [text[done:start], REDACTED]
        done = end
        at = text.find(core, done)
    return "".join(out) + text[done:]


class _RedactingFilter(logging.Filter):
    """Scrubs the record itself, so every handler (not only ours) sees clean text."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(record.getMessage())
        record.args = ()
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD and isinstance(value, str):
                record.__dict__[key] = scrub(value)
        return True


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname.lower(),
                               "logger": record.name, "msg": record.getMessage()}
        out.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            out["exc"] = scrub(self.formatException(record.exc_info))
        # The whole line once more: extras that are lists or dicts are not scrubbed before.
        return scrub(json.dumps(out, default=str))


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extra = " ".join(f"{k}={v}" for k, v in record.__dict__.items() if k not in _STANDARD)
        line = f"{self.formatTime(record, '%H:%M:%S')} {record.levelname.lower():7} {record.getMessage()}"
        line = f"{line} {extra}".rstrip()
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return scrub(line)


def setup(json_lines: bool = False, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if json_lines else _TextFormatter())
    handler.addFilter(_RedactingFilter())
    root = logging.getLogger("openstack_gitops")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def get(name: str) -> logging.Logger:
    return logging.getLogger(f"openstack_gitops.{name}")
