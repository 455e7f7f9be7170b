"""The Kubernetes edge: discovery, bulk reads, server-side apply (and its dry-run), deletes,
the scale subresource, and the requests behind the watch verb (``openstack_gitops.kube.watch``).

Built on the official client's dynamic client. Each process talks as itself: a ``Cluster`` takes
the user agent and default field manager of its :class:`~openstack_gitops.api.Process`, so the
apiserver's audit log and ``managedFields`` tell the reconciler, the autoscaler and the health
watcher apart. Every exception of the client library, urllib3 and the socket layer is mapped
here, and only here, into :class:`~openstack_gitops.kube.errors.ApiError`: no code above the
edge catches (or can import) a library exception class.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes import client, config, dynamic
from kubernetes.client import rest
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError, ResourceNotUniqueError
from urllib3.exceptions import HTTPError as TransportError
from urllib3.exceptions import MaxRetryError, NewConnectionError
from urllib3.exceptions import TimeoutError as TransportTimeout

from openstack_gitops.api import Process
from openstack_gitops.kube.errors import (
    BAD_RESPONSE,
    KIND_NOT_SERVED,
    NO_CONFIG,
    TIMEOUT,
    UNREACHABLE,
    ApiError,
)
from openstack_gitops.kube.objects import Manifest, ObjectKey
from openstack_gitops.kube.watch import DEFAULT_TIMEOUT_SECONDS, Page, Query, Watch
from openstack_gitops.runtime.backoff import Backoff, poll_until

__all__ = ["ApiError", "Cluster", "Scale", "load_api_client"]

# Everything a request through the client library can raise, mapped by :func:`_api_error`:
# an answer from the server (ApiException and the dynamic client's NotFoundError, ConflictError,
# ... which subclass it), a kind discovery does not know, no answer at all (urllib3, sockets),
# an answer that is not JSON, a kubeconfig that cannot be used.
REQUEST_ERRORS = (ApiException, ResourceNotFoundError, ResourceNotUniqueError, TransportError, OSError,
                  json.JSONDecodeError, ConfigException)
CONNECT_TIMEOUT = 10.0
WATCH_READ_SLACK = 30  # the client waits this much longer than the server's timeoutSeconds
LIST_READ_TIMEOUT = 120.0  # a page of a watch's LIST; a half-open connection must not hang the watch
# HTTP connections kept open to the apiserver: the reconciler's apply pool, its hook chains (one per chart)
# and its readers share them. The client's default is 5 per CPU; a request beyond the pool opens a new TLS
# connection and closes it after ("Connection pool is full, discarding connection").
POOL_SIZE = 32
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"  # a LIST of metadata alone


def _api_error(key: str, verb: str, exc: BaseException) -> ApiError:
    """The edge's one mapping of a library exception (see ``REQUEST_ERRORS``) to ``ApiError``."""
    if isinstance(exc, ApiException):
        status = int(getattr(exc, "status", 0) or 0)
        body = getattr(exc, "body", None) or str(exc)
        reason, message = str(getattr(exc, "reason", "") or ""), str(body)
        try:
            parsed = json.loads(body)
            reason, message = str(parsed.get("reason", reason)), str(parsed.get("message", message))
        except (ValueError, TypeError, AttributeError):
            pass
        return ApiError(key, verb, status, reason, message)
    if isinstance(exc, ResourceNotFoundError):
        return ApiError(key, verb, 404, KIND_NOT_SERVED,
                        "the server does not serve this kind (is its CRD installed?)")
    if isinstance(exc, ResourceNotUniqueError):
        return ApiError(key, verb, 400, "AmbiguousKind", str(exc))
    if isinstance(exc, ConfigException):
        return ApiError(key, verb, 0, NO_CONFIG, str(exc))
    if isinstance(exc, json.JSONDecodeError):
        return ApiError(key, verb, 0, BAD_RESPONSE, f"not JSON: {exc}")
    if isinstance(exc, ValueError) and not isinstance(exc, TransportError):  # the client refused its config
        return ApiError(key, verb, 0, NO_CONFIG, str(exc))
    cause = exc.reason if isinstance(exc, MaxRetryError) and exc.reason is not None else exc
    timed_out = isinstance(cause, (TransportTimeout, TimeoutError)) and not isinstance(cause, NewConnectionError)
    return ApiError(key, verb, 0, TIMEOUT if timed_out else UNREACHABLE, f"{type(cause).__name__}: {cause}")


