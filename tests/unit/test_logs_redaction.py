"""Credentials never reach a log line, whatever the formatter and whatever encoding a chart gave them."""

from __future__ import annotations

import base64
import binascii
import json
import re
import urllib.parse
from collections.abc import Callable

import pytest

from openstack_gitops.runtime import logs

# Shaped like a generated credential (secrets.token_urlsafe): URL-safe characters only.
TOKEN = "Zx9-kP_2qLm7Rt4vWb8nYc3dHf6jGs1aQe5"
# An operator-seeded one with characters every encoding rewrites; its base64 has '+' and '/'.
SPECIAL = "p@ss w/rd'\"\\&=+?>~ü"
UNRELATED = "the rest of this configuration is public"

_RUN = re.compile(r"[A-Za-z0-9+/_-]{8,}")


def traces_of(secret: str, text: str) -> list[str]:
    """The forms of ``secret`` still readable in ``text``: raw, URL-encoded, JSON-escaped, YAML-quoted, or
    base64 (of the secret or of anything containing it, either alphabet, any byte offset).

    Decodes independently of how scrub works, so it checks scrub rather than restating it."""
    found = []
    if secret in text:
        found.append("raw")
    if secret in urllib.parse.unquote(text) or secret in urllib.parse.unquote_plus(text):
        found.append("url")
    if json.dumps(secret)[1:-1] in text or json.dumps(secret, ensure_ascii=False)[1:-1] in text:
        found.append("json")
    if secret.replace("'", "''") in text:
        found.append("yaml")
    needle = secret.encode()
    for run in _RUN.findall(text):
        for start in range(4):  # a run may begin mid-group when it is glued to other text
            chunk = run[start:]
            chunk = chunk[:-1] if len(chunk) % 4 == 1 else chunk + "=" * (-len(chunk) % 4)
            for alphabet in (b"+/", b"-_"):
                try:
                    decoded = base64.b64decode(chunk, altchars=alphabet)
                except (binascii.Error, ValueError):
                    continue
                if needle in decoded:
                    found.append(f"base64 {run}")
    return found


def b64(text: str, urlsafe: bool = False, pad: bool = True) -> str:
    raw = text.encode()
    out = (base64.urlsafe_b64encode(raw) if urlsafe else base64.b64encode(raw)).decode()
    return out if pad else out.rstrip("=")


# Each case: (secret, the text a chart, Helm or the apiserver could produce around it).
CASES: dict[str, tuple[str, Callable[[str], str]]] = {
    "raw": (TOKEN, lambda s: f"password={s}"),
    "base64": (SPECIAL, lambda s: f"boom {b64(s)}"),
    "base64-urlsafe": (SPECIAL, lambda s: f"boom {b64(s, urlsafe=True)}"),
    "base64-unpadded": (TOKEN, lambda s: f"token {b64(s, pad=False)} end"),
    "base64-of-token": (TOKEN, lambda s: f"boom {b64(s)}"),
    # b64enc of a larger string: the secret starts at byte offset 0, 1 or 2 of a base64 group.
    "base64-embedded-offset-0": (TOKEN, lambda s: f"data: {b64('admin:' + s)}"),
    "base64-embedded-offset-1": (TOKEN, lambda s: f"Authorization: Basic {b64('glance:' + s)}"),
    "base64-embedded-offset-2": (TOKEN, lambda s: f"data: {b64('root:' + s + '@db')}"),
    "base64-embedded-special": (SPECIAL, lambda s: f"data: {b64('x' + s + 'y', urlsafe=True)}"),
    "base64-config-file": (TOKEN, lambda s: "glance.conf: " + b64(
        f"[database]\nconnection = mysql+pymysql://glance:{s}@mariadb/glance\n[DEFAULT]\ndebug = false\n")),
    "base64-glued": (TOKEN, lambda s: f'"data":{{"key":"{b64("k=" + s)}"}}'),
    "url-query": (SPECIAL, lambda s: f"GET /?pw={urllib.parse.quote_plus(s)}&x=1"),
    "url-quote": (SPECIAL, lambda s: f"mysql://root:{urllib.parse.quote(s, safe='')}@db"),
    "url-path": (SPECIAL, lambda s: f"https://h/{urllib.parse.quote(s)}/x"),
    "json-escaped": (SPECIAL, lambda s: json.dumps({"password": s})),
    "json-ascii-escaped": (SPECIAL, lambda s: json.dumps({"password": s}, ensure_ascii=True)),
    "json-unicode-kept": (SPECIAL, lambda s: json.dumps({"password": s}, ensure_ascii=False)),
    "yaml-single-quoted": (SPECIAL, lambda s: "password: '" + s.replace("'", "''") + "'"),
}


