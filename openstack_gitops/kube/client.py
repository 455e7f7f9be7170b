"""The Kubernetes edge: discovery, bulk reads, server-side apply (and its dry-run), deletes.

Built on the official client's dynamic client. Every request carries our user agent, so the
API server's audit log can count exactly what the reconciler did.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from kubernetes import client, config, dynamic
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError
from urllib3.exceptions import HTTPError as TransportError

from openstack_gitops import __version__
from openstack_gitops.api import FIELD_MANAGER
from openstack_gitops.kube.objects import Manifest, ObjectKey
from openstack_gitops.runtime.backoff import poll_until

USER_AGENT = f"openstack-gitops/{__version__}"


class ApiError(Exception):
    """A request about one object failed; says which object and what the server answered.

    A plain exception, not a frozen dataclass: Python sets ``__traceback__`` on whatever it raises,
    and a frozen instance turned every apiserver failure into a ``FrozenInstanceError``.
    """

    def __init__(self, key: str, verb: str, status: int, reason: str, message: str) -> None:
        super().__init__(key, verb, status, reason, message)
        self.key, self.verb, self.status, self.reason, self.message = key, verb, status, reason, message

    def __str__(self) -> str:
        return f"{self.key}: {self.verb} failed: {self.status} {self.reason}: {self.message}"

    @property
    def immutable(self) -> bool:
        return self.status == 422 and "immutable" in self.message

    @property
    def kind_not_served(self) -> bool:
        return self.status == 404 and self.reason == "KindNotServed"

    @property
    def retriable(self) -> bool:
        return self.status in (0, 429, 500, 502, 503, 504)


# What a request can fail with: an answer from the server, or no answer at all (restart, network).
REQUEST_ERRORS = (ApiException, TransportError, OSError)


def _api_error(key: str, verb: str, exc: Exception) -> ApiError:
    if not isinstance(exc, ApiException):
        return ApiError(key, verb, 0, "ServerUnreachable", f"{type(exc).__name__}: {exc}")
    status = int(getattr(exc, "status", 0) or 0)
    body = getattr(exc, "body", None) or str(exc)
    reason, message = str(getattr(exc, "reason", "") or ""), str(body)
    try:
        parsed = json.loads(body)
        reason, message = str(parsed.get("reason", reason)), str(parsed.get("message", message))
    except (ValueError, TypeError, AttributeError):
        pass
    return ApiError(key, verb, status, reason, message)


def _plain(_client: object, body: dict[str, Any]) -> dict[str, Any]:
    """A dynamic-client serializer that keeps the parsed JSON as it is."""
    return body


def load_api_client(kubeconfig: str | None = None) -> client.ApiClient:
    """An API client from ``--kubeconfig``, ``$KUBECONFIG`` or in-cluster config."""
    try:
        api: client.ApiClient = config.new_client_from_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        api = client.ApiClient()
    api.user_agent = USER_AGENT
    api.configuration.connection_pool_maxsize = 16
    return api


class Cluster:
    """One connection to one cluster; safe to share between threads."""

    def __init__(self, api: client.ApiClient, field_manager: str = FIELD_MANAGER) -> None:
        api.user_agent = USER_AGENT
        self.api = api
        self.field_manager = field_manager
        self._dyn: dynamic.DynamicClient | None = None
        self._lock = threading.Lock()
        self._resources: dict[tuple[str, str], Any] = {}

    @property
    def dyn(self) -> dynamic.DynamicClient:
        with self._lock:
            if self._dyn is None:
                try:
                    self._dyn = dynamic.DynamicClient(self.api)  # type: ignore[no-untyped-call]
                except REQUEST_ERRORS as exc:
                    raise _api_error("discovery", "get", exc) from exc
            return self._dyn

    def resource(self, api_version: str, kind: str) -> Any:
        key = (api_version, kind)
        if key not in self._resources:
            try:
                try:
                    found = self.dyn.resources.get(api_version=api_version, kind=kind)
                except ResourceNotFoundError:
                    self.dyn.resources.invalidate_cache()
                    found = self.dyn.resources.get(api_version=api_version, kind=kind)
            except ResourceNotFoundError:
                raise ApiError(f"{api_version}/{kind}", "discovery", 404, "KindNotServed",
                               "the server does not serve this kind (is its CRD installed?)") from None
            except REQUEST_ERRORS as exc:
                raise _api_error(f"{api_version}/{kind}", "discovery", exc) from exc
            self._resources[key] = found
        return self._resources[key]

    def invalidate_discovery(self) -> None:
        self._resources.clear()
        self.dyn.resources.invalidate_cache()

    # -- facts about the cluster (passed into rendering) ---------------------
    def server_version(self) -> str:
        try:
            info = client.VersionApi(self.api).get_code()
        except REQUEST_ERRORS as exc:
            raise _api_error("/version", "get", exc) from exc
        return str(info.git_version)

    def api_versions(self) -> list[str]:
        """group/version strings plus group/version/Kind, as ``helm template --api-versions`` wants."""
        out: set[str] = set()
        try:
            found = self.dyn.resources.search()
        except REQUEST_ERRORS as exc:
            raise _api_error("discovery", "get", exc) from exc
        for res in found:
            if "/" in (getattr(res, "name", None) or "/"):  # subresources and group entries
                continue
            gv = res.group_version
            out.add(gv)
            out.add(f"{gv}/{res.kind}")
        return sorted(out)

    # -- reads ----------------------------------------------------------------
    def list(self, api_version: str, kind: str, label_selector: str, namespace: str | None = None) -> list[Manifest]:
        """One LIST request; the body is parsed straight from JSON (the dynamic client's object
        wrappers cost more than the request itself on a cloud-sized list)."""
        res = self.resource(api_version, kind)
        try:
            body = self.dyn.request("get", res.path(namespace=namespace), label_selector=label_selector or None,
                                    serializer=_plain)
        except REQUEST_ERRORS as exc:
            raise _api_error(f"{kind} list", "list", exc) from exc
        items: list[Manifest] = body.get("items") or []
        for item in items:
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
        return items

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Manifest | None:
        res = self.resource(api_version, kind)
        try:
            got: Manifest = res.get(name=name, namespace=namespace).to_dict()
            return got
        except NotFoundError:
            return None
        except REQUEST_ERRORS as exc:
            raise _api_error(f"{kind}/{name}", "get", exc) from exc

    # -- writes ---------------------------------------------------------------
    def apply(self, obj: Manifest, dry_run: bool = False, field_manager: str | None = None) -> Manifest:
        """Server-side apply with forced ownership (the reconciler is the source of truth)."""
        key = ObjectKey.of(obj)
        res = self.resource(obj["apiVersion"], obj["kind"])
        kwargs: dict[str, Any] = {"field_manager": field_manager or self.field_manager, "force_conflicts": True}
        if dry_run:
            kwargs["dry_run"] = "All"
        try:
            applied: Manifest = self.dyn.server_side_apply(  # type: ignore[no-untyped-call]
                res, body=obj, namespace=key.namespace or None, **kwargs).to_dict()
        except REQUEST_ERRORS as exc:
            raise _api_error(str(key), "dry-run apply" if dry_run else "apply", exc) from exc
        return applied

    def patch_json(self, api_version: str, key: ObjectKey, ops: Sequence[Mapping[str, Any]]) -> None:
        """A JSON patch (RFC 6902) of one object; used to move field ownership, never for content."""
        res = self.resource(api_version, key.kind)
        try:
            res.patch(body=[dict(op) for op in ops], name=key.name, namespace=key.namespace or None,
                      content_type="application/json-patch+json")
        except REQUEST_ERRORS as exc:
            raise _api_error(str(key), "patch", exc) from exc

    def delete(self, api_version: str, key: ObjectKey, propagation: str = "Background") -> bool:
        """Delete one object; False when it was already gone."""
        res = self.resource(api_version, key.kind)
        try:
            res.delete(name=key.name, namespace=key.namespace or None,
                       body={"propagationPolicy": propagation})
        except NotFoundError:
            return False
        except REQUEST_ERRORS as exc:
            raise _api_error(str(key), "delete", exc) from exc
        return True

    def exists(self, api_version: str, key: ObjectKey) -> bool:
        return self.get(api_version, key.kind, key.name, key.namespace or None) is not None

    def patch_status(self, api_version: str, kind: str, name: str, namespace: str, status: Mapping[str, Any]) -> None:
        res = self.resource(api_version, kind)
        body = {"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": namespace},
                "status": dict(status)}
        try:
            self.dyn.server_side_apply(  # type: ignore[no-untyped-call]
                res.subresources["status"], body=body, name=name, namespace=namespace,
                field_manager=self.field_manager, force_conflicts=True)
        except REQUEST_ERRORS as exc:
            raise _api_error(f"{kind}/{namespace}/{name}", "status apply", exc) from exc

    def create_event(self, event: Manifest) -> None:
        res = self.resource("events.k8s.io/v1", "Event")
        try:
            res.create(body=event, namespace=event["metadata"]["namespace"])
        except REQUEST_ERRORS as exc:
            raise _api_error("Event", "create", exc) from exc

    def wait_crd_established(self, name: str, timeout: float = 60) -> None:
        """Block until a CustomResourceDefinition serves its kind, then forget stale discovery."""
        def established() -> bool | None:
            live = self.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", name)
            conditions = ((live or {}).get("status") or {}).get("conditions") or []
            return True if any(c.get("type") == "Established" and c.get("status") == "True"
                               for c in conditions) else None

        try:
            poll_until(established, timeout, 0.2, f"CustomResourceDefinition/{name} Established")
        except TimeoutError as exc:
            raise ApiError(f"CustomResourceDefinition/{name}", "wait", 0, "Timeout", str(exc)) from None
        self.invalidate_discovery()