def _plain(_client: object, body: dict[str, Any]) -> dict[str, Any]:
    """A dynamic-client serializer that keeps the parsed JSON as it is."""
    return body


def load_api_client(kubeconfig: str | None = None, process: Process = Process.RECONCILER) -> client.ApiClient:
    """An API client from ``--kubeconfig``, ``$KUBECONFIG`` or in-cluster config, talking as ``process``."""
    try:
        try:
            api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig)
        except ConfigException:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
            api = client.ApiClient()
    except REQUEST_ERRORS as exc:
        raise _api_error(kubeconfig or "in-cluster config", "load", exc) from exc
    api.user_agent = process.user_agent
    return with_pool(api)


def with_pool(api: client.ApiClient, size: int = POOL_SIZE) -> client.ApiClient:
    """``api`` keeping at least ``size`` connections open. The pool is made when the client is, from its
    configuration, so a smaller one is replaced (before any request: nothing in flight is cut)."""
    if (api.configuration.connection_pool_maxsize or 0) < size:
        api.configuration.connection_pool_maxsize = size
        api.rest_client = rest.RESTClientObject(api.configuration)
    return api


@dataclass(frozen=True)
class Scale:
    """A workload's scale subresource: the replicas asked for and the replicas there are."""

    spec_replicas: int
    status_replicas: int
    selector: str = ""


class _WatchStream:
    """One open WATCH response, read as decoded JSON lines; read errors become ``ApiError``.

    ``close()`` shuts the socket down for reading, which returns a read blocked in another
    thread at once (closing the response there could deadlock on the TLS socket's lock); the
    reading thread closes the response itself when its iteration ends.
    """

    def __init__(self, response: Any, key: str) -> None:
        self._response = response
        self._key = key

    def __iter__(self) -> Iterator[Mapping[str, Any]]:
        pending = bytearray()  # the line being received (a large object spans many chunks)
        try:
            for chunk in self._response.stream(amt=None, decode_content=True):
                start = 0
                while (end := chunk.find(b"\n", start)) != -1:
                    pending += chunk[start:end]
                    start = end + 1
                    if pending.strip():
                        try:
                            decoded = json.loads(pending)
                        except UnicodeDecodeError as exc:  # not JSON's own error: the line is not UTF-8
                            raise ApiError(self._key, "watch", 0, BAD_RESPONSE, f"a watch line is not UTF-8: {exc}") \
                                from exc
                        if not isinstance(decoded, dict):
                            raise ApiError(self._key, "watch", 0, BAD_RESPONSE, f"not an event: {decoded!r:.200}")
                        yield decoded
                    pending.clear()
                pending += chunk[start:]
        except REQUEST_ERRORS as exc:
            raise _api_error(self._key, "watch", exc) from exc
        finally:
            self._response.close()

    def close(self) -> None:
        with contextlib.suppress(ValueError, RuntimeError, OSError):  # not connected any more: nothing to stop
            self._response.shutdown()


def _scale_of(body: Mapping[str, Any]) -> Scale:
    spec, status = body.get("spec") or {}, body.get("status") or {}
    return Scale(int(spec.get("replicas") or 0), int(status.get("replicas") or 0), str(status.get("selector") or ""))


