"""The Prometheus edge: instant queries with prometheus-api-client against the server the operator names.

Credentials come from mounted files (a bearer token, or a user name and password for basic auth)
and are read again for every query, so a rotated Secret is picked up without a restart; they are
registered with the log scrubber. TLS verification is on unless switched off explicitly (a CA file
may be given). Every request has a timeout and is tried once: a tick that cannot read its data
holds its targets (see ``decide``), it does not wait on retries. Every library exception becomes
:class:`PrometheusError`; nothing above this module sees a library exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.exceptions import NewConnectionError
from urllib3.exceptions import TimeoutError as TransportTimeout
from urllib3.util.retry import Retry

from openstack_gitops.runtime import logs


class PrometheusError(Exception):
    """A query that gave no answer to use: unreachable, timed out, refused, or not a vector."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason  # unreachable | timeout | http | bad-response | config


@dataclass(frozen=True)
class PrometheusConfig:
    url: str
    token_file: Path | None = None
    username_file: Path | None = None
    password_file: Path | None = None
    ca_file: Path | None = None
    verify_tls: bool = True
    timeout: float = 10.0

    def problems(self) -> list[str]:
        """What is wrong with this configuration (empty when usable)."""
        out = []
        if not self.url.startswith(("http://", "https://")):
            out.append(f"--prometheus-url must be an http(s) URL, not {self.url!r}")
        if self.token_file and (self.username_file or self.password_file):
            out.append("use a bearer token file or basic-auth files, not both")
        if bool(self.username_file) != bool(self.password_file):
            out.append("basic auth needs both --prometheus-username-file and --prometheus-password-file")
        if self.timeout <= 0:
            out.append("--prometheus-timeout must be > 0")
        return out


def _read(path: Path, secret: bool = True) -> str:
    try:
        value = path.read_text().strip()
    except OSError as exc:
        raise PrometheusError("config", f"cannot read {path}: {exc.strerror}") from None
    if secret and value:
        logs.redact(value)
    return value


def _timed_out(exc: requests.RequestException) -> bool:
    """requests reports a read timeout without retries as a ConnectionError around urllib3's timeout."""
    if isinstance(exc, requests.ConnectTimeout):
        return not isinstance(getattr(exc.args[0] if exc.args else None, "reason", None), NewConnectionError)
    if isinstance(exc, requests.Timeout):
        return True
    reason = getattr(exc.args[0] if exc.args else None, "reason", None)
    return isinstance(reason, TransportTimeout) and not isinstance(reason, NewConnectionError)  # a refusal


class Prometheus:
    """Instant queries against one Prometheus; safe to use from one thread at a time."""

    def __init__(self, config: PrometheusConfig) -> None:
        self.config = config
        session = requests.Session()
        session.verify = str(config.ca_file) if config.ca_file else config.verify_tls
        self._client = PrometheusConnect(url=config.url.rstrip("/"), session=session,
                                         retry=Retry(total=0, connect=0, read=0, status=0, redirect=2),
                                         timeout=config.timeout)
        self.queries = 0

    def _auth(self) -> tuple[dict[str, str] | None, tuple[str, str] | None]:
        c = self.config
        if c.token_file:
            return {"Authorization": f"Bearer {_read(c.token_file)}"}, None
        if c.username_file and c.password_file:
            return None, (_read(c.username_file, secret=False), _read(c.password_file))
        return None, None

    def query(self, promql: str) -> list[dict[str, Any]]:
        """``data.result`` of an instant query (a vector: one dict per series)."""
        headers, auth = self._auth()
        self._client.headers, self._client.auth = headers, auth
        self.queries += 1
        try:
            result = self._client.custom_query(promql)
        except PrometheusApiClientException as exc:
            raise PrometheusError("http", logs.scrub(str(exc))[:500]) from None
        except requests.RequestException as exc:
            if _timed_out(exc):
                raise PrometheusError("timeout", f"no answer within {self.config.timeout:g}s") from None
            raise PrometheusError("unreachable", logs.scrub(f"{type(exc).__name__}: {exc}")[:500]) from None
        except (ValueError, KeyError, TypeError) as exc:  # not JSON, or not the shape of an answer
            raise PrometheusError("bad-response", f"{type(exc).__name__}: {exc}") from None
        if not isinstance(result, list):
            raise PrometheusError("bad-response", f"expected a vector, got {type(result).__name__}")
        return result

    def close(self) -> None:
        self._client.close()