@pytest.fixture(autouse=True, scope="module")
def registered() -> None:
    logs.redact(TOKEN, SPECIAL)


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_secret_is_scrubbed_in_every_encoding(case: str) -> None:
    secret, build = CASES[case]
    text = build(secret)
    assert traces_of(secret, text), f"the case itself must carry the secret: {text}"
    out = logs.scrub(text)
    assert traces_of(secret, out) == [], out
    assert "***" in out
    # What is around the secret stays readable.
    assert out.split("***")[0] == text[: len(out.split("***")[0])]


def test_special_secret_really_exercises_both_base64_alphabets() -> None:
    assert "+" in b64(SPECIAL) or "/" in b64(SPECIAL)
    assert b64(SPECIAL) != b64(SPECIAL, urlsafe=True)


@pytest.mark.parametrize("text", [
    pytest.param(f"boom {b64(UNRELATED)}", id="unrelated-base64"),
    pytest.param(f"data: {b64('admin:' + TOKEN[:6])}", id="base64-of-a-short-prefix"),
    pytest.param("applied 12 objects in 0.4s: glance-api, keystone-db-sync", id="plain-text"),
    pytest.param("", id="empty"),
])
def test_unrelated_text_is_untouched(text: str) -> None:
    assert logs.scrub(text) == text


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("json_lines", [False, True], ids=["text", "json"])
def test_registered_credentials_are_scrubbed(json_lines: bool, capsys: pytest.CaptureFixture[str]) -> None:
    secret = "s3cr3t-value-generated-123"
    logs.redact(secret)
    logs.setup(json_lines=json_lines)
    log = logs.get("test")
    log.error("connecting with %s", secret, extra={"url": f"mysql://root:{secret}@db"})
    try:
        raise RuntimeError(f"failed with {secret}")
    except RuntimeError:
        log.exception("boom")
    err = capsys.readouterr().err
    assert secret not in err
    assert "***" in err
    assert "RuntimeError: failed with ***" in err  # the traceback is printed, scrubbed, in both formats
    if json_lines:
        first = json.loads(err.splitlines()[0])
        assert first["url"] == "mysql://root:***@db" and first["level"] == "error"


FIELDS: dict[str, Callable[[str], object]] = {
    "str-base64": lambda s: f"helm: execution error: boom {b64(s)}",
    "str-embedded-base64": lambda s: b64(f"glance:{s}"),
    "list": lambda s: ["--password", s],
    "dict": lambda s: {"auth": {"password": s}},
    "dict-base64": lambda s: {"data": {"key": b64(s)}},
}


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("secret", [TOKEN, SPECIAL], ids=["token", "special"])
@pytest.mark.parametrize("field", FIELDS, ids=list(FIELDS))
def test_secret_in_extra_field_of_json_line(field: str, secret: str, capsys: pytest.CaptureFixture[str]) -> None:
    logs.setup(json_lines=True)
    logs.get("test").error("render failed", extra={"error": FIELDS[field](secret)})
    line = capsys.readouterr().err.strip()
    assert traces_of(secret, line) == [], line
    assert json.loads(line)["msg"] == "render failed"