class Cluster:
    """One connection to one cluster; safe to share between threads."""

    def __init__(self, api: client.ApiClient, process: Process = Process.RECONCILER,
                 field_manager: str | None = None) -> None:
        """``process`` sets the user agent of every request and the default field manager;
        ``field_manager`` overrides the latter (an admin tool, a test)."""
        api.user_agent = process.user_agent
        self.api = with_pool(api)
        self.process = process
        self.field_manager = field_manager or process.field_manager
        self._dyn: dynamic.DynamicClient | None = None
        self._lock = threading.Lock()
        self._resources: dict[tuple[str, str], Any] = {}

    @property
    def dyn(self) -> dynamic.DynamicClient:
        with self._lock:
            if self._dyn is None:
                try:
                    self._dyn = dynamic.DynamicClient(self.api)  # type: ignore[no-untyped-call]
                except (*REQUEST_ERRORS, ValueError) as exc:  # ValueError: an http:// host for a TLS server
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
            except REQUEST_ERRORS as exc:  # ResourceNotFoundError included: 404 KindNotServed
                raise _api_error(f"{api_version}/{kind}", "discovery", exc) from None
            self._resources[key] = found
        return self._resources[key]

    def invalidate_discovery(self) -> None:
        self._resources.clear()
        try:
            self.dyn.resources.invalidate_cache()
        except REQUEST_ERRORS as exc:
            raise _api_error("discovery", "get", exc) from exc

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
    def list(self, api_version: str, kind: str, label_selector: str, namespace: str | None = None,
             metadata_only: bool = False) -> list[Manifest]:
        """One LIST request; the body is parsed straight from JSON (the dynamic client's object
        wrappers cost more than the request itself on a cloud-sized list). ``metadata_only``: the
        server sends each object's metadata alone (labels, annotations, managedFields; no data,
        spec or status), a fraction of the bytes for ConfigMaps and Secrets."""
        res = self.resource(api_version, kind)
        headers = {"Accept": METADATA_ONLY} if metadata_only else {}
        try:
            body = self.dyn.request("get", res.path(namespace=namespace), label_selector=label_selector or None,
                                    header_params=headers, serializer=_plain)
        except REQUEST_ERRORS as exc:
            raise _api_error(f"{kind} list", "list", exc) from exc
        items: list[Manifest] = body.get("items") or []
        for item in items:
            if metadata_only:  # each item says PartialObjectMetadata: name it by what it is
                item.update(apiVersion=api_version, kind=kind)
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
        return items

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Manifest | None:
        res = self.resource(api_version, kind)
        try:
            got: Manifest = self.dyn.request("get", res.path(name=name, namespace=namespace), serializer=_plain)
            return got
        except NotFoundError:
            return None
        except REQUEST_ERRORS as exc:
            raise _api_error(f"{kind}/{name}", "get", exc) from exc

    def get_scale(self, api_version: str, kind: str, name: str, namespace: str) -> Scale:
        """The scale subresource of a Deployment, StatefulSet or custom resource that has one."""
        body = self._scale_request("get", api_version, kind, name, namespace)
        return _scale_of(body)

    # -- the watch verb (see openstack_gitops.kube.watch) ----------------------
    def watch(self, api_version: str, kind: str, namespace: str | None = None, label_selector: str = "",
              field_selector: str = "", *, resource_version: str = "",
              timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS, backoff: Backoff | None = None,
              transform: Callable[[Manifest], Manifest] | None = None) -> Watch:
        """Every change to one kind, exactly once, until ``stop()``: a LIST, then WATCHes with bookmarks
        resumed from the last resourceVersion, a re-list diffed against what was known on 410 Gone.

        ``resource_version`` resumes a consumer that saved its position instead of listing first.
        """
        try:  # a kind the server does not serve fails here, at once; an unreachable server is retried
            self.resource(api_version, kind)
        except ApiError as exc:
            if exc.terminal:
                raise
        query = Query(api_version, kind, namespace, label_selector, field_selector)
        watch = Watch(self, query, resource_version=resource_version, timeout_seconds=timeout_seconds,
                      transform=transform)
        if backoff is not None:
            watch.backoff = backoff
        return watch

    def list_page(self, query: Query, limit: int, continue_token: str = "") -> Page:
        """One page of a LIST (the watch's first step); a stale ``continue_token`` answers 410."""
        res = self.resource(query.api_version, query.kind)
        try:
            body = self.dyn.request("get", res.path(namespace=query.namespace), serializer=_plain,
                                    label_selector=query.label_selector or None,
                                    field_selector=query.field_selector or None,
                                    limit=limit, _continue=continue_token or None,
                                    _request_timeout=(CONNECT_TIMEOUT, LIST_READ_TIMEOUT))
        except REQUEST_ERRORS as exc:
            raise _api_error(f"{query.kind} list", "list", exc) from exc
        meta = body.get("metadata") or {}
        return Page(tuple(body.get("items") or ()), str(meta.get("resourceVersion") or ""),
                    str(meta.get("continue") or ""))

    def open_watch(self, query: Query, resource_version: str, timeout_seconds: int) -> _WatchStream:
        """One WATCH request with bookmarks from ``resource_version``; the server ends it after
        ``timeout_seconds``, the client gives up reading a little later (a half-open connection)."""
        res = self.resource(query.api_version, query.kind)
        try:
            response = self.dyn.request(
                "get", res.path(namespace=query.namespace), serialize=False, watch=True,
                allow_watch_bookmarks=True, resource_version=resource_version or None,
                timeout_seconds=timeout_seconds, label_selector=query.label_selector or None,
                field_selector=query.field_selector or None,
                _request_timeout=(CONNECT_TIMEOUT, timeout_seconds + WATCH_READ_SLACK))
        except REQUEST_ERRORS as exc:
            raise _api_error(f"{query.kind} watch", "watch", exc) from exc
        return _WatchStream(response, f"{query.kind} watch")

    # -- writes ---------------------------------------------------------------
    def apply(self, obj: Manifest, dry_run: bool = False, field_manager: str | None = None) -> Manifest:
        """Server-side apply with forced ownership (the reconciler is the source of truth)."""
        key = ObjectKey.of(obj)
        res = self.resource(obj["apiVersion"], obj["kind"])
        kwargs: dict[str, Any] = {"field_manager": field_manager or self.field_manager, "force_conflicts": True}
        if dry_run:
            kwargs["dry_run"] = "All"
        try:  # the body goes as JSON text, the answer comes back as parsed JSON: the client's own (de)serializers
            # walk every node of the object in Python, which costs more than the request on a 2-core machine
            applied: Manifest = self.dyn.server_side_apply(  # type: ignore[no-untyped-call]
                res, body=json.dumps(obj), name=key.name, namespace=key.namespace or None, serializer=_plain,
                **kwargs)
        except REQUEST_ERRORS as exc:
            raise _api_error(str(key), "dry-run apply" if dry_run else "apply", exc) from exc
        return applied

    def create(self, obj: Manifest, field_manager: str | None = None) -> Manifest:
        """Create one object (a POST): ApiError 409 when the name is taken, where an apply would take the
        existing object over. For objects that must be new, such as a Job run once (host discovery)."""
        key = ObjectKey.of(obj)
        res = self.resource(obj["apiVersion"], obj["kind"])
        try:
            created: Manifest = res.create(body=obj, namespace=key.namespace or None, serializer=_plain,
                                           field_manager=field_manager or self.field_manager)
        except REQUEST_ERRORS as exc:
            raise _api_error(str(key), "create", exc) from exc
        return created

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

    def delete_pod(self, namespace: str, name: str, uid: str, grace_seconds: int | None = None) -> bool:
        """Delete one pod, only if it is still the one judged (``uid`` precondition: a StatefulSet member
        re-created under the same name is not deleted again); ``grace_seconds=0`` force-deletes.
        False when it was already gone or replaced."""
        res = self.resource("v1", "Pod")
        body: dict[str, Any] = {"preconditions": {"uid": uid}}
        if grace_seconds is not None:
            body["gracePeriodSeconds"] = grace_seconds
        try:
            res.delete(name=name, namespace=namespace, body=body)
        except NotFoundError:
            return False
        except REQUEST_ERRORS as exc:
            err = _api_error(f"Pod/{namespace}/{name}", "delete", exc)
            if err.conflict:  # the uid precondition failed: another pod now has the name
                return False
            raise err from exc
        return True

    def evict_pod(self, namespace: str, name: str, uid: str) -> bool:
        """Delete one pod through the eviction API, so its PodDisruptionBudget decides; raises ApiError
        429 when the budget refuses. False when the pod was already gone or replaced."""
        res = self.resource("v1", "Pod")
        body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": namespace},
                "deleteOptions": {"preconditions": {"uid": uid}}}
        try:
            self.dyn.request("post", res.path(name=name, namespace=namespace) + "/eviction", body=body,
                             serializer=_plain)
        except NotFoundError:
            return False
        except REQUEST_ERRORS as exc:
            err = _api_error(f"Pod/{namespace}/{name}", "evict", exc)
            if err.conflict:
                return False
            raise err from exc
        return True

    def delete_and_wait(self, api_version: str, key: ObjectKey, timeout: float = 120) -> None:
        """Delete (foreground: its dependents first) and wait until it is gone, for an object about to be
        created again under the same name (a changed Job, a hook re-run); ApiError after ``timeout``."""
        self.delete(api_version, key, propagation="Foreground")
        try:
            poll_until(lambda: True if not self.exists(api_version, key) else None, timeout, 0.2,
                       f"deletion of {key}")
        except TimeoutError as exc:
            raise ApiError(str(key), "delete", 0, "Timeout", str(exc)) from None

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

    def scale(self, api_version: str, kind: str, name: str, namespace: str, replicas: int) -> Scale:
        """Set replicas through the scale subresource: a forced server-side apply of an
        autoscaling/v1 Scale under this process's field manager.

        An apply (not a merge patch) makes this manager an owner of ``spec.replicas`` even when the
        value does not change, so the reconciler's apply, which leaves replicas out of autoscaled
        Deployments, never removes the field (a field nobody owns any more is reset to its default).
        """
        body = {"apiVersion": "autoscaling/v1", "kind": "Scale",
                "metadata": {"name": name, "namespace": namespace}, "spec": {"replicas": int(replicas)}}
        return _scale_of(self._scale_request("apply", api_version, kind, name, namespace, body))

    def _scale_request(self, verb: str, api_version: str, kind: str, name: str, namespace: str,
                       body: Manifest | None = None) -> Manifest:
        key = f"{kind}/{namespace}/{name}"
        sub = self.resource(api_version, kind).subresources.get("scale")
        if sub is None:
            raise ApiError(key, f"scale {verb}", 404, "NoScaleSubresource", f"{api_version} {kind} cannot be scaled")
        try:
            if verb == "apply":
                got: Manifest = self.dyn.server_side_apply(  # type: ignore[no-untyped-call]
                    sub, body=body, name=name, namespace=namespace, field_manager=self.field_manager,
                    force_conflicts=True, serializer=_plain)
            else:
                got = self.dyn.request("get", sub.path(name=name, namespace=namespace), serializer=_plain)
        except REQUEST_ERRORS as exc:
            raise _api_error(key, f"scale {verb}", exc) from exc
        return got

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
            raise ApiError(f"CustomResourceDefinition/{name}", "wait", 0, TIMEOUT, str(exc)) from None
        self.invalidate_discovery()

    # -- leases (leader election: openstack_gitops.kube.lease) ----------------------------------------
    # Typed calls, not the dynamic client: no discovery round trips, and every request has a timeout,
    # so a hung apiserver cannot keep the elector from noticing that its renew deadline passed.
    # ``watch_lease`` is only a wake-up hint for a standby (the elector re-reads the Lease), so it is a
    # bare WATCH by name (RBAC: the ``watch`` verb on that resourceName), not the list-then-watch ``watch``.
    def _leases(self) -> Any:
        """The typed Lease API, as Any: with _preload_content=False it returns the raw response, not a V1Lease."""
        return client.CoordinationV1Api(self.api)

    def get_lease(self, namespace: str, name: str, timeout: float) -> Manifest | None:
        try:
            lease: Manifest = json.loads(self._leases().read_namespaced_lease(
                name, namespace, _preload_content=False, _request_timeout=timeout).data)
        except (*REQUEST_ERRORS, ValueError) as exc:
            if isinstance(exc, ApiException) and exc.status == 404:
                return None
            raise _api_error(f"Lease/{namespace}/{name}", "get", exc) from exc
        return lease

    def create_lease(self, lease: Manifest, timeout: float) -> Manifest:
        """Create a Lease; ApiError 409 when another process created it first."""
        meta = lease["metadata"]
        try:
            created: Manifest = json.loads(self._leases().create_namespaced_lease(
                meta["namespace"], lease, _preload_content=False, _request_timeout=timeout).data)
        except (*REQUEST_ERRORS, ValueError) as exc:
            raise _api_error(f"Lease/{meta['namespace']}/{meta['name']}", "create", exc) from exc
        return created

    def replace_lease(self, lease: Manifest, timeout: float) -> Manifest:
        """Update a Lease only if it is still at ``metadata.resourceVersion``; ApiError 409 when it changed."""
        meta = lease["metadata"]
        try:
            replaced: Manifest = json.loads(self._leases().replace_namespaced_lease(
                meta["name"], meta["namespace"], lease, _preload_content=False, _request_timeout=timeout).data)
        except (*REQUEST_ERRORS, ValueError) as exc:
            raise _api_error(f"Lease/{meta['namespace']}/{meta['name']}", "update", exc) from exc
        return replaced

    def watch_lease(self, namespace: str, name: str, timeout: float = 60) -> Iterator[str]:
        """The type of each change to one Lease (ADDED, MODIFIED, DELETED), for up to ``timeout`` seconds."""
        key = f"Lease/{namespace}/{name}"
        try:
            resp = self._leases().list_namespaced_lease(
                namespace, field_selector=f"metadata.name={name}", watch=True, timeout_seconds=int(timeout),
                _preload_content=False, _request_timeout=(5, timeout + 15))
        except (*REQUEST_ERRORS, ValueError) as exc:
            raise _api_error(key, "watch", exc) from exc
        try:
            for line in resp:  # urllib3 yields whole lines: one JSON event each
                if line.strip():
                    yield str(json.loads(line).get("type", ""))
        except (*REQUEST_ERRORS, ValueError) as exc:
            raise _api_error(key, "watch", exc) from exc
        finally:
            resp.release_conn()
